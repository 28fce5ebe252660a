package hsa

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
)

// Known answers of the standards, checked against independent implementations (OpenSSL 3 gives
// the same figures), so that a wrong library or a wrong use of it cannot pass.

func TestSM4KnownAnswer(t *testing.T) {
	// GB/T 32907-2016 appendix A: key = plaintext = 0123456789abcdeffedcba9876543210.
	key := mustHex(t, "0123456789abcdeffedcba9876543210")
	block, err := sm4.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.Clone(key)
	block.Encrypt(buf, buf)
	if got, want := hex.EncodeToString(buf), "681edf34d206965e86b3e94f536e4246"; got != want {
		t.Fatalf("one encryption = %s, want %s", got, want)
	}
	block.Decrypt(buf, buf)
	if !bytes.Equal(buf, key) {
		t.Fatalf("decryption = %x, want %x", buf, key)
	}
	// Example 2: the same block encrypted 1 000 000 times (a fraction of a second).
	buf = bytes.Clone(key)
	for range 1_000_000 {
		block.Encrypt(buf, buf)
	}
	if got, want := hex.EncodeToString(buf), "595298c7c6fd271f0402f804c33d3f66"; got != want {
		t.Fatalf("1 000 000 encryptions = %s, want %s", got, want)
	}
}

