package cash

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// Channel is the simulated cash channel as a network party: the wallets of Simulator served over
// the APIv3 JSAPI, native and refund subset (v3.md §1–2), with callbacks through an outbox and a
// cashier page where the payer confirms with the wallet PIN. Its state lives in its own tables
// (migration track of its own), so a restarted process resumes where the last one stopped.
type Channel struct {
	db     *sqlstore.DB
	box    *secret.Box
	now    func() time.Time
	logger *slog.Logger
	wallet *Simulator
	signer *apiv3.Signer
	verify *apiv3.RequestVerifier
	client *http.Client // callbacks
	// callbackTimeout bounds a delivery; a claimed batch is leased for three times as long.
	callbackTimeout time.Duration
	kick            chan struct{}
	// AllowPrivate lets notify_url point at loopback and private networks (the sandbox).
	allowPrivate bool
	// locals are the merchants served in process (mchid → *Local): their payments are reported
	// by Go call, not by callbacks.
	locals sync.Map
}

// Options configure a Channel.
type Options struct {
	Now        func() time.Time
	Logger     *slog.Logger
	HTTPClient *http.Client // for callbacks; nil: http.DefaultClient's transport
	// CallbackTimeout bounds one callback delivery (WeChat Pay waits 5 s); 0: 5 s.
	CallbackTimeout time.Duration
	Nonces          apiv3.NonceStore // request replay store; nil: in the channel's database
	AllowPrivate    bool             // notify_url may be on loopback or private networks
}

// NewChannel migrates db to the channel's schema, creates the channel's signing key on first use
// and returns the channel. box seals the keys kept in the database.
func NewChannel(ctx context.Context, db *sqlstore.DB, box *secret.Box, o Options) (*Channel, error) {
	if err := Migrate(ctx, db); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.CallbackTimeout <= 0 {
		o.CallbackTimeout = 5 * time.Second
	}
	c := &Channel{db: db, box: box, now: o.Now, logger: o.Logger, wallet: New(db, o.Now),
		client: o.HTTPClient, callbackTimeout: o.CallbackTimeout, kick: make(chan struct{}, 1), allowPrivate: o.AllowPrivate}
	key, id, err := c.channelKey(ctx)
	if err != nil {
		return nil, err
	}
	c.signer = &apiv3.Signer{Key: key, Serial: id, Now: o.Now}
	if o.Nonces == nil {
		o.Nonces = sqlNonces{db}
	}
	c.verify = &apiv3.RequestVerifier{Keys: c.merchantKey, Nonces: o.Nonces, Now: o.Now}
	return c, nil
}

// Wallet is the simulator of the wallets behind the channel.
func (c *Channel) Wallet() *Simulator { return c.wallet }

// PublicKey is the channel's public key and its id (PUB_KEY_ID_…), what merchants verify with.
func (c *Channel) PublicKey() (*rsa.PublicKey, string) {
	return &c.signer.Key.PublicKey, c.signer.Serial
}

