package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medpay/medpay/sqlstore"
)

// groupDB opens an SQLite file with a probe table and returns it with its path.
func groupDB(t *testing.T) (*sqlstore.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "group.db")
	db, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.SQL().Exec(`CREATE TABLE probe (k TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	return db, path
}

// batched runs fns as concurrent WriteTx calls that are all queued behind one held transaction,
// so that the next writer takes them as one batch, and returns their answers.
func batched(t *testing.T, db *sqlstore.DB, ctxs []context.Context, fns []func(*sql.Tx) error) []error {
	t.Helper()
	entered, release := make(chan struct{}), make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		holder <- db.WriteTx(context.Background(), func(*sql.Tx) error {
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					errs[i] = fmt.Errorf("panic: %v", p)
				}
			}()
			ctx := context.Background()
			if ctxs != nil && ctxs[i] != nil {
				ctx = ctxs[i]
			}
			errs[i] = db.WriteTx(ctx, fn)
		}()
	}
	for sqlstore.PendingWrites(db) < len(fns) { // all queued: the holder still has the turn
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	<-holder // its own commit is no part of the test
	return errs
}

func insert(k string) func(*sql.Tx) error {
	return func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO probe (k) VALUES ($1)`, k)
		return err
	}
}

// rows reads the probe table through a second connection pool, as a restarted process would.
func rows(t *testing.T, path string) map[string]bool {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.SQL().Query(`SELECT k FROM probe`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	got := map[string]bool{}
	for rs.Next() {
		var k string
		rs.Scan(&k)
		got[k] = true
	}
	return got
}

// TestGroupCommitMemberFails: in one group transaction, a function that fails (after writing) or
// conflicts with an earlier member is answered with its error and leaves nothing; the others are
// answered nil and their rows are in the file.
func TestGroupCommitMemberFails(t *testing.T) {
	t.Parallel()
	db, path := groupDB(t)
	boom := errors.New("boom")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	errs := batched(t, db, []context.Context{nil, nil, nil, nil, cancelled}, []func(*sql.Tx) error{
		insert("a"),
		func(tx *sql.Tx) error {
			if err := insert("b")(tx); err != nil {
				return err
			}
			return boom
		},
		insert("c"),
		insert("a"), // the same key: whichever runs second is a unique violation inside the batch
		insert("e"), // its caller gave up before its turn
	})
	if n := sqlstore.GroupBatches(db); n != 1 {
		t.Fatalf("%d group transactions, want the five calls in one", n)
	}
	if errs[2] != nil {
		t.Errorf("successful member answered %v", errs[2])
	}
	if errs[1] != boom {
		t.Errorf("failing member answered %v, want its own error", errs[1])
	}
	if (errs[0] == nil) == (errs[3] == nil) {
		t.Errorf("the two inserts of a answered %v and %v, want one nil and one error", errs[0], errs[3])
	}
	if !errors.Is(errs[4], context.Canceled) {
		t.Errorf("cancelled member answered %v", errs[4])
	}
	if got := rows(t, path); len(got) != 2 || !got["a"] || !got["c"] {
		t.Errorf("rows %v, want exactly a and c", got)
	}
}

// TestGroupCommitBatchCommitFails: when the group's COMMIT fails, nobody is answered from it:
// every function runs again alone (so each ran twice, and its row exists once); when those
// commits fail too, every caller gets the error and nothing is stored.
func TestGroupCommitBatchCommitFails(t *testing.T) {
	t.Parallel()
	db, path := groupDB(t)
	refused := errors.New("commit refused")
	sqlstore.SetFailCommit(db, func(n int) error {
		if n > 1 {
			return refused
		}
		return nil
	})
	var runs [3]atomic.Int32
	fns := make([]func(*sql.Tx) error, 3)
	for i := range fns {
		fns[i] = func(tx *sql.Tx) error {
			runs[i].Add(1)
			return insert(fmt.Sprint("k", i))(tx)
		}
	}
	errs := batched(t, db, nil, fns)
	for i, err := range errs {
		if err != nil {
			t.Errorf("member %d: %v", i, err)
		}
		if n := runs[i].Load(); n != 2 {
			t.Errorf("member %d ran %d times, want once in the batch and once alone", i, n)
		}
	}
	if n := sqlstore.GroupBatches(db); n != 0 {
		t.Errorf("%d group transactions counted as committed", n)
	}
	if got := rows(t, path); len(got) != 3 {
		t.Errorf("rows %v, want k0, k1, k2 once each", got)
	}

	sqlstore.SetFailCommit(db, func(int) error { return refused })
	errs = batched(t, db, nil, []func(*sql.Tx) error{insert("x"), insert("y"), insert("z")})
	for i, err := range errs {
		if err != refused {
			t.Errorf("member %d answered %v with every commit refused", i, err)
		}
	}
	if got := rows(t, path); len(got) != 3 || got["x"] || got["y"] || got["z"] {
		t.Errorf("rows %v: a refused commit left rows", got)
	}
}

// TestGroupCommitMany: under concurrency, the rows stored are exactly those whose callers were
// answered nil.
func TestGroupCommitMany(t *testing.T) {
	t.Parallel()
	db, path := groupDB(t)
	const n = 300
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprint("m", i)
			errs[i] = db.WriteTx(context.Background(), func(tx *sql.Tx) error {
				if err := insert(k)(tx); err != nil {
					return err
				}
				if i%7 == 0 {
					return errors.New("refused")
				}
				return nil
			})
		}()
	}
	wg.Wait()
	got := rows(t, path)
	for i, err := range errs {
		if stored := got[fmt.Sprint("m", i)]; stored != (err == nil) {
			t.Errorf("m%d: answered %v, stored %v", i, err, stored)
		}
	}
	t.Logf("%d group transactions for %d calls", sqlstore.GroupBatches(db), n)
}

