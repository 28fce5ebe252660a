package hsa

import (
	"encoding/base64"
	"encoding/hex"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"github.com/medpay/medpay"
)

const (
	testAppID     = "3F2C9A1B7D6E4F8091A2B3C4D5E6F708"
	testAppSecret = "s3cr3t-Secret-0123456789abcdefXY"
	// instKeyB64 is the private key of the GB/T 32918.2 signature example.
	instKeyB64   = "OUUgj3shRLE/NuOKxtOflYiTk2koYLUaQvuB7033xbg="
	bureauKeyB64 = "+q6FXwapxdhNxyt7cP/ZNllVEF2Cgq6SKODF2xJCFNQ="
	otherKeyB64  = "Kc0w2hMzRXq1V1IfyV58Ja1M8zefW70rf3NebCUHFrY="
)

func mustKey(t testing.TB, b64 string) *sm2.PrivateKey {
	t.Helper()
	k, err := ParsePrivateKey(b64)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func instKey(t testing.TB) *sm2.PrivateKey   { return mustKey(t, instKeyB64) }
func bureauKey(t testing.TB) *sm2.PrivateKey { return mustKey(t, bureauKeyB64) }
func otherKey(t testing.TB) *sm2.PrivateKey  { return mustKey(t, otherKeyB64) }

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustBase64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("20060102150405", s, medpay.CST)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
