package apiv3_test

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay/apiv3"
)

// golden holds values computed by testdata/gen_golden.py with OpenSSL (through Python's
// cryptography), an implementation independent of this package, from the spec's steps.
type golden struct {
	RequestMessage   string `json:"request_message"`
	RequestSignature string `json:"request_signature"`
	GetMessage       string `json:"get_message"`
	GetSignature     string `json:"get_signature"`
	AnswerMessage    string `json:"answer_message"`
	AnswerSignature  string `json:"answer_signature"`
	PayMessage       string `json:"pay_message"`
	PaySignature     string `json:"pay_signature"`
	GCM              struct {
		Key, Nonce, Plaintext, Ciphertext string
		AssociatedData                    string `json:"associated_data"`
	} `json:"gcm"`
	Body           string `json:"body"`
	OAEPPlaintext  string `json:"oaep_plaintext"`
	OAEPCiphertext string `json:"oaep_ciphertext"`
}

func load(t testing.TB) (g golden, merchant, platform *rsa.PrivateKey) {
	t.Helper()
	data, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return g, readKey(t, "testdata/merchant_key.pem"), readKey(t, "testdata/platform_key.pem")
}

func readKey(t testing.TB, path string) *rsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := apiv3.ParsePrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func readPub(t testing.TB, path string) *rsa.PublicKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := apiv3.ParsePublicKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	goldenTS    = "1554208460"
	goldenNonce = "593BEC0C930BF1AFEB40B4A08C8FB242"
)

func TestSignStringsAreGolden(t *testing.T) {
	g, _, _ := load(t)
	if got := string(apiv3.RequestMessage("POST", "/v3/pay/transactions/jsapi", goldenTS, goldenNonce, []byte(g.Body))); got != g.RequestMessage {
		t.Errorf("POST message:\n%q\nwant\n%q", got, g.RequestMessage)
	}
	get := "/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=1230000109"
	if got := string(apiv3.RequestMessage("GET", get, goldenTS, goldenNonce, nil)); got != g.GetMessage {
		t.Errorf("GET message:\n%q\nwant\n%q", got, g.GetMessage)
	}
	if got := string(apiv3.AnswerMessage("1554209980", "c5ac7061fccab6bf3e254dcf98995b8c",
		[]byte(`{"prepay_id":"wx201410272009395522657a690389285100"}`))); got != g.AnswerMessage {
		t.Errorf("answer message:\n%q\nwant\n%q", got, g.AnswerMessage)
	}
	if got := string(apiv3.PayMessage("wx8888888888888888", "1414561699", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
		"prepay_id=wx201410272009395522657a690389285100")); got != g.PayMessage {
		t.Errorf("paySign message:\n%q\nwant\n%q", got, g.PayMessage)
	}
}

func TestSignaturesAreKnownAnswers(t *testing.T) {
	g, merchant, platform := load(t)
	for _, c := range []struct {
		name, msg, want string
		key             *rsa.PrivateKey
	}{
		{"request", g.RequestMessage, g.RequestSignature, merchant},
		{"get", g.GetMessage, g.GetSignature, merchant},
		{"answer", g.AnswerMessage, g.AnswerSignature, platform},
		{"paySign", g.PayMessage, g.PaySignature, merchant},
	} {
		got, err := apiv3.Sign(c.key, []byte(c.msg))
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s: signature %s, want %s", c.name, got, c.want)
		}
		if err := apiv3.Verify(&c.key.PublicKey, []byte(c.msg), c.want); err != nil {
			t.Errorf("%s: golden signature does not verify: %v", c.name, err)
		}
		// Every byte of the message counts.
		for _, i := range []int{0, len(c.msg) / 2, len(c.msg) - 1} {
			bad := []byte(c.msg)
			bad[i] ^= 1
			if err := apiv3.Verify(&c.key.PublicKey, bad, c.want); !errors.Is(err, apiv3.ErrSignature) {
				t.Errorf("%s: message changed at %d verified: %v", c.name, i, err)
			}
		}
		sig, _ := base64.StdEncoding.DecodeString(c.want)
		sig[len(sig)/2] ^= 1
		if err := apiv3.Verify(&c.key.PublicKey, []byte(c.msg), base64.StdEncoding.EncodeToString(sig)); !errors.Is(err, apiv3.ErrSignature) {
			t.Errorf("%s: changed signature verified: %v", c.name, err)
		}
	}
	// The public keys in testdata are the private keys' own.
	if !readPub(t, "testdata/merchant_pub.pem").Equal(&merchant.PublicKey) || !readPub(t, "testdata/platform_pub.pem").Equal(&platform.PublicKey) {
		t.Fatal("testdata public keys do not match the private keys")
	}
	// A signature under the other key does not verify.
	if err := apiv3.Verify(&platform.PublicKey, []byte(g.RequestMessage), g.RequestSignature); !errors.Is(err, apiv3.ErrSignature) {
		t.Errorf("merchant signature verified with the platform key: %v", err)
	}
	// A probe never verifies, even when it carries a valid signature after the prefix.
	if err := apiv3.Verify(&merchant.PublicKey, []byte(g.RequestMessage), apiv3.ProbePrefix+g.RequestSignature); !errors.Is(err, apiv3.ErrSignature) {
		t.Errorf("probe verified: %v", err)
	}
}

