package medpay

import (
	"context"
	"time"
)

// Merchant kinds.
const (
	KindHospital = "hospital"
	KindPharmacy = "pharmacy"
	KindProvider = "provider" // a service provider (服务商) acting for hospitals
)

// Merchant is a hospital, pharmacy or service provider known to the platform: the "merchant" of
// the product's analogy. APIKey is the plaintext signing key, present only in memory.
type Merchant struct {
	ID         int64
	Kind       string
	Name       string
	AppID      string
	MchID      string
	SecretHash string   // hash of the app secret; the secret itself is shown once
	APIKey     string   // 32 characters; stored encrypted
	Cities     []string // enabled 6-digit city codes (hospitals and pharmacies)
	Level      int      // hospital level: 0 社区, 1, 2, 3
	RefundIPs  []string // refund allow-list: addresses or CIDR prefixes
	CreatedAt  time.Time
}

// HasCity reports whether the merchant is enabled in city.
func (m *Merchant) HasCity(city string) bool {
	for _, c := range m.Cities {
		if c == city {
			return true
		}
	}
	return false
}

// Credentials are what onboarding prints once; the secret and key are not retrievable later.
type Credentials struct {
	AppID  string   `json:"appid"`
	Secret string   `json:"secret"`
	MchID  string   `json:"mch_id"`
	APIKey string   `json:"api_key"`
	Name   string   `json:"name"`
	Cities []string `json:"cities,omitempty"`
}

// MerchantStore keeps merchants, provider authorisations and access tokens.
type MerchantStore interface {
	CreateMerchant(ctx context.Context, m *Merchant) error
	MerchantByAppID(ctx context.Context, appid string) (*Merchant, error)
	MerchantByMchID(ctx context.Context, mchID string) (*Merchant, error)
	Authorize(ctx context.Context, providerID, merchantID int64) error
	Revoke(ctx context.Context, providerID, merchantID int64) error
	IsAuthorized(ctx context.Context, providerID, merchantID int64) (bool, error)

	// CreateToken stores a token hash for (appid, subAppID); tokens for the same scope older than
	// the overlap window stop being valid, as WeChat does.
	CreateToken(ctx context.Context, t *Token) error
	// TokenByHash returns a token that has not expired at now.
	TokenByHash(ctx context.Context, hash string, now time.Time) (*Token, error)
}

// Token is an access token's stored form.
type Token struct {
	Hash      string
	AppID     string // the caller: hospital (independent) or service provider
	SubAppID  string // the hospital in provider mode
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Token lifetimes (docs/api/README.md (access_token)).
const (
	TokenTTL     = 7200 * time.Second
	TokenOverlap = 5 * time.Minute
)
