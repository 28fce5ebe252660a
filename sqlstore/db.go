// Package sqlstore implements the platform's storage on database/sql with hand-written SQL that
// runs on SQLite (modernc.org/sqlite, the embedded default) and PostgreSQL (pgx). Queries use $n
// placeholders, ON CONFLICT and RETURNING, which both engines understand.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations
var migrations embed.FS

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DB is an open database with the platform's schema.
type DB struct {
	sql     *sql.DB
	dialect string
	dsn     string

	// SQLite has one writer; serialising writers in-process avoids busy waits between our own
	// connections (other processes are handled by busy_timeout and BEGIN IMMEDIATE). The queue
	// also lets one transaction carry many writers' work (group.go).
	group *group
	// stopCheckpoints ends the SQLite file's checkpointer (checkpoint.go), which closes
	// checkpointsDone on its way out; both nil when there is none.
	stopCheckpoints, checkpointsDone chan struct{}
}

// IsPostgres reports whether dsn selects PostgreSQL.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens dsn (a postgres:// URL, or else an SQLite file path) and applies migrations.
func Open(ctx context.Context, dsn string) (*DB, error) {
	db, err := OpenBare(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.sql.Close()
		return nil, err
	}
	return db, nil
}

// OpenBare opens dsn without the platform's migrations, for a component that keeps only its own
// tables there (MigrateTrack).
func OpenBare(ctx context.Context, dsn string) (*DB, error) {
	db := &DB{dsn: dsn}
	var err error
	if IsPostgres(dsn) {
		db.dialect = Postgres
		db.sql, err = sql.Open("pgx", dsn)
		if err == nil {
			// Keep as many idle connections as open ones: otherwise concurrency above the default
			// of 2 idle keeps opening new connections.
			db.sql.SetMaxOpenConns(20)
			db.sql.SetMaxIdleConns(20)
		}
	} else {
		db.dialect = SQLite
		db.group = newGroup()
		if err := createPrivate(sqlitePath(dsn)); err != nil {
			return nil, err
		}
		db.sql, err = sql.Open(sqliteDriverName, sqliteDSN(dsn))
		if err == nil {
			db.sql.SetMaxOpenConns(8)
			db.sql.SetMaxIdleConns(8)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := db.sql.PingContext(ctx); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	if db.group != nil && sqlitePath(dsn) != "" {
		db.stopCheckpoints, db.checkpointsDone = make(chan struct{}), make(chan struct{})
		go db.checkpointLoop(db.stopCheckpoints, db.checkpointsDone)
	}
	return db, nil
}

// sqlitePath is the file of a SQLite DSN ("" for an in-memory database).
func sqlitePath(dsn string) string {
	path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if path == "" || path == ":memory:" || strings.Contains(query, "mode=memory") {
		return ""
	}
	return path
}

// createPrivate creates the database file readable by its owner only (0600) when it does not
// exist yet: it holds personal data and the ledger. SQLite gives its -wal and -shm files the
// database file's permissions.
func createPrivate(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	return f.Close()
}

func sqliteDSN(path string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	if !strings.HasPrefix(path, "file:") {
		path = "file:" + path
	}
	return path + sep + "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate" +
		"&_pragma=wal_autocheckpoint(" + strconv.Itoa(backstopFrames) + ")"
}

func (db *DB) migrate(ctx context.Context) error {
	return db.MigrateTrack(ctx, migrations, "migrations", "")
}

// MigrateTrack applies the migrations under dir/<dialect> of fsys, recording them in their own
// version table (and, on PostgreSQL, taking their own lock) when table is not empty: a component
// that keeps its own tables in the platform's database (a simulator) migrates on its own track.
func (db *DB) MigrateTrack(ctx context.Context, fsys fs.FS, dir, table string) error {
	sub, err := fs.Sub(fsys, dir+"/"+db.dialect)
	if err != nil {
		return err
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if table != "" {
		opts = append(opts, goose.WithTableName(table))
	}
	dialect := goose.DialectSQLite3
	if db.dialect == Postgres {
		dialect = goose.DialectPostgres
		var lopts []lock.TableLockerOption
		if table != "" {
			lopts = append(lopts, lock.WithTableName(table+"_lock"))
		}
		locker, err := lock.NewPostgresTableLocker(lopts...)
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.sql, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	if db.stopCheckpoints != nil {
		close(db.stopCheckpoints)
		<-db.checkpointsDone
		db.stopCheckpoints = nil
	}
	return db.sql.Close()
}

// Dialect is SQLite or Postgres.
func (db *DB) Dialect() string { return db.dialect }

// SQL is the underlying pool, for reads.
func (db *DB) SQL() *sql.DB { return db.sql }

// Ping checks the database is reachable (health checks).
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

// maxTxAttempts bounds the retries of a write transaction.
const maxTxAttempts = 10

// WriteTx runs fn in a write transaction, retrying it from the start when the engine reports a
// serialization failure, a deadlock or a busy database. fn must therefore be safe to run again:
// it may not have effects outside the transaction. On SQLite it may share its transaction with
// other callers' (group commit), each inside its own savepoint; it returns only once its
// outcome is committed or has failed.
func (db *DB) WriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if db.group != nil {
		return db.groupWriteTx(ctx, fn)
	}
	return db.retryTx(ctx, fn)
}

// execer runs a statement: a transaction, or the pool (each statement its own transaction).
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// writeStmt runs fn, which executes one writing statement, as a transaction of its own. On SQLite
// that is WriteTx (the statement joins the group commit); on PostgreSQL the statement runs on the
// pool in autocommit, one round trip instead of three, and is retried like a transaction. fn must
// execute a single statement: several would not be atomic.
func (db *DB) writeStmt(ctx context.Context, fn func(e execer) error) error {
	if db.group != nil {
		return db.WriteTx(ctx, func(tx *sql.Tx) error { return fn(tx) })
	}
	return db.retry(ctx, func() error { return fn(db.sql) })
}

func (db *DB) retryTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.retry(ctx, func() error { return db.tryTx(ctx, fn) })
}

// retry runs attempt until it succeeds, fails with an error that is not retryable, or has been
// tried maxTxAttempts times, backing off between tries.
func (db *DB) retry(ctx context.Context, attempt func() error) error {
	var err error
	for n := 0; n < maxTxAttempts; n++ {
		if n > 0 {
			backoff := time.Duration(1<<min(n, 6))*time.Millisecond + time.Duration(rand.IntN(5))*time.Millisecond
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
		}
		err = attempt()
		if err == nil || !retryable(err) {
			return err
		}
		slog.Debug("retrying transaction", "attempt", n+1, "err", err)
	}
	return err
}

func (db *DB) tryTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if db.group != nil && db.group.failCommit != nil {
		if err := db.group.failCommit(1); err != nil {
			tx.Rollback()
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if db.group != nil {
		db.group.wrote()
	}
	return nil
}

// retryable reports serialization failures (40001), deadlocks (40P01) and SQLite busy/locked.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		code := sqErr.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}

// isUniqueViolation reports a unique-constraint failure on either engine.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// ForUpdate is the row-lock suffix for SELECTs that claim rows: SKIP LOCKED on PostgreSQL;
// nothing on SQLite, where the single writer already excludes others.
func (db *DB) ForUpdate() string {
	if db.dialect == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// LockRow is the suffix of a SELECT that locks the rows it reads until the transaction ends:
// FOR UPDATE on PostgreSQL; nothing on SQLite, whose single writer already excludes others.
func (db *DB) LockRow() string {
	if db.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// ms converts a time to the stored form: Unix milliseconds (portable across engines).
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is the inverse of ms.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// MS and FromMS are exported for the packages (bureau, cash, notify) that keep their own tables.
func MS(t time.Time) int64     { return ms(t) }
func FromMS(v int64) time.Time { return fromMS(v) }

// IsUniqueViolation is exported for packages with their own tables.
func IsUniqueViolation(err error) bool { return isUniqueViolation(err) }

// Redact returns dsn without a password, for logs.
func Redact(dsn string) string {
	if !IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparseable)"
	}
	return u.Redacted()
}
