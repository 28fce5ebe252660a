package main

import (
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medpay/medpay/wire"
)

// The spec's vectors (docs/api/README.md (signing)).
const (
	vecKey  = "192006250b4c09247ec02edce69f6a2d"
	vecMD5  = "9A0A8659F005D6984697E2CA0A9CF3B7"
	vecHMAC = "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
	vec2Key = "0123456789abcdef0123456789abcdef"
	vec2MD5 = "7D35A2C671B93218EE0F2D78EA572909"
)

var vecArgs = []string{"appid=wxd930ea5d5a258f4f", "body=test", "device_info=1000", "mch_id=10000100", "nonce_str=ibuaiVcKdpRxkhJA"}

var vec2Args = []string{"appid=wx0000000000000001", "cash_fee=0", "insurance_fee=100", "mch_id=1900000001",
	"nonce_str=abc123", "order_type=RegPay", "pay_type=2", "total_fee=100"}

// signCmd runs medpay sign with MEDPAY_KEY=key.
func signCmd(t *testing.T, key string, args ...string) (string, error) {
	t.Helper()
	out, _, err := cli(t, map[string]string{"MEDPAY_KEY": key}, append([]string{"sign"}, args...)...)
	return out, err
}

func TestSignVectors(t *testing.T) {
	t.Parallel()
	out, err := signCmd(t, vecKey, vecArgs...)
	if err != nil {
		t.Fatal(err)
	}
	want := "string to sign  appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA&key=***"
	if !strings.Contains(out, want) || !strings.Contains(out, "signature       "+vecMD5) || strings.Contains(out, "verifies") {
		t.Fatalf("output:\n%s", out)
	}

	// The same with the right signature given (lower case is accepted).
	out, err = signCmd(t, vecKey, append([]string{"--sign", strings.ToLower(vecMD5)}, vecArgs...)...)
	if err != nil || !strings.Contains(out, "verifies        yes") {
		t.Fatalf("right signature: %v\n%s", err, out)
	}

	// The second vector keeps cash_fee=0, and says so.
	out, err = signCmd(t, vec2Key, append([]string{"--sign", vec2MD5}, vec2Args...)...)
	if err != nil || !strings.Contains(out, "cash_fee=0&") || !strings.Contains(out, "(signed: 0 is kept)") {
		t.Fatalf("vector 2: %v\n%s", err, out)
	}
}

func TestSignDiagnosis(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		sig  string // the signature the developer's code produced
		want string
	}{
		{"zero dropped", vec2Args, md5Of(t, "appid=wx0000000000000001&insurance_fee=100&mch_id=1900000001&nonce_str=abc123&order_type=RegPay&pay_type=2&total_fee=100&key="+vec2Key),
			"fields whose value is 0 are left out"},
		{"HMAC without sign_type", vecArgs, vecHMAC, "signed with HMAC-SHA256 although sign_type says MD5 (no sign_type field)"},
		{"field added after signing", append(vecArgs[:len(vecArgs):len(vecArgs)], "attach=x"), vecMD5, "field attach is not signed"},
		{"empty field signed", append(vecArgs[:len(vecArgs):len(vecArgs)], "attach="),
			md5Of(t, "appid=wxd930ea5d5a258f4f&attach=&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA&key="+vecKey),
			"empty fields are signed"},
		{"unsorted", []string{"nonce_str=ibuaiVcKdpRxkhJA", "appid=wxd930ea5d5a258f4f", "body=test", "device_info=1000", "mch_id=10000100"},
			md5Of(t, "nonce_str=ibuaiVcKdpRxkhJA&appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&key="+vecKey),
			"sort them by name"},
		{"key without &key=", vecArgs,
			md5Of(t, "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA"+vecKey),
			"appended without &key="},
		{"url encoded", []string{"appid=wx1", "body=门诊 缴费", "mch_id=1", "nonce_str=n"},
			md5Of(t, "appid=wx1&body=%E9%97%A8%E8%AF%8A+%E7%BC%B4%E8%B4%B9&mch_id=1&nonce_str=n&key="+vecKey),
			"URL-encoded"},
		{"nothing usual", vecArgs, strings.Repeat("A", 32), "no usual mistake reproduces it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := vecKey
			if strings.Contains(strings.Join(tt.args, "&"), "cash_fee") {
				key = vec2Key
			}
			out, err := signCmd(t, key, append([]string{"--sign", tt.sig}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), "does not verify") {
				t.Fatalf("err = %v, want does not verify", err)
			}
			if !strings.Contains(out, "verifies        NO") || !strings.Contains(out, tt.want) {
				t.Fatalf("want %q in:\n%s", tt.want, out)
			}
		})
	}
}

