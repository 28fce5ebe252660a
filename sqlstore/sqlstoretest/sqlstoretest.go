// Package sqlstoretest opens fresh databases for tests: an SQLite file in a temporary folder, or,
// when MEDPAY_TEST_POSTGRES holds a postgres:// URL, a new schema on that server for each test.
package sqlstoretest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/medpay/medpay/sqlstore"
)

// PostgresEnv names the variable that enables the PostgreSQL runs.
const PostgresEnv = "MEDPAY_TEST_POSTGRES"

// Engines lists the engines a conformance test runs against: always SQLite, and PostgreSQL when
// PostgresEnv is set.
func Engines() []string {
	if os.Getenv(PostgresEnv) != "" {
		return []string{sqlstore.SQLite, sqlstore.Postgres}
	}
	return []string{sqlstore.SQLite}
}

// Open opens a new, migrated database of the given engine, closed (and on PostgreSQL dropped)
// when the test ends.
func Open(t testing.TB, engine string) *sqlstore.DB {
	t.Helper()
	dsn := DSN(t, engine)
	db, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open %s: %v", engine, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// OpenSQLite is Open on SQLite, for tests that are not about the engine.
func OpenSQLite(t testing.TB) *sqlstore.DB { return Open(t, sqlstore.SQLite) }

// DSN returns a data source name for a fresh database of engine: a file path for SQLite, or a
// postgres:// URL whose search_path is a new schema (dropped at cleanup).
func DSN(t testing.TB, engine string) string {
	t.Helper()
	if engine == sqlstore.SQLite {
		return filepath.Join(t.TempDir(), "medpay.db")
	}
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Fatalf("%s is not set", PostgresEnv)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
