package medpay

import "time"

// Order generations: the XML API (wire-api.md) and 医保 2.0 over APIv3 (v3.md). Both live on the
// same orders, ledger and bills.
const (
	GenerationXML = 1
	GenerationV3  = 2
)

// MerchantV3 is a merchant's APIv3 registration (v3.md §5): the public key its requests are
// verified with, under the serial it names in them, and the APIv3 key that seals its callbacks.
type MerchantV3 struct {
	MerchantID  int64
	SerialNo    string
	PublicKey   string        // PEM
	APIv3Key    string        // 32 characters; stored sealed
	RetryWindow time.Duration // how long a callback is retried (v3.md §4; default 30 s)
	CreatedAt   time.Time
}

// DefaultV3RetryWindow is WeChat Pay's: callbacks are retried for 30 s, then the hospital queries.
const DefaultV3RetryWindow = 30 * time.Second

// PlatformKey is the platform's own APIv3 key pair: answers and callbacks are signed with it and
// payers' sensitive fields are encrypted for it.
type PlatformKey struct {
	KeyID      string // PUB_KEY_ID_…
	PrivateKey string // PEM; stored sealed
}

// Prepay is a 2.0 hospital's JSAPI cash order (v3.md §2): the cash part, kept by the platform
// until the 医保 order naming its PrepayID is paid at the cashier.
type Prepay struct {
	ID         int64
	MerchantID int64
	OutTradeNo string
	PrepayID   string
	Body       string // the request as received (JSON)
	Amount     int64  // fen
	MixTradeNo string // the 医保 order that took it, once one did
	CreatedAt  time.Time
}
