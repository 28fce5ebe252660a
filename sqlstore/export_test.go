package sqlstore

import (
	"context"
	"time"
)

// Hooks for the external tests (package sqlstore_test).
var Retryable = retryable

const MaxTxAttempts = maxTxAttempts

// SetCacheClock replaces the real clock that ages s's caches.
func SetCacheClock(s *Store, now func() time.Time) {
	s.tokens.now, s.merchants.now, s.suspensions.now = now, now, now
}

// PendingWrites is how many WriteTx calls wait in the SQLite queue.
func PendingWrites(db *DB) int {
	db.group.mu.Lock()
	defer db.group.mu.Unlock()
	return len(db.group.pending)
}

// GroupBatches is how many group transactions (of two or more) have committed.
func GroupBatches(db *DB) int { return db.group.batches }

// SetFailCommit makes f decide, before each SQLite COMMIT of n functions, whether it fails.
func SetFailCommit(db *DB, f func(n int) error) { db.group.failCommit = f }

// Checkpoint runs one checkpoint of db's SQLite file as its checkpointer does.
func Checkpoint(db *DB) error { return db.checkpoint(context.Background()) }

// SetAfterCopy makes f run between a checkpoint's copy and the copy of its tail.
func SetAfterCopy(db *DB, f func()) { db.group.afterCopy = f }

const CheckpointFrames = checkpointFrames

// StopCheckpointer ends db's checkpointer goroutine, so that a test runs checkpoints alone.
func StopCheckpointer(db *DB) {
	close(db.stopCheckpoints)
	<-db.checkpointsDone
	db.stopCheckpoints = nil
}