// channelKey loads the channel's key, creating it once (concurrent first starts agree on one).
func (c *Channel) channelKey(ctx context.Context) (*rsa.PrivateKey, string, error) {
	load := func() (*rsa.PrivateKey, string, error) {
		var id, sealed string
		err := c.db.SQL().QueryRowContext(ctx, `SELECT key_id, private_key FROM cash_keys WHERE id = 1`).Scan(&id, &sealed)
		if err != nil {
			return nil, "", err
		}
		pemKey, err := c.box.Open(sealed)
		if err != nil {
			return nil, "", fmt.Errorf("cash: open the channel key (wrong server key?): %w", err)
		}
		key, err := apiv3.ParsePrivateKey([]byte(pemKey))
		return key, id, err
	}
	key, id, err := load()
	if !errors.Is(err, sql.ErrNoRows) {
		return key, id, err
	}
	fresh, err := apiv3.GenerateKey()
	if err != nil {
		return nil, "", err
	}
	id = "PUB_KEY_ID_01" + secret.RandomString(30, "0123456789")
	err = c.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO cash_keys (id, key_id, private_key, created_at) VALUES (1, $1, $2, $3)
			ON CONFLICT (id) DO NOTHING`, id, c.box.Seal(apiv3.EncodePrivateKey(fresh)), sqlstore.MS(c.now()))
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return load()
}

// MerchantCredentials is what provisioning prints (v3.md §5): the merchant private key only when
// the channel generated the pair.
type MerchantCredentials struct {
	MchID               string `json:"mchid"`
	APIv3Key            string `json:"apiv3_key"`
	MerchantSerialNo    string `json:"merchant_serial_no"`
	MerchantPrivateKey  string `json:"merchant_private_key,omitempty"`
	PlatformPublicKey   string `json:"platform_public_key"`
	PlatformPublicKeyID string `json:"platform_public_key_id"`
}

// SerialNo names a merchant public key: the upper-case hex of the first 20 bytes of the SHA-256
// of its PKIX encoding (40 characters, the length of WeChat Pay's certificate serials).
func SerialNo(pub *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(sum[:20]))
}

// CreateMerchant registers a merchant. With pub nil the channel generates the key pair and
// returns the private key (never stored); mchid "" gets a fresh 10-digit number.
func (c *Channel) CreateMerchant(ctx context.Context, mchid string, pub *rsa.PublicKey) (*MerchantCredentials, error) {
	cr := &MerchantCredentials{MchID: mchid, APIv3Key: secret.APIKey()}
	if pub == nil {
		key, err := apiv3.GenerateKey()
		if err != nil {
			return nil, err
		}
		pub = &key.PublicKey
		cr.MerchantPrivateKey = apiv3.EncodePrivateKey(key)
	}
	if cr.MchID == "" {
		cr.MchID = "16" + secret.RandomString(8, "0123456789")
	}
	cr.MerchantSerialNo = SerialNo(pub)
	cp, id := c.PublicKey()
	cr.PlatformPublicKey, cr.PlatformPublicKeyID = apiv3.EncodePublicKey(cp), id
	err := c.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO cash_merchants (mchid, apiv3_key, serial_no, public_key, created_at)
			VALUES ($1, $2, $3, $4, $5)`, cr.MchID, c.box.Seal(cr.APIv3Key), cr.MerchantSerialNo, apiv3.EncodePublicKey(pub), sqlstore.MS(c.now()))
		return err
	})
	if sqlstore.IsUniqueViolation(err) {
		return nil, fmt.Errorf("cash: merchant %s exists: %w", cr.MchID, medpay.ErrConflict)
	}
	if err != nil {
		return nil, err
	}
	return cr, nil
}

// merchantKey implements apiv3.MerchantKeys.
func (c *Channel) merchantKey(ctx context.Context, mchid, serial string) (*rsa.PublicKey, error) {
	var stored, pemKey string
	err := c.db.SQL().QueryRowContext(ctx, `SELECT serial_no, public_key FROM cash_merchants WHERE mchid = $1`, mchid).Scan(&stored, &pemKey)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && stored != serial) {
		return nil, fmt.Errorf("%w: mchid %q serial %q", apiv3.ErrUnknownKey, mchid, serial)
	}
	if err != nil {
		return nil, err
	}
	return apiv3.ParsePublicKey([]byte(pemKey))
}

// apiv3Key returns the merchant's APIv3 key.
func (c *Channel) apiv3Key(ctx context.Context, mchid string) ([]byte, error) {
	var sealed string
	if err := c.db.SQL().QueryRowContext(ctx, `SELECT apiv3_key FROM cash_merchants WHERE mchid = $1`, mchid).Scan(&sealed); err != nil {
		return nil, err
	}
	k, err := c.box.Open(sealed)
	return []byte(k), err
}

// Kick asks the callback worker to look for due callbacks now.
func (c *Channel) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}
