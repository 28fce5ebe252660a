package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

var errSerialization = &pgconn.PgError{Code: "40001", Message: "could not serialize access"}

func insertNonce(ctx context.Context, tx *sql.Tx, nonce string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO nonces (mch_id, nonce, seen_at) VALUES ('m', $1, 1)`, nonce)
	return err
}

// A retried transaction starts from scratch: what the failed attempt wrote is gone.
func TestConformanceWriteTxRetries(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		attempts := 0
		err := db.WriteTx(ctx, func(tx *sql.Tx) error {
			attempts++
			if err := insertNonce(ctx, tx, "once"); err != nil {
				return err
			}
			if attempts == 1 {
				return fmt.Errorf("wrapped: %w", errSerialization)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if attempts != 2 {
			t.Errorf("attempts = %d, want 2", attempts)
		}
		var n int
		if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM nonces`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("rows = %d, want 1 (the failed attempt rolled back)", n)
		}
	})
}

func TestConformanceWriteTxGivesUp(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		attempts := 0
		err := db.WriteTx(ctx, func(tx *sql.Tx) error {
			attempts++
			return errSerialization
		})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
			t.Errorf("err = %v, want the last serialization failure", err)
		}
		if attempts != sqlstore.MaxTxAttempts {
			t.Errorf("attempts = %d, want %d", attempts, sqlstore.MaxTxAttempts)
		}

		// Other errors are not retried.
		attempts = 0
		boom := errors.New("boom")
		if err := db.WriteTx(ctx, func(tx *sql.Tx) error { attempts++; return boom }); !errors.Is(err, boom) || attempts != 1 {
			t.Errorf("plain error: err %v after %d attempts, want boom after 1", err, attempts)
		}

		// Cancelling the context stops the retries.
		attempts = 0
		cctx, cancel := context.WithCancel(ctx)
		err = db.WriteTx(cctx, func(tx *sql.Tx) error {
			attempts++
			cancel()
			return errSerialization
		})
		if !errors.Is(err, context.Canceled) || attempts != 1 {
			t.Errorf("cancelled: err %v after %d attempts, want context.Canceled after 1", err, attempts)
		}
	})
}

// On PostgreSQL, a real serialization failure: the transaction reads a row under SERIALIZABLE, a
// concurrent transaction updates and commits it, and the first one's update then fails with
// 40001. WriteTx runs it again and the second attempt succeeds.
func TestConformanceWriteTxRealSerializationFailure(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		if db.Dialect() != sqlstore.Postgres {
			t.Skip("SQLite has a single writer: no serialization failures")
		}
		ctx := context.Background()
		if _, err := db.SQL().ExecContext(ctx, `INSERT INTO nonces (mch_id, nonce, seen_at) VALUES ('m', 'row', 100)`); err != nil {
			t.Fatal(err)
		}
		attempts := 0
		var firstErr error
		err := db.WriteTx(ctx, func(tx *sql.Tx) error {
			attempts++
			if _, err := tx.ExecContext(ctx, `SET TRANSACTION ISOLATION LEVEL SERIALIZABLE`); err != nil {
				return err
			}
			var seen int64
			if err := tx.QueryRowContext(ctx, `SELECT seen_at FROM nonces WHERE mch_id = 'm' AND nonce = 'row'`).Scan(&seen); err != nil {
				return err
			}
			if attempts == 1 { // a concurrent writer commits after our snapshot
				if _, err := db.SQL().ExecContext(ctx, `UPDATE nonces SET seen_at = seen_at + 1 WHERE mch_id = 'm' AND nonce = 'row'`); err != nil {
					return fmt.Errorf("concurrent update: %v", err) // not retryable: fail the test
				}
			}
			_, err := tx.ExecContext(ctx, `UPDATE nonces SET seen_at = $1 WHERE mch_id = 'm' AND nonce = 'row'`, seen+1000)
			if attempts == 1 {
				firstErr = err
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var pgErr *pgconn.PgError
		if !errors.As(firstErr, &pgErr) || pgErr.Code != "40001" {
			t.Fatalf("first attempt: %v, want SQLSTATE 40001", firstErr)
		}
		if !sqlstore.Retryable(firstErr) {
			t.Errorf("Retryable(%v) = false", firstErr)
		}
		if attempts != 2 {
			t.Errorf("attempts = %d, want 2", attempts)
		}
		var seen int64
		if err := db.SQL().QueryRowContext(ctx, `SELECT seen_at FROM nonces WHERE mch_id = 'm' AND nonce = 'row'`).Scan(&seen); err != nil {
			t.Fatal(err)
		}
		if seen != 1101 { // 100, +1 by the concurrent writer, +1000 by the retry that saw it
			t.Errorf("seen_at = %d, want 1101", seen)
		}
	})
}

// retryable classifies real engine errors.
func TestConformanceRetryable(t *testing.T) {
	t.Parallel()
	for _, err := range []error{nil, errors.New("x"), context.Canceled, sql.ErrNoRows,
		&pgconn.PgError{Code: "23505"}, &pgconn.PgError{Code: "57014"}} {
		if sqlstore.Retryable(err) {
			t.Errorf("Retryable(%v) = true", err)
		}
	}
	for _, err := range []error{&pgconn.PgError{Code: "40001"}, &pgconn.PgError{Code: "40P01"},
		fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40P01"})} {
		if !sqlstore.Retryable(err) {
			t.Errorf("Retryable(%v) = false", err)
		}
	}

	forEachEngine(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		// A unique violation is a real error, not a reason to retry.
		dup := db.WriteTx(ctx, func(tx *sql.Tx) error {
			if err := insertNonce(ctx, tx, "dup"); err != nil {
				return err
			}
			return insertNonce(ctx, tx, "dup")
		})
		if dup == nil || !sqlstore.IsUniqueViolation(dup) {
			t.Fatalf("duplicate insert: %v, want a unique violation", dup)
		}
		if sqlstore.Retryable(dup) {
			t.Errorf("Retryable(%v) = true", dup)
		}

		switch db.Dialect() {
		case sqlstore.Postgres:
			for _, code := range []string{"40001", "40P01"} {
				_, err := db.SQL().ExecContext(ctx, `DO $$ BEGIN RAISE EXCEPTION 'provoked' USING ERRCODE = '`+code+`'; END $$`)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != code {
					t.Fatalf("provoking %s: %v", code, err)
				}
				if !sqlstore.Retryable(err) {
					t.Errorf("Retryable(%v) = false", err)
				}
			}
		case sqlstore.SQLite:
			// A real SQLITE_BUSY: a second connection without a busy timeout tries to write
			// while the first holds the write lock.
			path := sqlstoretest.DSN(t, sqlstore.SQLite)
			owner, err := sqlstore.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer owner.Close()
			hold, err := owner.SQL().BeginTx(ctx, nil) // BEGIN IMMEDIATE
			if err != nil {
				t.Fatal(err)
			}
			defer hold.Rollback()
			other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_txlock=immediate")
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			tx, err := other.BeginTx(ctx, nil)
			if err == nil {
				tx.Rollback()
				t.Fatal("second writer began a transaction while the first held the lock")
			}
			var sqErr *sqlite.Error
			if !errors.As(err, &sqErr) || sqErr.Code()&0xff != sqlite3.SQLITE_BUSY {
				t.Fatalf("second writer: %v, want SQLITE_BUSY", err)
			}
			if !sqlstore.Retryable(err) {
				t.Errorf("Retryable(%v) = false", err)
			}
		}
	})
}
