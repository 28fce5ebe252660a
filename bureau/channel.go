package bureau

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/medpay/medpay"
)

// ForOrg returns the simulator acting for the institution registered under orgCodg, or an error
// wrapping medpay.ErrNotFound. In 医保 2.0 (v3.md) the hospital uploads its bill itself and the
// payment channel settles it on the hospital's behalf: the channel queries (6301) and settles
// (6202) the institution's orders as that institution.
func (s *Simulator) ForOrg(ctx context.Context, orgCodg string) (*Simulator, error) {
	var appID string
	err := s.db.SQL().QueryRowContext(ctx, `SELECT app_id FROM bureau_institutions WHERE org_codg = $1 ORDER BY app_id LIMIT 1`, orgCodg).Scan(&appID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("institution %s: %w", orgCodg, medpay.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return s.As(appID), nil
}
