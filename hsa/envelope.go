package hsa

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emmansun/gmsm/padding"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm4"

	"github.com/medpay/medpay"
)

// The envelope's fixed values (national.md §2).
const (
	EncType  = "SM4"
	SignType = "SM2"
	Version  = "2.0.1"
)

// userID is the SM2 signer identity of the protocol (the standard's default).
var userID = []byte("1234567812345678")

// timestampLayout is yyyyMMddHHmmss, read and written in China time.
const timestampLayout = "20060102150405"

// Envelope is the JSON object on the wire. Code, Message and Success are set in answers only.
type Envelope struct {
	AppID     string `json:"appId"`
	EncType   string `json:"encType"`
	SignType  string `json:"signType"`
	Version   string `json:"version"`
	Timestamp string `json:"timestamp"`
	EncData   string `json:"encData,omitempty"`
	SignData  string `json:"signData"`
	Code      *int   `json:"code,omitempty"`
	Message   string `json:"message,omitempty"`
	Success   *bool  `json:"success,omitempty"`
	// Other holds the top-level keys this package does not name (extra, or whatever a bureau
	// adds), in the generic form of Clean. They are written back and, but for extra, signed:
	// the sign string takes every field of the envelope (national.md §2).
	Other map[string]any `json:"-"`
}

// envelopeKeys are the keys of the named fields, exactly (encoding/json would also match them
// in another case, and the signature would then cover a key the sender did not write).
var envelopeKeys = []string{"appId", "encType", "signType", "version", "timestamp", "encData", "signData", "code", "message", "success"}

// UnmarshalJSON reads an envelope: the named keys exactly, code as an integer (a number or a
// string), success as a boolean (or "true"/"false": they sign the same), the rest into Other.
func (e *Envelope) UnmarshalJSON(b []byte) error {
	v, err := decodeJSON(b)
	if err != nil {
		return err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	*e = Envelope{}
	for k, v := range m {
		if v == nil {
			continue
		}
		if !slices.Contains(envelopeKeys, k) {
			if e.Other == nil {
				e.Other = make(map[string]any)
			}
			e.Other[k] = v
			continue
		}
		if k == "code" || k == "success" {
			text := fmt.Sprint(v)
			if k == "code" {
				c, err := strconv.Atoi(text)
				if err != nil || strconv.Itoa(c) != text {
					return fmt.Errorf("%w: code %q is not an integer", ErrMalformed, text)
				}
				e.Code = &c
			} else {
				if text != "true" && text != "false" {
					return fmt.Errorf("%w: success %q is not a boolean", ErrMalformed, text)
				}
				ok := text == "true"
				e.Success = &ok
			}
			continue
		}
		str, isString := v.(string)
		if !isString {
			return fmt.Errorf("%w: %s is not a string", ErrMalformed, k)
		}
		switch k {
		case "appId":
			e.AppID = str
		case "encType":
			e.EncType = str
		case "signType":
			e.SignType = str
		case "version":
			e.Version = str
		case "timestamp":
			e.Timestamp = str
		case "encData":
			e.EncData = str
		case "signData":
			e.SignData = str
		case "message":
			e.Message = str
		}
	}
	return nil
}

// MarshalJSON writes the envelope with its Other keys, in compact JSON.
func (e Envelope) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(e.Other)+10)
	for k, v := range e.Other {
		m[k] = v
	}
	m["appId"], m["encType"], m["signType"], m["version"], m["timestamp"], m["signData"] =
		e.AppID, e.EncType, e.SignType, e.Version, e.Timestamp, e.SignData
	if e.EncData != "" {
		m["encData"] = e.EncData
	}
	if e.Code != nil {
		m["code"] = json.Number(strconv.Itoa(*e.Code))
	}
	if e.Message != "" {
		m["message"] = e.Message
	}
	if e.Success != nil {
		m["success"] = *e.Success
	}
	return CompactJSON(m)
}

// Answer is what an answer envelope adds to a request's fields; all three are signed.
type Answer struct {
	Code    int
	Message string
	Success bool
}

// Errors of Open; the handler turns each into its refusal code.
var (
	ErrMalformed     = errors.New("hsa: malformed envelope")
	ErrUndecryptable = errors.New("hsa: encData does not decrypt")
	ErrBadSignature  = errors.New("hsa: signature does not verify")
)

