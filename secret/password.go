package secret

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Password hashing with argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane),
// encoded in the PHC string format so that the parameters can change later.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 10

// HashPassword returns the PHC-encoded argon2id hash of password with a fresh salt.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	sum := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
}

var errBadHash = errors.New("not an argon2id hash")

// CheckPassword reports whether password matches encoded, in constant time. An empty or
// malformed hash matches nothing (after the same work, so that timing does not tell).
func CheckPassword(encoded, password string) bool {
	salt, want, m, t, p, err := parseHash(encoded)
	if err != nil {
		salt, want, m, t, p = make([]byte, 16), make([]byte, argonKeyLen), argonMemory, argonTime, argonThreads
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}

func parseHash(encoded string) (salt, sum []byte, m, t uint32, p uint8, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return nil, nil, 0, 0, 0, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<20 {
		return nil, nil, 0, 0, 0, errBadHash
	}
	if salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return nil, nil, 0, 0, 0, errBadHash
	}
	if sum, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(sum) < 16 {
		return nil, nil, 0, 0, 0, errBadHash
	}
	return salt, sum, m, t, p, nil
}
