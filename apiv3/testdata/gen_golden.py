# Regenerates golden.json with an implementation independent of package apiv3 (OpenSSL through
# Python's cryptography): python3 gen_golden.py > golden.json. RSA PKCS#1 v1.5 and AES-GCM with a
# fixed nonce are deterministic, so the values are known answers.
import base64, hashlib, json
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def key(path):
    return serialization.load_pem_private_key(open(path, "rb").read(), password=None)

def sign(k, msg):
    return base64.b64encode(k.sign(msg.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()

body = '{"appid":"wxd678efh567hg6787","mchid":"1230000109","description":"挂号费","out_trade_no":"1217752501201407033233368018","notify_url":"https://hospital.example/notify","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}'
req = "POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n" + body + "\n"
get = "GET\n/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=1230000109\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
answer = '1554209980\nc5ac7061fccab6bf3e254dcf98995b8c\n{"prepay_id":"wx201410272009395522657a690389285100"}\n'
pay = "wx8888888888888888\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx201410272009395522657a690389285100\n"

apiv3_key = b"0123456789abcdefghijklmnopqrstuv"
nonce = "fdasflkja484"
ad = "transaction"
plain = '{"mchid":"1230000109","out_trade_no":"1217752501201407033233368018","trade_state":"SUCCESS","amount":{"total":100}}'
ct = base64.b64encode(AESGCM(apiv3_key).encrypt(nonce.encode(), plain.encode(), ad.encode())).decode()

m, p = key("merchant_key.pem"), key("platform_key.pem")
oaep = base64.b64encode(m.public_key().encrypt("张三".encode(), padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))).decode()
print(json.dumps({
    "request_message": req, "request_signature": sign(m, req),
    "get_message": get, "get_signature": sign(m, get),
    "answer_message": answer, "answer_signature": sign(p, answer),
    "pay_message": pay, "pay_signature": sign(m, pay),
    "gcm": {"key": apiv3_key.decode(), "nonce": nonce, "associated_data": ad, "plaintext": plain, "ciphertext": ct},
    "body": body,
    "oaep_plaintext": "张三", "oaep_ciphertext": oaep,
}, ensure_ascii=False, indent=1))