var (
	errNoKey          = errors.New("hsa: no key")
	errShortAppID     = errors.New("hsa: appId must have at least 16 bytes to derive the SM4 key")
	errBadTimestamp   = errors.New("hsa: timestamp is not yyyyMMddHHmmss")
	errSignatureBytes = errors.New("hsa: signData is not base64 of 64 bytes")
)

// excludedFromSign are the envelope keys the sign string leaves out.
var excludedFromSign = []string{"signData", "encData", "extra"}

// Time reads the envelope's timestamp (China time).
func (e *Envelope) Time() (time.Time, error) {
	if len(e.Timestamp) != len(timestampLayout) {
		return time.Time{}, errBadTimestamp
	}
	t, err := time.ParseInLocation(timestampLayout, e.Timestamp, medpay.CST)
	if err != nil {
		return time.Time{}, errBadTimestamp
	}
	return t, nil
}

// fields is the envelope as the sign string sees it: every field but encData and signData.
func (e *Envelope) fields() map[string]any {
	m := map[string]any{
		"appId":     e.AppID,
		"encType":   e.EncType,
		"signType":  e.SignType,
		"version":   e.Version,
		"timestamp": e.Timestamp,
		"message":   e.Message,
	}
	for k, v := range e.Other {
		if !slices.Contains(envelopeKeys, k) { // Other set by hand cannot shadow a named field
			m[k] = v
		}
	}
	if e.Code != nil {
		m["code"] = json.Number(strconv.Itoa(*e.Code))
	}
	if e.Success != nil {
		m["success"] = *e.Success
	}
	return m
}

// SignString is the string that is signed (national.md §2): env's fields with data (cleaned) in
// place of encData; signData, encData and extra dropped; keys sorted; key=value joined with '&',
// where a string is itself, a boolean true/false, a number its JSON text, an object or array its
// compact JSON; empty values skipped; then "&key=" and appSecret. A value encoding/json cannot
// marshal counts as empty.
func SignString(env map[string]any, data any, appSecret string) string {
	s, _ := signString(env, data, appSecret)
	return s
}

func signString(env map[string]any, data any, appSecret string) (string, error) {
	all := make(map[string]any, len(env)+1)
	for k, v := range env {
		if !slices.Contains(excludedFromSign, k) {
			all[k] = v
		}
	}
	all["data"] = data
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	var firstErr error
	for _, k := range keys {
		v, err := clean(all[k])
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("hsa: %s: %w", k, err)
		}
		if v == nil {
			continue
		}
		b.WriteString(k)
		b.WriteByte('=')
		switch v := v.(type) {
		case string:
			b.WriteString(v)
		case bool:
			b.WriteString(strconv.FormatBool(v))
		case json.Number:
			b.WriteString(string(v))
		default:
			c, _ := CompactJSON(v)
			b.Write(c)
		}
		b.WriteByte('&')
	}
	b.WriteString("key=")
	b.WriteString(appSecret)
	return b.String(), firstErr
}

// DeriveKey is the SM4 key of an institution (national.md §2): SM4-ECB/PKCS#7 of the UTF-8 bytes
// of appSecret under the first 16 bytes of appId, upper-case hex, the first 16 characters as
// ASCII bytes.
func DeriveKey(appID, appSecret string) ([]byte, error) {
	if len(appID) < 16 {
		return nil, errShortAppID
	}
	enc, err := sm4ECB([]byte(appID[:16]), []byte(appSecret))
	if err != nil {
		return nil, err
	}
	return []byte(strings.ToUpper(hex.EncodeToString(enc[:8]))), nil
}

var pkcs7 = padding.NewPKCS7Padding(sm4.BlockSize)

// sm4ECB encrypts PKCS#7-padded plaintext block by block (ECB is the protocol's mode).
func sm4ECB(key, plaintext []byte) ([]byte, error) {
	block, err := sm4.NewCipher(key)
	if err != nil {
		return nil, err
	}
	buf := pkcs7.Pad(slices.Clone(plaintext))
	for i := 0; i < len(buf); i += sm4.BlockSize {
		block.Encrypt(buf[i:i+sm4.BlockSize], buf[i:i+sm4.BlockSize])
	}
	return buf, nil
}

func sm4ECBOpen(key, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) == 0 || len(ciphertext)%sm4.BlockSize != 0 {
		return nil, errors.New("ciphertext is not whole blocks")
	}
	block, err := sm4.NewCipher(key)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, len(ciphertext))
	for i := 0; i < len(buf); i += sm4.BlockSize {
		block.Decrypt(buf[i:i+sm4.BlockSize], ciphertext[i:i+sm4.BlockSize])
	}
	return pkcs7.Unpad(buf)
}

