package hsa

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/emmansun/gmsm/ecdh"
	"github.com/emmansun/gmsm/sm2"
)

// PrivateKey is an SM2 private key: an institution's (signs requests) or the bureau's (signs
// answers).
type PrivateKey = *sm2.PrivateKey

// sm2N is the order of the SM2 curve's base point.
var sm2N = sm2.P256().Params().N

// GenerateKey returns a fresh SM2 key pair.
func GenerateKey() (*sm2.PrivateKey, error) { return sm2.GenerateKey(rand.Reader) }

// EncodePrivateKey is base64 of the 32-byte big-endian scalar.
func EncodePrivateKey(k *sm2.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(k.D.FillBytes(make([]byte, 32)))
}

// EncodePublicKey is base64 of the 65-byte uncompressed point 04‖X‖Y.
func EncodePublicKey(k *ecdsa.PublicKey) string {
	b := make([]byte, 65)
	b[0] = 4
	k.X.FillBytes(b[1:33])
	k.Y.FillBytes(b[33:])
	return base64.StdEncoding.EncodeToString(b)
}

// ParsePrivateKey reads base64 of a 32-byte scalar and checks it is a valid SM2 private key.
func ParsePrivateKey(b64 string) (*sm2.PrivateKey, error) {
	raw, err := decodeBase64(b64)
	if err != nil {
		return nil, fmt.Errorf("hsa: private key: %w", err)
	}
	if len(raw) != 32 {
		return nil, fmt.Errorf("hsa: private key must be 32 bytes, got %d", len(raw))
	}
	ek, err := ecdh.P256().NewPrivateKey(raw) // checks 0 < d < n
	if err != nil {
		return nil, errors.New("hsa: private key out of range")
	}
	d := new(big.Int).SetBytes(raw)
	if d.Cmp(new(big.Int).Sub(sm2N, big.NewInt(1))) == 0 { // SM2 signing needs 1+d invertible
		return nil, errors.New("hsa: private key out of range")
	}
	pub, err := ParsePublicKey(base64.StdEncoding.EncodeToString(ek.PublicKey().Bytes()))
	if err != nil {
		return nil, err
	}
	k := new(sm2.PrivateKey)
	k.PublicKey = *pub
	k.D = d
	return k, nil
}

// ParsePublicKey reads base64 of 64 bytes X‖Y or 65 bytes 04‖X‖Y and checks the point is on
// the SM2 curve.
func ParsePublicKey(b64 string) (*ecdsa.PublicKey, error) {
	raw, err := decodeBase64(b64)
	if err != nil {
		return nil, fmt.Errorf("hsa: public key: %w", err)
	}
	switch {
	case len(raw) == 64:
		raw = append([]byte{4}, raw...)
	case len(raw) == 65 && raw[0] == 4:
	default:
		return nil, fmt.Errorf("hsa: public key must be 64 bytes X‖Y or 65 bytes 04‖X‖Y, got %d", len(raw))
	}
	if _, err := ecdh.P256().NewPublicKey(raw); err != nil {
		return nil, errors.New("hsa: public key is not a point of the SM2 curve")
	}
	return &ecdsa.PublicKey{
		Curve: sm2.P256(),
		X:     new(big.Int).SetBytes(raw[1:33]),
		Y:     new(big.Int).SetBytes(raw[33:]),
	}, nil
}

// decodeBase64 accepts standard base64 with or without padding, surrounded by white space (keys
// come from files and environment variables).
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
