package hsa

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"testing"
)

// FuzzOpen: Open never panics on any JSON envelope, and whatever it accepts is content that the
// holder of the private key sealed: the accepted envelope's sign string (its fields and cleaned
// data, under the secret it opened with) is that of one of the genuine envelopes below. The
// fuzzer knows the secrets but not the private keys, so anything else it gets accepted is a
// forgery. Seeds: testdata/fuzz/FuzzOpen (genuine envelopes, one made by OpenSSL, and variants).
func FuzzOpen(f *testing.F) {
	ik, bk := instKey(f), bureauKey(f)
	genuine := map[string]bool{}
	seal := func(secret string, data any, ans *Answer) {
		k := ik
		if ans != nil {
			k = bk
		}
		env, err := Seal(testAppID, secret, k, data, ans, testNow)
		if err != nil {
			f.Fatal(err)
		}
		genuine[SignString(env.fields(), Clean(data), secret)] = true
		b, _ := json.Marshal(env)
		f.Add(b)
	}
	seal(testAppSecret, settleRequest(), nil)
	seal(testAppSecret, map[string]any{"n": json.Number("1.50"), "list": []any{map[string]any{"b": true, "a": 0}}, "名": "张三"}, nil)
	seal(testAppSecret, map[string]any{"ordStas": "4", "fundPay": "8.00"}, &Answer{0, "成功", true})
	seal(testAppSecret, map[string]any{"ordStas": "4"}, &Answer{2001, "订单已结算", false})
	seal("", nil, &Answer{CodeBadSignature, "signData does not verify", false})
	seal(testAppSecret, nil, &Answer{CodeReplay, "again", false})
	// The envelope made by OpenSSL (TestOpenSSLEnvelope), signed with the institution's key.
	genuine[`appId=`+testAppID+`&data={"payOrdId":"ORD0001","userName":"张三"}&encType=SM4&signType=SM2&timestamp=20261130120000&version=2.0.1&key=`+testAppSecret] = true

	f.Fuzz(func(t *testing.T, raw []byte) {
		var env Envelope
		if json.Unmarshal(raw, &env) != nil {
			return
		}
		for _, secret := range []string{testAppSecret, ""} {
			for _, pub := range []*ecdsa.PublicKey{&ik.PublicKey, &bk.PublicKey} {
				data, err := Open(&env, secret, pub)
				if err != nil {
					continue
				}
				var d any
				if data != nil {
					if d, err = decodeJSON(data); err != nil {
						t.Fatalf("Open returned data that is not JSON: %q", data)
					}
					again, _ := CompactJSON(Clean(d))
					if !bytes.Equal(again, data) {
						t.Fatalf("Open returned data that is not clean compact JSON: %s", data)
					}
				}
				if s := SignString(env.fields(), d, secret); !genuine[s] {
					t.Fatalf("Open accepted content that was never sealed: %s", s)
				}
			}
		}
	})
}