// TestGroupCommitPanic: a function that panics inside a batch panics in its own caller, as it
// would alone; the others still commit, and the writer's turn is not lost.
func TestGroupCommitPanic(t *testing.T) {
	t.Parallel()
	db, path := groupDB(t)
	errs := batched(t, db, nil, []func(*sql.Tx) error{
		insert("p1"),
		func(tx *sql.Tx) error {
			insert("px")(tx)
			panic("bad function")
		},
		insert("p2"),
	})
	if errs[1] == nil || errs[1].Error() != "panic: bad function" {
		t.Errorf("panicking member: %v, want its panic raised in its caller", errs[1])
	}
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("others answered %v, %v", errs[0], errs[2])
	}
	if got := rows(t, path); len(got) != 2 || got["px"] {
		t.Errorf("rows %v, want p1 and p2", got)
	}
	if err := db.WriteTx(context.Background(), insert("after")); err != nil {
		t.Fatalf("writer stuck or failing after a panic: %v", err)
	}
}

// TestGroupCommitSavepointsOnlyAfterAFailure: a batch in which nothing fails runs without a
// savepoint per function (they cost two statements each and a copy of every page touched); one
// in which a function fails is rolled back and run again with them, and the rows of those that
// ran twice are stored once.
func TestGroupCommitSavepointsOnlyAfterAFailure(t *testing.T) {
	t.Parallel()
	db, path := groupDB(t)
	inSavepoint := func(tx *sql.Tx) bool {
		_, err := tx.Exec(`RELEASE batch_member`) // fails outside one: "no such savepoint"
		return err == nil
	}
	var saw atomic.Int32
	errs := batched(t, db, nil, []func(*sql.Tx) error{
		insert("s1"),
		func(tx *sql.Tx) error {
			if inSavepoint(tx) {
				saw.Add(1)
			}
			return insert("s2")(tx)
		},
	})
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("answers %v", errs)
	}
	if saw.Load() != 0 {
		t.Error("a batch without failures ran its functions inside savepoints")
	}

	boom := errors.New("boom")
	var runs [3]atomic.Int32
	errs = batched(t, db, nil, []func(*sql.Tx) error{
		func(tx *sql.Tx) error { runs[0].Add(1); return insert("f1")(tx) },
		func(tx *sql.Tx) error {
			runs[1].Add(1)
			if err := insert("f2")(tx); err != nil {
				return err
			}
			return boom
		},
		func(tx *sql.Tx) error { runs[2].Add(1); return insert("f3")(tx) },
	})
	if errs[0] != nil || errs[1] != boom || errs[2] != nil {
		t.Fatalf("answers %v, want nil, boom, nil", errs)
	}
	// The batch ran without savepoints up to the failure, then again with them; the functions
	// queue in no fixed order, so the others ran once or twice.
	if runs[1].Load() != 2 {
		t.Errorf("the failing function ran %d times, want twice", runs[1].Load())
	}
	if got := rows(t, path); len(got) != 4 || !got["f1"] || !got["f3"] || got["f2"] {
		t.Errorf("rows %v, want s1, s2, f1, f3", got)
	}
}