func TestSM3KnownAnswer(t *testing.T) {
	// GB/T 32905-2016 appendix A.
	for _, c := range []struct{ in, want string }{
		{"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"},
		{strings.Repeat("abcd", 16), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"},
	} {
		sum := sm3.Sum([]byte(c.in))
		if got := hex.EncodeToString(sum[:]); got != c.want {
			t.Errorf("SM3(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestSM2StandardExample: the signature example of GB/T 32918.2 on the recommended curve
// (private key, its public key, and the signature of "message digest" with the default user id).
func TestSM2StandardExample(t *testing.T) {
	k, err := ParsePrivateKey(instKeyB64)
	if err != nil {
		t.Fatal(err)
	}
	if got := EncodePrivateKey(k); got != instKeyB64 {
		t.Fatalf("EncodePrivateKey = %s, want %s", got, instKeyB64)
	}
	wantPub := "04" +
		"09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020" +
		"CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
	pub := mustBase64(t, EncodePublicKey(&k.PublicKey))
	if got := strings.ToUpper(hex.EncodeToString(pub)); got != wantPub {
		t.Fatalf("public key = %s, want %s", got, wantPub)
	}
	sig := base64.StdEncoding.EncodeToString(mustHex(t,
		"F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"+
			"B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"))
	if err := verify(&k.PublicKey, "message digest", sig); err != nil {
		t.Fatalf("standard signature: %v", err)
	}
	if err := verify(&k.PublicKey, "message digesT", sig); err == nil {
		t.Fatal("standard signature verifies another message")
	}
}

// TestOpenSSLEnvelope opens an envelope made entirely by OpenSSL 3.0 (openssl enc -sm4-ecb with
// the derived key; openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:1234567812345678,
// the DER signature turned into r‖s), so Seal/Open agree with an implementation that is not ours.
func TestOpenSSLEnvelope(t *testing.T) {
	env := &Envelope{
		AppID: testAppID, EncType: "SM4", SignType: "SM2", Version: "2.0.1",
		Timestamp: "20261130120000",
		EncData:   "48E47FA340F1CCC44058B12136278D1A28D1D58AA3029DFF7F7AB10CE1195DB9CC0AE797B0A2E352F98E1ED9D72B9E12",
		SignData:  "IC3GLvlEuY5RNZtzB4O1m8FxzVE6g5O+1pYEVEENw27IrtZcCys/srchQIcNJpXft7ufqLFxLCtKmNRbraFYkg==",
	}
	data, err := Open(env, testAppSecret, &instKey(t).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), `{"payOrdId":"ORD0001","userName":"张三"}`; got != want {
		t.Fatalf("data = %s, want %s", got, want)
	}
	// The same plaintext sealed by us encrypts to OpenSSL's bytes (ECB is deterministic).
	ours, err := Seal(testAppID, testAppSecret, instKey(t), map[string]any{"userName": "张三", "payOrdId": "ORD0001"}, nil, mustTime(t, "20261130120000"))
	if err != nil {
		t.Fatal(err)
	}
	if ours.EncData != env.EncData {
		t.Fatalf("encData = %s, want OpenSSL's %s", ours.EncData, env.EncData)
	}
}

func TestDeriveKey(t *testing.T) {
	// By hand, from the steps of national.md §2: SM4-ECB of the PKCS#7-padded secret under the
	// first 16 bytes of appId, upper-case hex, first 16 characters.
	block, err := sm4.NewCipher([]byte(testAppID[:16]))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte(testAppSecret) // 32 bytes: a whole block of padding follows
	padded := append(bytes.Clone(secret), bytes.Repeat([]byte{16}, 16)...)
	first := make([]byte, 16)
	block.Encrypt(first, padded[:16])
	byHand := strings.ToUpper(hex.EncodeToString(first))[:16]

	got, err := DeriveKey(testAppID, testAppSecret)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != byHand {
		t.Fatalf("DeriveKey = %s, by hand %s", got, byHand)
	}
	// The same figure from OpenSSL: printf %s "$secret" | openssl enc -sm4-ecb -K <hex of appId[:16]>.
	if string(got) != "B1F540A69ABD7173" {
		t.Fatalf("DeriveKey = %s, OpenSSL gives B1F540A69ABD7173", got)
	}
	// A short secret pads within one block.
	block2, _ := sm4.NewCipher([]byte("ABCDEFGHIJKLMNOP"))
	short := append([]byte("abc"), bytes.Repeat([]byte{13}, 13)...)
	block2.Encrypt(first, short)
	if got, _ := DeriveKey("ABCDEFGHIJKLMNOPQRS", "abc"); string(got) != strings.ToUpper(hex.EncodeToString(first))[:16] {
		t.Fatalf("DeriveKey(short secret) = %s", got)
	}
	if _, err := DeriveKey("ABCDEFGHIJKLMNO", "abc"); err == nil {
		t.Fatal("an appId of 15 bytes derives a key")
	}
}

func TestKeys(t *testing.T) {
	k := instKey(t)
	pub65 := EncodePublicKey(&k.PublicKey)
	raw := mustBase64(t, pub65)
	if len(raw) != 65 || raw[0] != 4 {
		t.Fatalf("EncodePublicKey: %d bytes, first %x", len(raw), raw[0])
	}
	for name, s := range map[string]string{
		"65 bytes":    pub65,
		"64 bytes":    base64.StdEncoding.EncodeToString(raw[1:]),
		"no padding":  base64.RawStdEncoding.EncodeToString(raw),
		"white space": "  " + pub65 + "\n",
	} {
		p, err := ParsePublicKey(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !p.Equal(&k.PublicKey) {
			t.Fatalf("%s: another key", name)
		}
	}
	offCurve := bytes.Clone(raw)
	offCurve[64] ^= 1
	n := sm2N.FillBytes(make([]byte, 32))
	nMinus1 := bytes.Clone(n)
	nMinus1[31]--
	for name, s := range map[string]string{
		"off the curve": base64.StdEncoding.EncodeToString(offCurve),
		"63 bytes":      base64.StdEncoding.EncodeToString(raw[1:64]),
		"compressed":    base64.StdEncoding.EncodeToString(append([]byte{2}, raw[1:33]...)),
		"65 without 04": base64.StdEncoding.EncodeToString(append([]byte{5}, raw[1:]...)),
		"not base64":    "%%%",
	} {
		if _, err := ParsePublicKey(s); err == nil {
			t.Errorf("ParsePublicKey accepts a key %s", name)
		}
	}
	for name, d := range map[string][]byte{
		"zero":     make([]byte, 32),
		"n":        n,
		"n-1":      nMinus1,
		"31 bytes": bytes.Repeat([]byte{7}, 31),
		"33 bytes": bytes.Repeat([]byte{7}, 33),
	} {
		if _, err := ParsePrivateKey(base64.StdEncoding.EncodeToString(d)); err == nil {
			t.Errorf("ParsePrivateKey accepts %s", name)
		}
	}
	g, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivateKey(EncodePrivateKey(g))
	if err != nil || !back.Equal(g) {
		t.Fatalf("generated key does not round-trip: %v", err)
	}
}
