package sqlstore_test

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/medpay/medpay/sqlstore"
)

// TestConformanceDBHelpers: the row-locking suffixes make valid statements on every engine, and
// the database answers Ping and is the one the store works on.
func TestConformanceDBHelpers(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		b := setup(t, db)
		if b.store.DB() != db {
			t.Fatal("Store.DB is not the store's database")
		}
		if err := db.Ping(b.ctx); err != nil {
			t.Fatal(err)
		}
		m := b.merchant(t)
		err := db.WriteTx(b.ctx, func(tx *sql.Tx) error {
			for _, suffix := range []string{db.ForUpdate(), db.LockRow()} {
				var id int64
				if err := tx.QueryRowContext(b.ctx, `SELECT id FROM merchants WHERE id = $1`+suffix, m.ID).Scan(&id); err != nil || id != m.ID {
					return fmt.Errorf("suffix %q: %d, %v", suffix, id, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