func TestAESGCMKnownAnswer(t *testing.T) {
	g, _, _ := load(t)
	v := g.GCM
	ct, err := apiv3.Seal([]byte(v.Key), v.Nonce, v.AssociatedData, []byte(v.Plaintext))
	if err != nil {
		t.Fatal(err)
	}
	if ct != v.Ciphertext {
		t.Fatalf("ciphertext %s, want %s", ct, v.Ciphertext)
	}
	pt, err := apiv3.Open([]byte(v.Key), v.Nonce, v.AssociatedData, v.Ciphertext)
	if err != nil || string(pt) != v.Plaintext {
		t.Fatalf("open: %q, %v", pt, err)
	}
	raw, _ := base64.StdEncoding.DecodeString(v.Ciphertext)
	flip := func(s string) string { b := []byte(s); b[0] ^= 1; return string(b) }
	for name, open := range map[string]func() ([]byte, error){
		"key": func() ([]byte, error) {
			return apiv3.Open([]byte(flip(v.Key)), v.Nonce, v.AssociatedData, v.Ciphertext)
		},
		"nonce": func() ([]byte, error) {
			return apiv3.Open([]byte(v.Key), flip(v.Nonce), v.AssociatedData, v.Ciphertext)
		},
		"associated data": func() ([]byte, error) { return apiv3.Open([]byte(v.Key), v.Nonce, "refund", v.Ciphertext) },
		"ciphertext": func() ([]byte, error) {
			b := append([]byte(nil), raw...)
			b[3] ^= 1
			return apiv3.Open([]byte(v.Key), v.Nonce, v.AssociatedData, base64.StdEncoding.EncodeToString(b))
		},
		"tag": func() ([]byte, error) {
			b := append([]byte(nil), raw...)
			b[len(b)-1] ^= 1
			return apiv3.Open([]byte(v.Key), v.Nonce, v.AssociatedData, base64.StdEncoding.EncodeToString(b))
		},
		"truncated": func() ([]byte, error) {
			return apiv3.Open([]byte(v.Key), v.Nonce, v.AssociatedData, base64.StdEncoding.EncodeToString(raw[:10]))
		},
		"not base64": func() ([]byte, error) { return apiv3.Open([]byte(v.Key), v.Nonce, v.AssociatedData, "%%%") },
		"short nonce": func() ([]byte, error) {
			return apiv3.Open([]byte(v.Key), v.Nonce[:11], v.AssociatedData, v.Ciphertext)
		},
	} {
		if pt, err := open(); !errors.Is(err, apiv3.ErrDecrypt) {
			t.Errorf("%s changed: opened %q, %v", name, pt, err)
		}
	}
	if _, err := apiv3.Seal([]byte("short"), v.Nonce, "", nil); err == nil {
		t.Error("a 5-byte key sealed")
	}
}

