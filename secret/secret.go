// Package secret generates credentials and keeps them safe at rest: API keys are sealed with a
// server key (they are needed in clear to sign), and so are payers' names, ID and card numbers;
// app secrets and tokens are only stored hashed.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

const alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// RandomString returns n characters drawn uniformly from alphabet with crypto/rand.
func RandomString(n int, alphabet string) string {
	out := make([]byte, n)
	buf := make([]byte, 1)
	limit := 256 - 256%len(alphabet) // rejection sampling keeps the draw uniform
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		if int(buf[0]) >= limit {
			continue
		}
		out[i] = alphabet[int(buf[0])%len(alphabet)]
		i++
	}
	return string(out)
}

// APIKey returns a new 32-character signing key.
func APIKey() string { return RandomString(32, alphanumeric) }

// AppSecret returns a new 32-character hex app secret.
func AppSecret() string { return RandomString(32, "0123456789abcdef") }

// Token returns a new access token: 256 random bits, URL-safe.
func Token() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash is the stored form of a high-entropy secret (app secret, token): hex SHA-256. A slow hash
// is not needed because these values are random, not chosen by people.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Box seals small secrets (API keys, personal data) with AES-256-GCM under the server key, and
// gives sealed values a keyed hash for lookups.
type Box struct {
	aead   cipher.AEAD
	lookup []byte // HMAC key of Lookup, derived from the server key
}

// NewBox returns a box for a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("server key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("medpay lookup hash v1"))
	return &Box{aead: aead, lookup: mac.Sum(nil)}, nil
}

// Lookup is a keyed hash of s (hex HMAC-SHA256 under a key derived from the server key): equal
// values hash alike, so a sealed column can be searched, but without the server key the hash
// tells nothing, not even for values as guessable as ID numbers.
func (b *Box) Lookup(s string) string {
	mac := hmac.New(sha256.New, b.lookup)
	mac.Write([]byte(s))
	return hex.EncodeToString(mac.Sum(nil))
}

// Seal encrypts plaintext; the result is base64 of nonce || ciphertext.
func (b *Box) Seal(plaintext string) string {
	nonce := make([]byte, b.aead.NonceSize())
	rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(b.aead.Seal(nonce, nonce, []byte(plaintext), nil))
}

// Open decrypts what Seal produced.
func (b *Box) Open(sealed string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", errors.New("sealed value malformed")
	}
	n := b.aead.NonceSize()
	pt, err := b.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil {
		return "", errors.New("sealed value does not open with this server key")
	}
	return string(pt), nil
}

// ParseKey decodes a server key given as 64 hex characters.
func ParseKey(s string) ([]byte, error) {
	k, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(k) != 32 {
		return nil, errors.New("server key must be 64 hex characters (32 bytes)")
	}
	return k, nil
}

// LoadOrCreateKeyFile reads the server key from path, creating it with 0600 permissions when it
// does not exist (the SQLite default keeps it beside the database).
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return ParseKey(string(data))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process created it first
		return LoadOrCreateKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}
