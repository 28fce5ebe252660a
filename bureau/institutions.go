package bureau

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/emmansun/gmsm/sm2"

	"github.com/medpay/medpay/hsa"
	"github.com/medpay/medpay/sqlstore"
)

// Institutions registered at the bureau (national.md §6) and the bureau's own key pair.

// InstitutionSpec is what registering an institution takes.
type InstitutionSpec struct {
	OrgCodg   string
	Name      string
	CityID    string
	Level     int
	PublicKey string // base64; empty: a key pair is made and its private key returned once
}

// NewInstitution is the answer of a registration (national.md §6).
type NewInstitution struct {
	AppID           string `json:"appId"`
	AppSecret       string `json:"appSecret"`
	OrgCodg         string `json:"orgCodg"`
	Name            string `json:"name"`
	BureauPublicKey string `json:"bureauPublicKey"`
	PublicKey       string `json:"publicKey"`
	PrivateKey      string `json:"privateKey,omitempty"`
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// CreateInstitution registers an institution with a fresh appId and appSecret.
func (s *Simulator) CreateInstitution(ctx context.Context, spec InstitutionSpec) (*NewInstitution, error) {
	switch {
	case spec.OrgCodg == "" || spec.Name == "" || spec.CityID == "":
		return nil, errors.New("bureau: an institution needs an org code, a name and a city")
	case spec.Level < HospCommunity || spec.Level > MaxHospLevel:
		return nil, fmt.Errorf("bureau: hospital level %d (0 community, 1, 2, 3)", spec.Level)
	}
	if _, ok := s.policies.City(spec.CityID); !ok {
		return nil, fmt.Errorf("bureau: unknown city %s", spec.CityID)
	}
	bureauKey, err := s.BureauKey(ctx)
	if err != nil {
		return nil, err
	}
	out := &NewInstitution{AppID: "MP" + randomHex(11), AppSecret: randomHex(16), OrgCodg: spec.OrgCodg, Name: spec.Name,
		BureauPublicKey: hsa.EncodePublicKey(&bureauKey.PublicKey)}
	if spec.PublicKey != "" {
		pub, err := hsa.ParsePublicKey(spec.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("bureau: --public-key: %w", err)
		}
		out.PublicKey = hsa.EncodePublicKey(pub)
	} else {
		k, err := hsa.GenerateKey()
		if err != nil {
			return nil, err
		}
		out.PublicKey, out.PrivateKey = hsa.EncodePublicKey(&k.PublicKey), hsa.EncodePrivateKey(k)
	}
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO bureau_institutions (app_id, app_secret, org_codg, name, city_id, hosp_lv, public_key, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, out.AppID, out.AppSecret, spec.OrgCodg, spec.Name, spec.CityID, spec.Level,
			out.PublicKey, sqlstore.MS(s.now()))
		return err
	})
	if sqlstore.IsUniqueViolation(err) {
		return nil, fmt.Errorf("bureau: an institution with org code %s exists", spec.OrgCodg)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Institution is a registered institution with its level (the default of its bills).
type Institution struct {
	hsa.Institution
	Name   string
	CityID string
	Level  int
}

// InstitutionByAppID returns a registered institution, or an error wrapping hsa.ErrUnknownApp.
func (s *Simulator) InstitutionByAppID(ctx context.Context, appID string) (*Institution, error) {
	var in Institution
	var pub string
	err := s.db.SQL().QueryRowContext(ctx, `SELECT app_id, app_secret, org_codg, name, city_id, hosp_lv, public_key
		FROM bureau_institutions WHERE app_id = $1`, appID).Scan(&in.AppID, &in.AppSecret, &in.OrgCodg, &in.Name, &in.CityID, &in.Level, &pub)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", hsa.ErrUnknownApp, appID)
	}
	if err != nil {
		return nil, err
	}
	if in.PublicKey, err = hsa.ParsePublicKey(pub); err != nil {
		return nil, fmt.Errorf("bureau: institution %s: %w", appID, err)
	}
	return &in, nil
}

// Institution implements hsa.Institutions.
func (s *Simulator) Institution(ctx context.Context, appID string) (*hsa.Institution, error) {
	in, err := s.InstitutionByAppID(ctx, appID)
	if err != nil {
		return nil, err
	}
	return &in.Institution, nil
}

// BureauKey returns the bureau's signing key, made at first use and kept in its database.
func (s *Simulator) BureauKey(ctx context.Context) (*sm2.PrivateKey, error) {
	var v string
	err := s.db.SQL().QueryRowContext(ctx, `SELECT value FROM bureau_settings WHERE name = 'private_key'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		k, err := hsa.GenerateKey()
		if err != nil {
			return nil, err
		}
		if err := s.writeTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO bureau_settings (name, value) VALUES ('private_key', $1) ON CONFLICT (name) DO NOTHING`,
				hsa.EncodePrivateKey(k))
			return err
		}); err != nil {
			return nil, err
		}
		// Another process may have won the race: read what is stored.
		err = s.db.SQL().QueryRowContext(ctx, `SELECT value FROM bureau_settings WHERE name = 'private_key'`).Scan(&v)
		if err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return hsa.ParsePrivateKey(v)
}
