package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay/sqlstore"
)

// logGeneration reads the checkpoint sequence number in the -wal file's header: SQLite adds one
// each time the log starts over from its beginning.
func logGeneration(t *testing.T, path string) uint32 {
	t.Helper()
	f, err := os.Open(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var h [16]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint32(h[12:16])
}

// fillLog writes more than CheckpointFrames pages to the log in one transaction.
func fillLog(t *testing.T, db *sqlstore.DB) {
	t.Helper()
	page := strings.Repeat("x", 4000)
	err := db.WriteTx(context.Background(), func(tx *sql.Tx) error {
		for i := range sqlstore.CheckpointFrames + 100 {
			if _, err := tx.Exec(`INSERT INTO probe (k) VALUES ($1)`, fmt.Sprintf("%s%d", page, i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func writeOne(t *testing.T, db *sqlstore.DB, k string) {
	t.Helper()
	err := db.WriteTx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO probe (k) VALUES ($1)`, k)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A write committed while a checkpoint copies the log must not keep the log from starting over:
// under load there always is one.
func TestCheckpointCopiesTheTailOnTheWritersTurn(t *testing.T) {
	db, path := groupDB(t)
	sqlstore.StopCheckpointer(db)
	fillLog(t, db)
	// A write transaction that began before the copy and commits while it runs.
	entered, release, written := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		written <- db.WriteTx(context.Background(), func(tx *sql.Tx) error {
			if _, err := tx.Exec(`INSERT INTO probe (k) VALUES ('written during the copy')`); err != nil {
				return err
			}
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered
	copied := false
	sqlstore.SetAfterCopy(db, func() {
		copied = true
		close(release)
		if err := <-written; err != nil {
			t.Error(err)
		}
	})
	before := logGeneration(t, path)
	if err := sqlstore.Checkpoint(db); err != nil {
		t.Fatal(err)
	}
	if !copied {
		t.Fatal("the checkpoint did not find the log long enough to start it over")
	}
	writeOne(t, db, "after")
	if after := logGeneration(t, path); after == before {
		t.Fatalf("the log did not start over after the checkpoint (generation %d)", after)
	}
	var n int
	if err := db.SQL().QueryRow(`SELECT count(*) FROM probe WHERE k IN ('written during the copy', 'after')`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows written around the checkpoint: %d, %v", n, err)
	}
}

// The DB's own checkpointer starts the log over after a long write, well before SQLite's
// backstop would.
func TestCheckpointerStartsTheLogOver(t *testing.T) {
	db, path := groupDB(t)
	fillLog(t, db)
	before := logGeneration(t, path)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; logGeneration(t, path) == before; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the log never started over")
		}
		time.Sleep(20 * time.Millisecond)
		writeOne(t, db, fmt.Sprintf("tick %d", i))
	}
}