func TestSensitiveFieldsOAEP(t *testing.T) {
	g, merchant, _ := load(t)
	// OpenSSL's ciphertext opens here: the padding is OAEP with SHA-1 and MGF1-SHA-1.
	pt, err := apiv3.DecryptSensitive(merchant, g.OAEPCiphertext)
	if err != nil || pt != g.OAEPPlaintext {
		t.Fatalf("decrypt golden: %q, %v", pt, err)
	}
	ct, err := apiv3.EncryptSensitive(&merchant.PublicKey, "110101199003074477")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := apiv3.DecryptSensitive(merchant, ct); err != nil || pt != "110101199003074477" {
		t.Fatalf("round trip: %q, %v", pt, err)
	}
	raw, _ := base64.StdEncoding.DecodeString(ct)
	raw[10] ^= 1
	if _, err := apiv3.DecryptSensitive(merchant, base64.StdEncoding.EncodeToString(raw)); !errors.Is(err, apiv3.ErrDecrypt) {
		t.Errorf("tampered ciphertext decrypted: %v", err)
	}
}

func TestAuthorizationHeader(t *testing.T) {
	a := apiv3.Authorization{MchID: "1900009191", NonceStr: goldenNonce, Signature: "c2ln", Timestamp: goldenTS, SerialNo: "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"}
	const want = `WECHATPAY2-SHA256-RSA2048 mchid="1900009191",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="c2ln",timestamp="1554208460",serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"`
	if a.String() != want {
		t.Fatalf("header\n%s\nwant\n%s", a.String(), want)
	}
	if got, err := apiv3.ParseAuthorization(want); err != nil || got != a {
		t.Fatalf("parse: %+v, %v", got, err)
	}
	// Any order.
	reordered := `WECHATPAY2-SHA256-RSA2048 serial_no="S",timestamp="1",signature="x",nonce_str="n",mchid="m"`
	if got, err := apiv3.ParseAuthorization(reordered); err != nil || got.MchID != "m" || got.SerialNo != "S" {
		t.Fatalf("reordered: %+v, %v", got, err)
	}
	for _, bad := range []string{
		"",
		`Bearer mchid="m"`,
		`WECHATPAY2-SHA256-RSA2048`,
		`WECHATPAY2-SHA256-RSA2048 mchid="m",nonce_str="n",signature="x",timestamp="1"`,                         // serial missing
		`WECHATPAY2-SHA256-RSA2048 mchid="m",nonce_str="n",signature="x",timestamp="1",serial_no=""`,            // empty
		`WECHATPAY2-SHA256-RSA2048 mchid="m",mchid="m",nonce_str="n",signature="x",timestamp="1",serial_no="s"`, // repeated
		`WECHATPAY2-SHA256-RSA2048 mchid="m",nonce_str="n",signature="x",timestamp="1",serial_no="s",extra="e"`,
		`WECHATPAY2-SHA256-RSA2048 mchid=m,nonce_str="n",signature="x",timestamp="1",serial_no="s"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="m" nonce_str="n",signature="x",timestamp="1",serial_no="s"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="m",nonce_str="n",signature="x",timestamp="1",serial_no="s",`,
		`WECHATPAY2-SHA256-RSA2048 mchid="m,nonce_str="n",signature="x",timestamp="1",serial_no="s`,
		"WECHATPAY2-SHA256-RSA2048 " + strings.Repeat("x", 3000),
	} {
		if got, err := apiv3.ParseAuthorization(bad); !errors.Is(err, apiv3.ErrSignature) {
			t.Errorf("%q parsed: %+v, %v", bad, got, err)
		}
	}
}

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func merchantKeys(serial string, pub *rsa.PublicKey) apiv3.MerchantKeys {
	return func(_ context.Context, mchid, s string) (*rsa.PublicKey, error) {
		if mchid != "1230000109" || s != serial {
			return nil, apiv3.ErrUnknownKey
		}
		return pub, nil
	}
}

