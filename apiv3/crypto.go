package apiv3

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
)

// AlgorithmAESGCM is the algorithm of every callback resource.
const AlgorithmAESGCM = "AEAD_AES_256_GCM"

// KeySize is the length of a merchant's APIv3 key (32 characters, used as the AES-256 key).
const KeySize = 32

// NonceSize is the length of a callback resource's nonce (12 characters, the GCM nonce).
const NonceSize = 12

// ErrDecrypt is wrapped by the errors of Open and DecryptSensitive.
var ErrDecrypt = errors.New("apiv3: decryption failed")

func gcm(apiv3Key []byte) (cipher.AEAD, error) {
	if len(apiv3Key) != KeySize {
		return nil, fmt.Errorf("apiv3: APIv3 key of %d bytes, want %d", len(apiv3Key), KeySize)
	}
	block, err := aes.NewCipher(apiv3Key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext with AES-256-GCM under the APIv3 key, the 12-character nonce and
// associatedData as additional data, and returns the ciphertext with its tag in base64.
func Seal(apiv3Key []byte, nonce, associatedData string, plaintext []byte) (string, error) {
	aead, err := gcm(apiv3Key)
	if err != nil {
		return "", err
	}
	if len(nonce) != NonceSize {
		return "", fmt.Errorf("apiv3: nonce of %d bytes, want %d", len(nonce), NonceSize)
	}
	return base64.StdEncoding.EncodeToString(aead.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))), nil
}

// Open is the inverse of Seal; any change to the key, nonce, associated data or ciphertext
// fails with ErrDecrypt.
func Open(apiv3Key []byte, nonce, associatedData, ciphertext string) ([]byte, error) {
	aead, err := gcm(apiv3Key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != NonceSize {
		return nil, fmt.Errorf("%w: nonce of %d bytes", ErrDecrypt, len(nonce))
	}
	ct, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: ciphertext is not base64", ErrDecrypt)
	}
	pt, err := aead.Open(nil, []byte(nonce), ct, []byte(associatedData))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	return pt, nil
}

// EncryptSensitive encrypts a sensitive field (a name, an ID digest) for the holder of pub with
// RSA-OAEP (SHA-1, MGF1-SHA-1), base64.
func EncryptSensitive(pub *rsa.PublicKey, plaintext string) (string, error) {
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, []byte(plaintext), nil)
	if err != nil {
		return "", fmt.Errorf("apiv3: encrypt: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

// DecryptSensitive is the inverse of EncryptSensitive.
func DecryptSensitive(key *rsa.PrivateKey, ciphertext string) (string, error) {
	ct, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil {
		return "", fmt.Errorf("%w: not base64", ErrDecrypt)
	}
	pt, err := rsa.DecryptOAEP(sha1.New(), nil, key, ct, nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	return string(pt), nil
}
