package hsa

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC) // 12:00:00 in China

func settleRequest() map[string]any {
	return map[string]any{
		"payAuthNo": "AUTH0123456789ABCDEF", "payOrdId": "ORD20261130000001", "payToken": "TOKEN0123456789",
		"orgCodg": "H44030100001", "orgBizSer": "BIZ20261130000001", "chrgBchno": "CHRG001", "feeType": "01",
		"mdtrtId": "MDTRT0001", "acctUsedFlag": "1", "note": "", "extra": nil,
	}
}

func TestSealOpenRequest(t *testing.T) {
	k := instKey(t)
	env, err := Seal(testAppID, testAppSecret, k, settleRequest(), nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if env.AppID != testAppID || env.EncType != "SM4" || env.SignType != "SM2" || env.Version != "2.0.1" || env.Timestamp != "20261130120000" {
		t.Fatalf("envelope fields: %+v", env)
	}
	if env.Code != nil || env.Success != nil || env.Message != "" {
		t.Fatalf("a request carries answer fields: %+v", env)
	}
	if env.EncData != strings.ToUpper(env.EncData) || len(env.EncData)%32 != 0 {
		t.Fatalf("encData is not upper-case hex of whole blocks: %s", env.EncData)
	}
	if len(mustBase64(t, env.SignData)) != 64 {
		t.Fatalf("signData is not 64 bytes r‖s")
	}
	wire, _ := json.Marshal(env)
	for _, absent := range []string{`"code"`, `"message"`, `"success"`} {
		if strings.Contains(string(wire), absent) {
			t.Fatalf("request JSON has %s: %s", absent, wire)
		}
	}
	var back Envelope
	if err := json.Unmarshal(wire, &back); err != nil {
		t.Fatal(err)
	}
	data, err := Open(&back, testAppSecret, &k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := CompactJSON(Clean(settleRequest()))
	if string(data) != string(want) {
		t.Fatalf("opened %s, want %s", data, want)
	}
	// Encrypted is the compact JSON of the cleaned data, sorted keys, empties dropped.
	if strings.Contains(string(data), "note") || !strings.HasPrefix(string(data), `{"acctUsedFlag":"1","chrgBchno"`) {
		t.Fatalf("plaintext is not cleaned compact JSON: %s", data)
	}
}

func TestSealOpenAnswer(t *testing.T) {
	bk := bureauKey(t)
	for _, ans := range []Answer{{0, "成功", true}, {2001, "订单已结算", false}} {
		data := map[string]any{"payOrdId": "ORD1", "ordStas": "4", "fundPay": "8.00", "ownPayAmt": "0.00"}
		env, err := Seal(testAppID, testAppSecret, bk, data, &ans, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if *env.Code != ans.Code || *env.Success != ans.Success || env.Message != ans.Message {
			t.Fatalf("answer fields %+v", env)
		}
		got, err := Open(env, testAppSecret, &bk.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != `{"fundPay":"8.00","ordStas":"4","ownPayAmt":"0.00","payOrdId":"ORD1"}` {
			t.Fatalf("data %s", got)
		}
	}
}

func TestRefusalEnvelope(t *testing.T) {
	bk := bureauKey(t)
	env, err := Seal(testAppID, "", bk, nil, &Answer{CodeBadSignature, "signature does not verify", false}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if env.EncData != "" {
		t.Fatalf("a refusal has encData")
	}
	data, err := Open(env, "", &bk.PublicKey)
	if err != nil || data != nil {
		t.Fatalf("refusal opens to %s, %v", data, err)
	}
	// Keyless refusals do not verify under a secret, and the other way round.
	if _, err := Open(env, testAppSecret, &bk.PublicKey); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("keyless refusal under a secret: %v", err)
	}
	// Stripping a refusal's code or success makes it fail.
	c := *env
	c.Success = nil
	if _, err := Open(&c, "", &bk.PublicKey); err == nil {
		t.Fatal("refusal without success verifies")
	}
}

// TestTampering: a change to any field of a request or an answer makes Open fail.
func TestTampering(t *testing.T) {
	bk := bureauKey(t)
	orig, err := Seal(testAppID, testAppSecret, bk, settleRequest(), &Answer{0, "成功", true}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(orig, testAppSecret, &bk.PublicKey); err != nil {
		t.Fatal(err)
	}
	flipHex := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	sig := mustBase64(t, orig.SignData)
	cases := map[string]func(e *Envelope){
		"encData first byte":  func(e *Envelope) { e.EncData = flipHex(e.EncData, 0) },
		"encData last block":  func(e *Envelope) { e.EncData = flipHex(e.EncData, len(e.EncData)-20) },
		"encData last byte":   func(e *Envelope) { e.EncData = flipHex(e.EncData, len(e.EncData)-1) },
		"encData truncated":   func(e *Envelope) { e.EncData = e.EncData[:len(e.EncData)-32] },
		"encData dropped":     func(e *Envelope) { e.EncData = "" },
		"encData not hex":     func(e *Envelope) { e.EncData = "ZZ" + e.EncData[2:] },
		"signData r":          func(e *Envelope) { e.SignData = flipBit(sig, 3) },
		"signData s":          func(e *Envelope) { e.SignData = flipBit(sig, 40) },
		"signData short":      func(e *Envelope) { e.SignData = base64.StdEncoding.EncodeToString(sig[:63]) },
		"signData empty":      func(e *Envelope) { e.SignData = "" },
		"signData not base64": func(e *Envelope) { e.SignData = "!" + e.SignData[1:] },
		"timestamp":           func(e *Envelope) { e.Timestamp = "20261130120001" },
		"appId":               func(e *Envelope) { e.AppID = e.AppID[:31] + "9" },
		"appId beyond 16":     func(e *Envelope) { e.AppID = e.AppID + "X" },
		"version":             func(e *Envelope) { e.Version = "2.0.2" },
		"encType":             func(e *Envelope) { e.EncType = "AES" },
		"signType":            func(e *Envelope) { e.SignType = "RSA" },
		"code":                func(e *Envelope) { c := 1; e.Code = &c },
		"code dropped":        func(e *Envelope) { e.Code = nil },
		"message":             func(e *Envelope) { e.Message = "成功!" },
		"message dropped":     func(e *Envelope) { e.Message = "" },
		"success":             func(e *Envelope) { f := false; e.Success = &f },
		"success dropped":     func(e *Envelope) { e.Success = nil },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			e := *orig
			change(&e)
			if data, err := Open(&e, testAppSecret, &bk.PublicKey); err == nil {
				t.Fatalf("tampered envelope opens: %s", data)
			}
		})
	}
	// Swapping in another envelope's encData (same key, other data) fails too.
	other, _ := Seal(testAppID, testAppSecret, bk, map[string]any{"payOrdId": "ORD2"}, &Answer{0, "成功", true}, testNow)
	e := *orig
	e.EncData = other.EncData
	if _, err := Open(&e, testAppSecret, &bk.PublicKey); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("swapped encData: %v", err)
	}
}

func flipBit(b []byte, i int) string {
	c := append([]byte(nil), b...)
	c[i] ^= 0x10
	return base64.StdEncoding.EncodeToString(c)
}

func TestWrongKeys(t *testing.T) {
	k := instKey(t)
	env, err := Seal(testAppID, testAppSecret, k, settleRequest(), nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(env, testAppSecret, &otherKey(t).PublicKey); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another public key: %v", err)
	}
	if _, err := Open(env, testAppSecret+"x", &k.PublicKey); err == nil {
		t.Errorf("another appSecret opens")
	}
	if _, err := Open(env, testAppSecret, nil); err == nil {
		t.Errorf("no public key opens")
	}
	if _, err := Seal(testAppID, testAppSecret, nil, settleRequest(), nil, testNow); err == nil {
		t.Errorf("Seal without a key")
	}
	if _, err := Seal("SHORTAPPID", testAppSecret, k, settleRequest(), nil, testNow); err == nil {
		t.Errorf("Seal with an appId too short to derive a key")
	}
	if _, err := Seal(testAppID, testAppSecret, k, map[string]any{"c": make(chan int)}, nil, testNow); err == nil {
		t.Errorf("Seal of data encoding/json cannot marshal")
	}
}

// TestOpenLenient: what other implementations may send and still be the signed content — lower
// case hex, plaintext that is not compact or not cleaned — opens.
func TestOpenLenient(t *testing.T) {
	k := instKey(t)
	data := map[string]any{"b": "2", "a": "1"}
	env, _ := Seal(testAppID, testAppSecret, k, data, nil, testNow)
	e := *env
	e.EncData = strings.ToLower(e.EncData)
	if _, err := Open(&e, testAppSecret, &k.PublicKey); err != nil {
		t.Fatalf("lower-case hex: %v", err)
	}
	key, _ := DeriveKey(testAppID, testAppSecret)
	ct, _ := sm4ECB(key, []byte(`{ "b" : "2", "a":"1", "c": "", "d": [] }`))
	e.EncData = strings.ToUpper(hexString(ct))
	got, err := Open(&e, testAppSecret, &k.PublicKey)
	if err != nil || string(got) != `{"a":"1","b":"2"}` {
		t.Fatalf("loose plaintext: %s %v", got, err)
	}
	for name, plain := range map[string]string{
		"not JSON":       `{"a":"1","b":"2"`,
		"trailing data":  `{"a":"1","b":"2"} {}`,
		"another number": `{"a":1,"b":"2"}`,
	} {
		ct, _ := sm4ECB(key, []byte(plain))
		e.EncData = hexString(ct)
		if _, err := Open(&e, testAppSecret, &k.PublicKey); err == nil {
			t.Errorf("%s opens", name)
		}
	}
	// Invalid UTF-8 is refused even where decoding would turn it into the U+FFFD that was signed.
	env, _ = Seal(testAppID, testAppSecret, k, map[string]any{"b": "2\uFFFD"}, nil, testNow)
	e = *env
	ct, _ = sm4ECB(key, []byte("{\"b\":\"2\xff\"}"))
	e.EncData = hexString(ct)
	if _, err := Open(&e, testAppSecret, &k.PublicKey); !errors.Is(err, ErrUndecryptable) {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

// TestOtherFields: keys the package does not name take part in the signature (all but extra),
// survive a JSON round trip, and names are matched exactly.
func TestOtherFields(t *testing.T) {
	bk := bureauKey(t)
	data := map[string]any{"ordStas": "4"}
	env, err := Seal(testAppID, testAppSecret, bk, data, &Answer{0, "成功", true}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip := func(e *Envelope) *Envelope {
		t.Helper()
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back Envelope
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return &back
	}
	open := func(e *Envelope) error {
		_, err := Open(roundTrip(e), testAppSecret, &bk.PublicKey)
		return err
	}

	e := *env
	e.Other = map[string]any{"extra": map[string]any{"hint": "not signed"}}
	if err := open(&e); err != nil {
		t.Fatalf("extra added after sealing: %v", err)
	}
	e.Other = map[string]any{"traceId": "T1"}
	if err := open(&e); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("an unsigned field added after sealing: %v", err)
	}

	// A sender that signs a field of its own: we verify it and keep it.
	e = *env
	e.Other = map[string]any{"traceId": "T1", "extra": "x"}
	msg := SignString(e.fields(), data, testAppSecret)
	if !strings.Contains(msg, "&traceId=T1&") || strings.Contains(msg, "extra") {
		t.Fatalf("sign string %s", msg)
	}
	if e.SignData, err = sign(bk, msg); err != nil {
		t.Fatal(err)
	}
	back := roundTrip(&e)
	if back.Other["traceId"] != "T1" {
		t.Fatalf("traceId lost: %+v", back)
	}
	if _, err := Open(back, testAppSecret, &bk.PublicKey); err != nil {
		t.Fatalf("signed own field: %v", err)
	}
	back.Other["traceId"] = "T2"
	if _, err := Open(back, testAppSecret, &bk.PublicKey); err == nil {
		t.Fatal("changed own field opens")
	}

	// Names are exact: "AppId" is another key, signed as such, so the envelope does not open.
	raw, _ := json.Marshal(env)
	var renamed Envelope
	if err := json.Unmarshal([]byte(strings.Replace(string(raw), `"appId"`, `"AppId"`, 1)), &renamed); err != nil {
		t.Fatal(err)
	}
	if renamed.AppID != "" || renamed.Other["AppId"] != testAppID {
		t.Fatalf("AppId read as appId: %+v", renamed)
	}

	// code and success written as strings sign the same and open; other shapes are malformed.
	s := strings.Replace(strings.Replace(string(raw), `"code":0`, `"code":"0"`, 1), `"success":true`, `"success":"true"`, 1)
	var str Envelope
	if err := json.Unmarshal([]byte(s), &str); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(&str, testAppSecret, &bk.PublicKey); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	for _, bad := range []string{`"code":0.0`, `"code":-0`, `"code":"x"`, `"code":true`, `"success":1`, `"version":2`, `"appId":{}`} {
		key := bad[:strings.Index(bad, ":")]
		i := strings.Index(string(raw), key+":")
		j := i + strings.IndexAny(string(raw)[i:], ",}")
		doc := string(raw)[:i] + bad + string(raw)[j:]
		var e Envelope
		if err := json.Unmarshal([]byte(doc), &e); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", doc, err)
		}
	}
	var notObject Envelope
	if err := json.Unmarshal([]byte(`[1]`), &notObject); err == nil {
		t.Error("an array is an envelope")
	}
}