func TestRequestVerification(t *testing.T) {
	g, merchant, _ := load(t)
	clk := &clock{time.Unix(1554208460, 0)}
	c := &apiv3.Client{MchID: "1230000109", SerialNo: "MSERIAL", Key: merchant, Now: clk.Now}
	v := &apiv3.RequestVerifier{Keys: merchantKeys("MSERIAL", &merchant.PublicKey), Now: clk.Now}
	ctx := context.Background()

	signed := func() *http.Request {
		r := httptest.NewRequest("POST", "/cash/v3/pay/transactions/jsapi?x=1", strings.NewReader(g.Body))
		if err := c.Authorize(r, []byte(g.Body)); err != nil {
			t.Fatal(err)
		}
		return r
	}
	verify := func(r *http.Request, body string) error {
		_, err := v.Verify(ctx, r.Method, r.RequestURI, r.Header, []byte(body))
		return err
	}
	r := signed()
	if err := verify(r, g.Body); err != nil {
		t.Fatalf("valid request refused: %v", err)
	}
	if err := verify(r, g.Body); !errors.Is(err, apiv3.ErrSignature) {
		t.Fatalf("replayed request accepted: %v", err)
	}

	field := func(r *http.Request, name, val string) {
		a, err := apiv3.ParseAuthorization(r.Header.Get("Authorization"))
		if err != nil {
			t.Fatal(err)
		}
		switch name {
		case "mchid":
			a.MchID = val
		case "nonce":
			a.NonceStr = val
		case "timestamp":
			a.Timestamp = val
		case "serial":
			a.SerialNo = val
		case "signature":
			a.Signature = val
		}
		r.Header.Set("Authorization", a.String())
	}
	for name, tamper := range map[string]func(r *http.Request) (body string){
		"method":    func(r *http.Request) string { r.Method = "PUT"; return g.Body },
		"path":      func(r *http.Request) string { r.RequestURI = "/cash/v3/pay/transactions/native?x=1"; return g.Body },
		"query":     func(r *http.Request) string { r.RequestURI = "/cash/v3/pay/transactions/jsapi?x=2"; return g.Body },
		"body":      func(r *http.Request) string { return strings.Replace(g.Body, "100", "1", 1) },
		"empty":     func(r *http.Request) string { return "" },
		"nonce":     func(r *http.Request) string { field(r, "nonce", "OTHERNONCE"); return g.Body },
		"timestamp": func(r *http.Request) string { field(r, "timestamp", "1554208461"); return g.Body },
		"mchid":     func(r *http.Request) string { field(r, "mchid", "1230000110"); return g.Body },
		"serial":    func(r *http.Request) string { field(r, "serial", "OTHER"); return g.Body },
		"signature": func(r *http.Request) string { field(r, "signature", g.RequestSignature); return g.Body },
		"probe":     func(r *http.Request) string { field(r, "signature", apiv3.ProbePrefix+"abc"); return g.Body },
		"no header": func(r *http.Request) string { r.Header.Del("Authorization"); return g.Body },
	} {
		r := signed()
		body := tamper(r)
		if err := verify(r, body); err == nil {
			t.Errorf("request with changed %s accepted", name)
		}
	}

	// The window: 5 minutes either way.
	r = signed()
	clk.t = clk.t.Add(apiv3.Window + time.Second)
	if err := verify(r, g.Body); !errors.Is(err, apiv3.ErrSignature) {
		t.Errorf("stale request accepted: %v", err)
	}
	clk.t = clk.t.Add(-apiv3.Window - time.Second)
	r = signed()
	clk.t = clk.t.Add(-apiv3.Window - time.Second)
	if err := verify(r, g.Body); !errors.Is(err, apiv3.ErrSignature) {
		t.Errorf("request from the future accepted: %v", err)
	}
	clk.t = clk.t.Add(2 * time.Second)
	if err := verify(r, g.Body); err != nil {
		t.Errorf("request 4m59s ahead refused: %v", err)
	}
}

