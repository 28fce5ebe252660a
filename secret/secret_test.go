package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBoxRoundTripAndWrongKey(t *testing.T) {
	t.Parallel()
	k1 := make([]byte, 32)
	k2 := make([]byte, 32)
	k2[0] = 1
	b1, _ := NewBox(k1)
	b2, _ := NewBox(k2)
	key := APIKey()
	sealed := b1.Seal(key)
	if strings.Contains(sealed, key) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := b1.Open(sealed)
	if err != nil || got != key {
		t.Fatalf("Open = %q, %v; want %q", got, err, key)
	}
	if _, err := b2.Open(sealed); err == nil {
		t.Fatal("opened with the wrong key")
	}
	if _, err := NewBox(k1[:16]); err == nil {
		t.Fatal("accepted a 16-byte key")
	}
}

func TestRandomStrings(t *testing.T) {
	t.Parallel()
	k := APIKey()
	if len(k) != 32 {
		t.Fatalf("api key length %d", len(k))
	}
	if APIKey() == k {
		t.Fatal("two keys equal")
	}
	if s := AppSecret(); len(s) != 32 || strings.Trim(s, "0123456789abcdef") != "" {
		t.Fatalf("secret %q", s)
	}
	if len(Token()) < 22 { // 128 bits in base64 at the least
		t.Fatal("token too short")
	}
}

func TestKeyFileCreatedOnceWith0600(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "medpay.db.key")
	k1, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(k1) != string(k2) {
		t.Fatal("key changed between loads")
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}
