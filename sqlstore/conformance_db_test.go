package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

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

// TestConformanceBindLinkPending: what the use of a link has proved is kept sealed and read back.
func TestConformanceBindLinkPending(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s, m := codesStore(t, db)
		now := time.UnixMilli(1_770_000_000_123)
		l := &sqlstore.BindLink{MerchantID: m.ID, AppID: m.AppID, OpenID: "o1", ReturnURL: "https://h/", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
		if err := s.CreateBindLink(ctx, "hash-p", l); err != nil {
			t.Fatal(err)
		}
		const pending = `{"id_no":"44030019900101123X"}`
		if err := s.SetBindLinkPending(ctx, l, pending); err != nil {
			t.Fatal(err)
		}
		var stored string
		if err := db.SQL().QueryRow(`SELECT pending FROM bind_links WHERE id = $1`, l.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored == "" || strings.Contains(stored, "44030019900101123X") {
			t.Fatalf("pending stored as %q, want it sealed", stored)
		}
		got, err := s.BindLinkByHash(ctx, "hash-p")
		if err != nil || got.Pending != pending {
			t.Fatalf("BindLinkByHash pending = %q, %v", got.Pending, err)
		}
	})
}

// TestConformanceMigrateTrack: a component's own migrations run on their own version table, once.
func TestConformanceMigrateTrack(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		up := "-- +goose Up\nCREATE TABLE track_probe (x INTEGER);\n-- +goose Down\nDROP TABLE track_probe;\n"
		fsys := fstest.MapFS{
			"m/sqlite/00001_probe.sql":   {Data: []byte(up)},
			"m/postgres/00001_probe.sql": {Data: []byte(up)},
		}
		for i := 0; i < 2; i++ { // the second run finds nothing to do
			if err := db.MigrateTrack(ctx, fsys, "m", "probe_goose_version"); err != nil {
				t.Fatalf("run %d: %v", i+1, err)
			}
		}
		var n int
		if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM track_probe`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("the component's table: %d, %v", n, err)
		}
		if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM probe_goose_version WHERE version_id = 1`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("the component's version table: %d, %v", n, err)
		}
	})
}