func TestAnswerVerification(t *testing.T) {
	_, _, platform := load(t)
	clk := &clock{time.Unix(1700000000, 0)}
	s := &apiv3.Signer{Key: platform, Serial: "PUB_KEY_ID_0112345678", Now: clk.Now}
	v := &apiv3.AnswerVerifier{Key: &platform.PublicKey, KeyID: "PUB_KEY_ID_0112345678", Now: clk.Now}
	body := []byte(`{"prepay_id":"wx26112221580621e9b071c00d9e093b0000"}`)
	ctx := context.Background()
	signed := func() http.Header {
		h := http.Header{}
		if err := s.SignHeaders(h, body); err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := signed()
	if err := v.Verify(ctx, h, body); err != nil {
		t.Fatalf("valid answer refused: %v", err)
	}
	if err := v.Verify(ctx, h, body); !errors.Is(err, apiv3.ErrSignature) {
		t.Fatalf("replayed answer accepted: %v", err)
	}
	for name, tamper := range map[string]func(h http.Header) []byte{
		"body":      func(h http.Header) []byte { return []byte(`{"prepay_id":"wx26112221580621e9b071c00d9e093b0001"}`) },
		"timestamp": func(h http.Header) []byte { h.Set(apiv3.HeaderTimestamp, "1700000001"); return body },
		"nonce":     func(h http.Header) []byte { h.Set(apiv3.HeaderNonce, "N"+h.Get(apiv3.HeaderNonce)); return body },
		"serial":    func(h http.Header) []byte { h.Set(apiv3.HeaderSerial, "PUB_KEY_ID_0199999999"); return body },
		"signature": func(h http.Header) []byte { h.Set(apiv3.HeaderSignature, "AAAA"); return body },
		"probe": func(h http.Header) []byte {
			h.Set(apiv3.HeaderSignature, apiv3.ProbePrefix+h.Get(apiv3.HeaderSignature))
			return body
		},
		"unsigned": func(h http.Header) []byte { h.Del(apiv3.HeaderSignature); return body },
	} {
		h := signed()
		if err := v.Verify(ctx, h, tamper(h)); !errors.Is(err, apiv3.ErrSignature) {
			t.Errorf("answer with changed %s accepted: %v", name, err)
		}
	}
	h = signed()
	clk.t = clk.t.Add(apiv3.Window + time.Second)
	if err := v.Verify(ctx, h, body); !errors.Is(err, apiv3.ErrSignature) {
		t.Errorf("stale answer accepted: %v", err)
	}
}

func TestCallbackRoundTripAndTampering(t *testing.T) {
	_, _, platform := load(t)
	key := []byte("0123456789abcdefghijklmnopqrstuv")
	s := &apiv3.Signer{Key: platform, Serial: "PUB_KEY_ID_01"}
	v := &apiv3.AnswerVerifier{Key: &platform.PublicKey, KeyID: "PUB_KEY_ID_01"}
	ctx := context.Background()
	event := []byte(`{"out_trade_no":"T1","trade_state":"SUCCESS","amount":{"total":1,"payer_total":1}}`)
	build := func(edit func(n *apiv3.Notification)) ([]byte, http.Header) {
		n, err := apiv3.NewNotification(key, "EV-1", apiv3.EventTransactionSuccess, "支付成功", apiv3.OriginalTypeTransaction, time.Now(), event)
		if err != nil {
			t.Fatal(err)
		}
		if len(n.Resource.Nonce) != 12 || n.Resource.AssociatedData != "transaction" {
			t.Fatalf("resource %+v", n.Resource)
		}
		if edit != nil {
			edit(n)
		}
		body, h, err := s.BuildCallback(n)
		if err != nil {
			t.Fatal(err)
		}
		return body, h
	}
	body, h := build(nil)
	n, pt, err := apiv3.ParseCallback(ctx, v, key, h, body)
	if err != nil {
		t.Fatal(err)
	}
	if string(pt) != string(event) || n.ID != "EV-1" || n.EventType != apiv3.EventTransactionSuccess || n.ResourceType != "encrypt-resource" {
		t.Fatalf("parsed %+v %s", n, pt)
	}

	// Signed by the channel, but the resource changed: the AEAD refuses it.
	for name, edit := range map[string]func(n *apiv3.Notification){
		"ciphertext":      func(n *apiv3.Notification) { n.Resource.Ciphertext = "A" + n.Resource.Ciphertext[1:] },
		"nonce":           func(n *apiv3.Notification) { n.Resource.Nonce = "000000000000" },
		"associated_data": func(n *apiv3.Notification) { n.Resource.AssociatedData = "refund" },
	} {
		body, h := build(edit)
		if _, pt, err := apiv3.ParseCallback(ctx, v, key, h, body); !errors.Is(err, apiv3.ErrDecrypt) {
			t.Errorf("resource with changed %s opened: %s, %v", name, pt, err)
		}
	}
	body, h = build(nil)
	if _, _, err := apiv3.ParseCallback(ctx, v, []byte("0123456789abcdefghijklmnopqrstuw"), h, body); !errors.Is(err, apiv3.ErrDecrypt) {
		t.Errorf("opened with another APIv3 key: %v", err)
	}
	// Changed after signing, replayed, probed: the signature refuses it.
	body, h = build(nil)
	changed := []byte(strings.Replace(string(body), "EV-1", "EV-2", 1))
	if _, _, err := apiv3.ParseCallback(ctx, v, key, h, changed); !errors.Is(err, apiv3.ErrSignature) {
		t.Errorf("changed body accepted: %v", err)
	}
	if _, _, err := apiv3.ParseCallback(ctx, v, key, h, body); err != nil {
		t.Fatalf("first delivery refused: %v", err)
	}
	if _, _, err := apiv3.ParseCallback(ctx, v, key, h, body); !errors.Is(err, apiv3.ErrSignature) {
		t.Errorf("replayed callback accepted: %v", err)
	}
	body, h = build(nil)
	h.Set(apiv3.HeaderSignature, apiv3.ProbePrefix+"anything")
	if _, _, err := apiv3.ParseCallback(ctx, v, key, h, body); !errors.Is(err, apiv3.ErrSignature) {
		t.Errorf("probe accepted: %v", err)
	}
}

func TestClientAgainstServer(t *testing.T) {
	_, merchant, platform := load(t)
	signer := &apiv3.Signer{Key: platform, Serial: "PUB_KEY_ID_01"}
	rv := &apiv3.RequestVerifier{Keys: merchantKeys("MSERIAL", &merchant.PublicKey)}
	var mode string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := make([]byte, r.ContentLength)
		r.Body.Read(body)
		if _, err := rv.Verify(r.Context(), r.Method, r.RequestURI, r.Header, body); err != nil {
			signer.WriteError(w, apiv3.Errorf(401, apiv3.CodeSignError, "%v", err))
			return
		}
		switch mode {
		case "ok":
			signer.WriteJSON(w, 200, apiv3.PrepayAnswer{PrepayID: "wx1"})
		case "error":
			signer.WriteError(w, apiv3.ParamError("body", "amount.total", "must be positive"))
		case "unsigned":
			w.Write([]byte(`{"prepay_id":"wx1"}`))
		case "tampered":
			signer.SignHeaders(w.Header(), []byte(`{"prepay_id":"wx1"}`))
			w.Write([]byte(`{"prepay_id":"wx2"}`))
		case "unsigned error":
			w.WriteHeader(404)
			w.Write([]byte(`{"code":"ORDER_NOT_EXIST","message":"no"}`))
		}
	}))
	defer srv.Close()
	c := &apiv3.Client{BaseURL: srv.URL + "/cash", MchID: "1230000109", SerialNo: "MSERIAL", Key: merchant,
		Verifier: &apiv3.AnswerVerifier{Key: &platform.PublicKey, KeyID: "PUB_KEY_ID_01"}}
	ctx := context.Background()
	var out apiv3.PrepayAnswer
	mode = "ok"
	if err := c.Do(ctx, "POST", apiv3.PathJSAPI, apiv3.PrepayRequest{MchID: "1230000109"}, &out); err != nil || out.PrepayID != "wx1" {
		t.Fatalf("ok: %+v, %v", out, err)
	}
	mode = "error"
	var apiErr *apiv3.Error
	if err := c.Do(ctx, "POST", apiv3.PathJSAPI, apiv3.PrepayRequest{}, &out); !errors.As(err, &apiErr) ||
		apiErr.Status != 400 || apiErr.Code != apiv3.CodeParamError || apiErr.Detail.Field != "amount.total" {
		t.Fatalf("error answer: %v", err)
	}
	for _, m := range []string{"unsigned", "tampered", "unsigned error"} {
		mode = m
		err := c.Do(ctx, "GET", apiv3.PathByOutTrade+"T1?mchid=1230000109", nil, &out)
		if !errors.Is(err, apiv3.ErrUnverified) || errors.As(err, &apiErr) {
			t.Errorf("%s answer: %v", m, err)
		}
	}
	// A client with another merchant key is refused by the server (and the refusal is signed).
	other := *c
	other.Key = platform
	mode = "ok"
	if err := other.Do(ctx, "GET", apiv3.PathByOutTrade+"T1?mchid=1230000109", nil, nil); !errors.As(err, &apiErr) || apiErr.Code != apiv3.CodeSignError {
		t.Errorf("wrong merchant key: %v", err)
	}
	srv.Close()
	if err := c.Do(ctx, "GET", "/x", nil, nil); !errors.Is(err, apiv3.ErrTransport) {
		t.Errorf("closed server: %v", err)
	}
}

