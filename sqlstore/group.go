package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// Group commit on SQLite. SQLite has one writer, so write transactions queue anyway; instead of
// one BEGIN … COMMIT each, the caller that gets the writer's turn (the leader) runs every
// function queued meanwhile in one transaction, commits once and then answers them all. Nobody is
// answered before that COMMIT has returned. The functions first run one after the other; should
// one fail, the transaction is rolled back and they run again, each inside its own SAVEPOINT so
// that the one that fails is rolled back alone. Whenever the batch as a whole fails (BEGIN, a
// savepoint, a retryable error or a panic inside, or COMMIT), nothing of it was committed and
// every function is run again on its own through the ordinary retrying path. Running a function
// again is safe because WriteTx functions must be safe to run again.

// maxBatch bounds one group transaction.
const maxBatch = 64

type writeReq struct {
	ctx      context.Context
	fn       func(*sql.Tx) error
	done     chan error // buffered: the leader never waits on the caller
	panicked any        // what fn panicked with, raised again in the caller's goroutine
}

var errPanicked = errors.New("sqlstore: write function panicked")

// run calls r.fn on behalf of its caller; a panic is caught so that the leader keeps going and
// gives the writer's turn back, and is raised again by the caller.
func (r *writeReq) run(tx *sql.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked, err = p, errPanicked
		}
	}()
	return r.fn(tx)
}

// group is the SQLite writer's queue and turn.
type group struct {
	turn          chan struct{} // holding it is the writer's turn
	commits       chan struct{} // a write committed since the checkpointer last looked (checkpoint.go)
	checkpointing sync.Mutex
	mu            sync.Mutex
	pending       []*writeReq

	// For tests: batches is how many group transactions committed; failCommit, when set, is asked
	// before each COMMIT of a batch of n and may refuse it; afterCopy is checkpoint.go's.
	batches    int
	failCommit func(n int) error
	// afterCopy, when set, runs between a checkpoint's copy and the copy of its tail.
	afterCopy func()
}

func newGroup() *group {
	return &group{turn: make(chan struct{}, 1), commits: make(chan struct{}, 1)}
}

// groupWriteTx queues fn and waits for its answer, taking the writer's turn if it comes first.
func (db *DB) groupWriteTx(ctx context.Context, fn func(*sql.Tx) error) error {
	g := db.group
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, r)
	g.mu.Unlock()
	answer := func(err error) error {
		if r.panicked != nil {
			panic(r.panicked)
		}
		return err
	}
	for {
		select {
		case err := <-r.done:
			return answer(err)
		case g.turn <- struct{}{}:
		}
		// A leader before this one may have answered r while this caller waited for the turn.
		select {
		case err := <-r.done:
			<-g.turn
			return answer(err)
		default:
		}
		g.mu.Lock()
		n := min(len(g.pending), maxBatch)
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		g.mu.Unlock()
		db.runBatch(batch)
		<-g.turn
		// r was in this batch unless more than maxBatch were queued ahead of it.
	}
}

func (db *DB) runBatch(batch []*writeReq) {
	alone := func(r *writeReq) {
		r.panicked = nil
		r.done <- db.retryTx(r.ctx, r.run)
	}
	if len(batch) == 1 {
		alone(batch[0])
		return
	}
	errs, outcome := db.tryBatch(batch, false)
	if outcome == memberFailed {
		errs, outcome = db.tryBatch(batch, true)
	}
	if outcome != committed {
		for _, r := range batch {
			alone(r)
		}
		return
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
}

type batchOutcome int

const (
	committed    batchOutcome = iota // every function's own outcome stands, committed
	lost                             // nothing was committed and no function's outcome stands
	memberFailed                     // without savepoints: a function failed, and nothing was committed
)

// tryBatch runs batch in one transaction. With savepoints, each function runs inside its own, so
// that one that fails is rolled back alone. Without, nothing separates them: the first function
// to fail ends the batch, and runBatch runs it again with savepoints. Most batches have no
// failure, and a savepoint costs two statements per function and, once the batch has changed
// more than 64 KiB, a copy of every page it touches in a temporary file.
func (db *DB) tryBatch(batch []*writeReq, savepoints bool) (errs []error, outcome batchOutcome) {
	// The transaction outlives any one caller: a caller that gives up only fails its own function.
	tx, err := db.sql.BeginTx(context.Background(), nil)
	if err != nil {
		return nil, lost
	}
	defer tx.Rollback() // after Commit, a no-op
	errs = make([]error, len(batch))
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if !savepoints {
			// A statement that fails reports its error through the function, which ends the
			// batch here, before another function could run outside a transaction that SQLite
			// rolled back on its own (an interrupt, a full disk).
			if err := r.run(tx); err != nil {
				if retryable(err) || r.panicked != nil {
					return nil, lost
				}
				return nil, memberFailed
			}
			continue
		}
		if _, err := tx.Exec(`SAVEPOINT batch_member`); err != nil {
			return nil, lost
		}
		if err := r.run(tx); err != nil {
			if retryable(err) || r.panicked != nil {
				return nil, lost
			}
			errs[i] = err
			if _, err := tx.Exec(`ROLLBACK TO batch_member`); err != nil {
				return nil, lost
			}
		}
		// Fails when SQLite has rolled the whole transaction back on its own (an interrupt, a
		// full disk): then the batch is lost, and found out before anything is answered.
		if _, err := tx.Exec(`RELEASE batch_member`); err != nil {
			return nil, lost
		}
	}
	if f := db.group.failCommit; f != nil {
		if err := f(len(batch)); err != nil {
			return nil, lost
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, lost
	}
	db.group.batches++
	db.group.wrote()
	return errs, committed
}