// md5Of is the signature a developer's code would produce from the string s.
func md5Of(t *testing.T, s string) string {
	t.Helper()
	return strings.ToUpper(md5hex(s))
}

func TestSignFilesAndExpect(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, m *wire.Message) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, m.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sent := wire.NewMessage()
	for _, a := range vec2Args {
		k, v, _ := strings.Cut(a, "=")
		sent.Set(k, v)
	}
	sent.Set("sign_type", wire.SignTypeHMACSHA256)
	if err := wire.SignInPlace(sent, vec2Key); err != nil {
		t.Fatal(err)
	}
	good := write("good.xml", sent)

	// A signed XML file verifies with its own sign field; the output says HMAC-SHA256.
	out, err := signCmd(t, vec2Key, good)
	if err != nil || !strings.Contains(out, "verifies        yes") || !strings.Contains(out, "sign_type       HMAC-SHA256") {
		t.Fatalf("good file: %v\n%s", err, out)
	}
	// From standard input, indented and without CDATA, as real integrations send.
	stdin = strings.NewReader("<xml>\n  <appid>wxd930ea5d5a258f4f</appid>\n  <body>test</body>\n  <device_info>1000</device_info>\n" +
		"  <mch_id>10000100</mch_id>\n  <nonce_str>ibuaiVcKdpRxkhJA</nonce_str>\n  <sign>" + vecMD5 + "</sign>\n</xml>\n")
	out, err = signCmd(t, vecKey, "-")
	if err != nil || !strings.Contains(out, "verifies        yes") {
		t.Fatalf("stdin: %v\n%s", err, out)
	}

	// The platform received a message whose total_fee differs from what the code signed: the
	// developer compares the two.
	received := sent.Clone()
	received.Set("total_fee", "101")
	bad := write("received.xml", received)
	out, err = signCmd(t, vec2Key, "--expect", good, bad)
	if err == nil {
		t.Fatal("a changed message verifies")
	}
	for _, want := range []string{
		"verifies        NO",
		`total_fee: "101" vs "100"`,
		"--expect string to sign  appid=wx0000000000000001&cash_fee=0&insurance_fee=100&mch_id=1900000001&nonce_str=abc123&order_type=RegPay&pay_type=2&sign_type=HMAC-SHA256&total_fee=100&key=***",
		"--expect sign verifies   yes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}

	// --sign-type adds the field (it is signed).
	out, err = signCmd(t, vecKey, append([]string{"--sign-type", "HMAC-SHA256"}, vecArgs...)...)
	if err != nil || !strings.Contains(out, "&sign_type=HMAC-SHA256&key=***") {
		t.Fatalf("--sign-type: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		key  string
		args []string
		want string
	}{
		{"", vecArgs, "--key (or MEDPAY_KEY) is required"},
		{vecKey, []string{filepath.Join(dir, "missing.xml")}, "no such file"},
		{vecKey, []string{"=x"}, "want name=value"},
		{vecKey, []string{"sign_type=SHA1", "a=b"}, "want MD5 or HMAC-SHA256"},
		{vecKey, []string{"--sign-type", "MD5", "sign_type=HMAC-SHA256"}, "but the message says"},
	} {
		if _, err := signCmd(t, tc.key, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sign %v: %v, want %q", tc.args, err, tc.want)
		}
	}
	notXML := filepath.Join(dir, "not.xml")
	os.WriteFile(notXML, []byte("appid=1&b=2"), 0o600)
	if _, err := signCmd(t, vecKey, notXML); err == nil || !strings.Contains(err.Error(), "not an open API XML document") {
		t.Errorf("not XML: %v", err)
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