func TestKeysPEMRoundTrip(t *testing.T) {
	_, merchant, _ := load(t)
	k, err := apiv3.ParsePrivateKey([]byte(apiv3.EncodePrivateKey(merchant)))
	if err != nil || !k.Equal(merchant) {
		t.Fatalf("private key: %v", err)
	}
	p, err := apiv3.ParsePublicKey([]byte(apiv3.EncodePublicKey(&merchant.PublicKey)))
	if err != nil || !p.Equal(&merchant.PublicKey) {
		t.Fatalf("public key: %v", err)
	}
	if _, err := apiv3.ParsePublicKey([]byte("not pem")); err == nil {
		t.Error("garbage parsed as a public key")
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add(`WECHATPAY2-SHA256-RSA2048 mchid="1900009191",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="c2ln",timestamp="1554208460",serial_no="1DDE"`)
	f.Add(`WECHATPAY2-SHA256-RSA2048 mchid="",nonce_str=""`)
	f.Add(`WECHATPAY2-SHA256-RSA2048 a="b",`)
	f.Fuzz(func(t *testing.T, h string) {
		a, err := apiv3.ParseAuthorization(h)
		if err != nil {
			return
		}
		// What parses is complete and prints back to something that parses the same.
		if a.MchID == "" || a.NonceStr == "" || a.Signature == "" || a.Timestamp == "" || a.SerialNo == "" {
			t.Fatalf("parsed with an empty field: %+v", a)
		}
		b, err := apiv3.ParseAuthorization(a.String())
		if err != nil || b != a {
			t.Fatalf("%q → %+v → %q → %+v, %v", h, a, a.String(), b, err)
		}
	})
}

func FuzzParseCallback(f *testing.F) {
	_, _, platform := load(f)
	key := []byte("0123456789abcdefghijklmnopqrstuv")
	s := &apiv3.Signer{Key: platform, Serial: "PUB_KEY_ID_01"}
	n, err := apiv3.NewNotification(key, "EV-1", apiv3.EventRefundSuccess, "退款成功", apiv3.OriginalTypeRefund, time.Now(), []byte(`{"refund_status":"SUCCESS"}`))
	if err != nil {
		f.Fatal(err)
	}
	body, h, err := s.BuildCallback(n)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, h.Get(apiv3.HeaderTimestamp), h.Get(apiv3.HeaderNonce), h.Get(apiv3.HeaderSignature), h.Get(apiv3.HeaderSerial))
	f.Add([]byte(`{}`), "0", "n", apiv3.ProbePrefix, "PUB_KEY_ID_01")
	f.Fuzz(func(t *testing.T, body []byte, ts, nonce, sig, serial string) {
		v := &apiv3.AnswerVerifier{Key: &platform.PublicKey, KeyID: "PUB_KEY_ID_01"}
		h := http.Header{}
		h.Set(apiv3.HeaderTimestamp, ts)
		h.Set(apiv3.HeaderNonce, nonce)
		h.Set(apiv3.HeaderSignature, sig)
		h.Set(apiv3.HeaderSerial, serial)
		n, pt, err := apiv3.ParseCallback(context.Background(), v, key, h, body)
		if err != nil {
			return
		}
		// Only the channel's own callback gets through, and it opens to what was sealed.
		if n.ID != "EV-1" || string(pt) != `{"refund_status":"SUCCESS"}` {
			t.Fatalf("accepted %+v %q", n, pt)
		}
	})
}