// sign is SM3withSM2 over msg, the output the raw r‖s in base64.
func sign(priv *sm2.PrivateKey, msg string) (string, error) {
	if priv == nil {
		return "", errNoKey
	}
	r, s, err := sm2.SignWithSM2(rand.Reader, &priv.PrivateKey, userID, []byte(msg))
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return base64.StdEncoding.EncodeToString(sig), nil
}

func verify(pub *ecdsa.PublicKey, msg, signData string) error {
	if pub == nil || pub.X == nil || pub.Y == nil {
		return errNoKey
	}
	sig, err := base64.StdEncoding.DecodeString(signData)
	if err != nil || len(sig) != 64 {
		return errSignatureBytes
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	if r.Cmp(sm2N) >= 0 || s.Cmp(sm2N) >= 0 || !sm2.VerifyWithSM2(pub, userID, []byte(msg), r, s) {
		return ErrBadSignature
	}
	return nil
}

// Seal builds an envelope: data cleaned, the sign string signed with priv, then the compact JSON
// of the cleaned data encrypted under DeriveKey(appID, appSecret). ans is nil for a request; for
// an answer it adds code, message and success, which are signed too. Data that cleans away
// entirely gives an envelope without encData (a refusal).
func Seal(appID, appSecret string, priv *sm2.PrivateKey, data any, ans *Answer, now time.Time) (*Envelope, error) {
	cleaned, err := clean(data)
	if err != nil {
		return nil, fmt.Errorf("hsa: data: %w", err)
	}
	env := &Envelope{
		AppID:     appID,
		EncType:   EncType,
		SignType:  SignType,
		Version:   Version,
		Timestamp: now.In(medpay.CST).Format(timestampLayout),
	}
	if ans != nil {
		code, success := ans.Code, ans.Success
		env.Code, env.Message, env.Success = &code, ans.Message, &success
	}
	msg, err := signString(env.fields(), cleaned, appSecret)
	if err != nil {
		return nil, err
	}
	if env.SignData, err = sign(priv, msg); err != nil {
		return nil, fmt.Errorf("hsa: sign: %w", err)
	}
	if cleaned != nil {
		key, err := DeriveKey(appID, appSecret)
		if err != nil {
			return nil, err
		}
		plain, _ := CompactJSON(cleaned)
		enc, err := sm4ECB(key, plain)
		if err != nil {
			return nil, err
		}
		env.EncData = strings.ToUpper(hex.EncodeToString(enc))
	}
	return env, nil
}

// Open decrypts env's data, then verifies its signature with pub; any failure is an error
// wrapping ErrMalformed, ErrUndecryptable or ErrBadSignature. It returns the cleaned data in
// compact JSON, or nil for an envelope without data (a refusal) whose signature verifies.
func Open(env *Envelope, appSecret string, pub *ecdsa.PublicKey) (json.RawMessage, error) {
	if env == nil || env.EncType != EncType || env.SignType != SignType {
		return nil, fmt.Errorf("%w: encType must be %s and signType %s", ErrMalformed, EncType, SignType)
	}
	if env.SignData == "" {
		return nil, fmt.Errorf("%w: no signData", ErrBadSignature)
	}
	var data any
	if env.EncData != "" {
		key, err := DeriveKey(env.AppID, appSecret)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		ct, err := hex.DecodeString(env.EncData)
		if err != nil {
			return nil, fmt.Errorf("%w: not hex", ErrUndecryptable)
		}
		plain, err := sm4ECBOpen(key, ct)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUndecryptable, err)
		}
		if !utf8.Valid(plain) { // JSON decoding would turn bad bytes into U+FFFD: not what was signed
			return nil, fmt.Errorf("%w: not UTF-8", ErrUndecryptable)
		}
		v, err := decodeJSON(plain)
		if err != nil {
			return nil, fmt.Errorf("%w: not JSON", ErrUndecryptable)
		}
		data = cleanGeneric(v)
	}
	msg, err := signString(env.fields(), data, appSecret)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := verify(pub, msg, env.SignData); err != nil {
		if errors.Is(err, ErrBadSignature) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if data == nil {
		return nil, nil
	}
	out, _ := CompactJSON(data)
	return out, nil
}
