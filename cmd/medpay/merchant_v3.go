package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// v3Options are the APIv3 flags of merchant and provider creation (v3.md §5).
type v3Options struct {
	on        *bool
	publicKey *string
	pem       string // the public key file's content, once loaded
}

func v3Flags(fs *flag.FlagSet) *v3Options {
	return &v3Options{
		on:        fs.Bool("v3", false, "also register APIv3 credentials for 医保 2.0 (/v3/med-ins/)"),
		publicKey: fs.String("public-key", "", "with --v3: the merchant's RSA public key (PEM); without it a key pair is generated and its private key printed once"),
	}
}

func (o *v3Options) enabled() bool { return o != nil && *o.on }

// load reads and checks the public key file before anything is stored.
func (o *v3Options) load() error {
	if o == nil {
		return nil
	}
	if *o.publicKey != "" && !*o.on {
		return fmt.Errorf("--public-key needs --v3")
	}
	if *o.publicKey == "" {
		return nil
	}
	data, err := os.ReadFile(*o.publicKey)
	if err != nil {
		return err
	}
	pub, err := apiv3.ParsePublicKey(data)
	if err != nil {
		return fmt.Errorf("--public-key %s: %w", *o.publicKey, err)
	}
	o.pem = apiv3.EncodePublicKey(pub)
	return nil
}

// v3Credentials are sandbox.md's credentials plus the APIv3 ones of v3.md §5.
type v3Credentials struct {
	medpay.Credentials
	MchIDV3             string `json:"mchid"`
	APIv3Key            string `json:"apiv3_key"`
	MerchantSerialNo    string `json:"merchant_serial_no"`
	MerchantPrivateKey  string `json:"merchant_private_key,omitempty"`
	PlatformPublicKey   string `json:"platform_public_key"`
	PlatformPublicKeyID string `json:"platform_public_key_id"`
}

// registerV3 gives the merchant just created its APIv3 credentials and prints all of them once.
// A generated private key is printed and forgotten: the platform keeps only the public half.
func registerV3(ctx context.Context, store *sqlstore.Store, m *medpay.Merchant, o *v3Options, creds medpay.Credentials, asJSON bool, stdout io.Writer) error {
	out := v3Credentials{Credentials: creds, MchIDV3: m.MchID, APIv3Key: secret.APIKey(),
		MerchantSerialNo: secret.RandomString(40, "0123456789ABCDEF")}
	pubPEM := o.pem
	if pubPEM == "" {
		key, err := apiv3.GenerateKey()
		if err != nil {
			return err
		}
		out.MerchantPrivateKey, pubPEM = apiv3.EncodePrivateKey(key), apiv3.EncodePublicKey(&key.PublicKey)
	}
	pk, err := store.PlatformKey(ctx)
	if err != nil {
		return err
	}
	priv, err := apiv3.ParsePrivateKey([]byte(pk.PrivateKey))
	if err != nil {
		return err
	}
	out.PlatformPublicKey, out.PlatformPublicKeyID = apiv3.EncodePublicKey(&priv.PublicKey), pk.KeyID
	if err := store.CreateMerchantV3(ctx, &medpay.MerchantV3{MerchantID: m.ID, SerialNo: out.MerchantSerialNo,
		PublicKey: pubPEM, APIv3Key: out.APIv3Key, CreatedAt: time.Now()}); err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	}
	fmt.Fprintf(stdout, "%s onboarded (%s) with APIv3. Keep these now: the secret, keys and private key are not shown again.\n\n", m.Name, m.Kind)
	fmt.Fprintf(stdout, "  appid                   %s\n  secret                  %s\n  mchid                   %s\n  api_key                 %s\n",
		creds.AppID, creds.Secret, creds.MchID, creds.APIKey)
	fmt.Fprintf(stdout, "  apiv3_key               %s\n  merchant_serial_no      %s\n  platform_public_key_id  %s\n\n",
		out.APIv3Key, out.MerchantSerialNo, out.PlatformPublicKeyID)
	if out.MerchantPrivateKey != "" {
		fmt.Fprintf(stdout, "merchant_private_key:\n%s\n", out.MerchantPrivateKey)
	}
	fmt.Fprintf(stdout, "platform_public_key:\n%s", out.PlatformPublicKey)
	return nil
}
