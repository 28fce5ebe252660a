// Package apiv3 is WeChat Pay's APIv3 authentication on both sides of the wire (v3.md §1): the
// merchant's signed requests (WECHATPAY2-SHA256-RSA2048) and their verification, the channel's
// signed answers and callbacks and their verification, AES-256-GCM callback resources, RSA-OAEP
// sensitive fields and the error body, plus the JSON bodies of the JSAPI, native and refund
// subset (v3.md §2). It has no storage and no business rules: the cash channel's server (package
// cash) and the platform's client (package wxpay) are built on it.
//
// Every primitive is the standard library's: RSA-SHA256 PKCS#1 v1.5 signatures and RSA-OAEP
// (SHA-1, MGF1-SHA-1) from crypto/rsa, AES-256-GCM from crypto/cipher, base64 everywhere.
package apiv3

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Schema is the authentication scheme of the Authorization header.
const Schema = "WECHATPAY2-SHA256-RSA2048"

// Headers of every answer and callback.
const (
	HeaderTimestamp = "Wechatpay-Timestamp"
	HeaderNonce     = "Wechatpay-Nonce"
	HeaderSignature = "Wechatpay-Signature"
	HeaderSerial    = "Wechatpay-Serial"
	HeaderRequestID = "Request-ID"
)

// ProbePrefix starts the signature of WeChat Pay's signature-probe traffic: a message whose
// signature is deliberately wrong, which a correct receiver rejects.
const ProbePrefix = "WECHATPAY/SIGNTEST/"

// Window is how far a timestamp may be from the receiver's clock; NonceTTL is how long a nonce
// is remembered against replay (it covers the window on both sides).
const (
	Window   = 5 * time.Minute
	NonceTTL = 10 * time.Minute
)

// MaxBody bounds the bodies this package reads (answers, callbacks).
const MaxBody = 1 << 20

// ErrSignature is wrapped by every failed verification: a malformed or missing header, a
// timestamp outside the window, a replayed nonce, a wrong key id or signature, a probe.
var ErrSignature = errors.New("apiv3: signature verification failed")

// RequestMessage is the string a merchant signs for a request: METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n,
// where URL is the path with its query exactly as sent and BODY is empty for a GET.
func RequestMessage(method, url, timestamp, nonce string, body []byte) []byte {
	msg := make([]byte, 0, len(method)+len(url)+len(timestamp)+len(nonce)+len(body)+5)
	msg = append(msg, method...)
	msg = append(msg, '\n')
	msg = append(msg, url...)
	msg = append(msg, '\n')
	return appendTail(msg, timestamp, nonce, body)
}

// AnswerMessage is the string the channel signs for an answer or a callback:
// TIMESTAMP\nNONCE\nBODY\n.
func AnswerMessage(timestamp, nonce string, body []byte) []byte {
	return appendTail(make([]byte, 0, len(timestamp)+len(nonce)+len(body)+3), timestamp, nonce, body)
}

func appendTail(msg []byte, timestamp, nonce string, body []byte) []byte {
	msg = append(msg, timestamp...)
	msg = append(msg, '\n')
	msg = append(msg, nonce...)
	msg = append(msg, '\n')
	msg = append(msg, body...)
	return append(msg, '\n')
}

// Sign signs msg with RSA-SHA256 (PKCS#1 v1.5) and returns the signature in base64.
func Sign(key *rsa.PrivateKey, msg []byte) (string, error) {
	sum := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("apiv3: sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks a base64 RSA-SHA256 signature of msg; probes are refused whatever they carry.
func Verify(pub *rsa.PublicKey, msg []byte, signature string) error {
	if len(signature) >= len(ProbePrefix) && signature[:len(ProbePrefix)] == ProbePrefix {
		return fmt.Errorf("%w: signature probe", ErrSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", ErrSignature)
	}
	sum := sha256.Sum256(msg)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return nil
}

// Nonce returns a fresh random nonce (32 characters of [A-Z2-7]).
func Nonce() string { return rand.Text() + rand.Text()[:6] }

// Timestamp is t as the decimal Unix seconds of the headers.
func Timestamp(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// checkTimestamp parses ts and refuses it when it is more than Window away from now.
func checkTimestamp(ts string, now time.Time) error {
	if ts == "" || len(ts) > 12 {
		return fmt.Errorf("%w: timestamp %q", ErrSignature, ts)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 {
		return fmt.Errorf("%w: timestamp %q", ErrSignature, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Window || d < -Window {
		return fmt.Errorf("%w: timestamp %s is %v away from now", ErrSignature, ts, d.Round(time.Second))
	}
	return nil
}

// checkNonce accepts 1 to 64 printable ASCII characters without spaces or quotes.
func checkNonce(nonce string) error {
	if nonce == "" || len(nonce) > 64 {
		return fmt.Errorf("%w: nonce of %d bytes", ErrSignature, len(nonce))
	}
	for i := 0; i < len(nonce); i++ {
		if c := nonce[i]; c <= ' ' || c > '~' || c == '"' || c == ',' {
			return fmt.Errorf("%w: nonce has character %q", ErrSignature, c)
		}
	}
	return nil
}

// GenerateKey returns a new 2048-bit RSA key pair.
func GenerateKey() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) }

// EncodePrivateKey is key as PKCS#8 PEM ("PRIVATE KEY"), the form WeChat Pay's tools write.
func EncodePrivateKey(key *rsa.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil { // cannot happen for a valid RSA key
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// EncodePublicKey is pub as PKIX PEM ("PUBLIC KEY").
func EncodePublicKey(pub *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// ParsePrivateKey reads an RSA private key in PEM, PKCS#8 or PKCS#1, of at least 2048 bits.
func ParsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("apiv3: no PEM block in private key")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("apiv3: private key: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("apiv3: private key is %T, not RSA", k)
		}
		key = rk
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("apiv3: private key: %w", err)
		}
		key = k
	default:
		return nil, fmt.Errorf("apiv3: PEM block %q is not a private key", block.Type)
	}
	if key.N.BitLen() < 2048 {
		return nil, fmt.Errorf("apiv3: RSA key of %d bits, want 2048 or more", key.N.BitLen())
	}
	return key, nil
}

// ParsePublicKey reads an RSA public key in PEM (PKIX "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY"),
// or the public key of a PEM certificate.
func ParsePublicKey(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("apiv3: no PEM block in public key")
	}
	var k any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			k = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("apiv3: PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("apiv3: public key: %w", err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("apiv3: public key is %T, not RSA", k)
	}
	if pub.N.BitLen() < 2048 {
		return nil, fmt.Errorf("apiv3: RSA key of %d bits, want 2048 or more", pub.N.BitLen())
	}
	return pub, nil
}
