package sqlstore

import (
	"context"
	"log/slog"
	"time"
)

// Checkpoints on SQLite. In WAL mode a commit appends the pages it changed to the -wal file; a
// checkpoint copies them back into the database file so that the log can start over. Left to
// itself SQLite checkpoints inside the commit that takes the log past 1 000 pages, on the
// writer's turn: every write queued behind it waits while megabytes are copied and synced. At
// unifiedorder's full rate that was a tenth of the server's CPU, all of it on the one path that
// cannot run in parallel (docs/performance.md).
//
// So a goroutine of the DB checkpoints instead, on a reading connection, a moment after writes:
// SQLite lets the copy run while the writer goes on appending. The log can only start over once
// everything in it has been copied, and under load new frames arrive during every copy; so when
// the log has passed checkpointFrames, the goroutine copies the few frames left while holding
// the writer's turn, and the next write starts the log from the beginning. SQLite's own
// checkpoint stays on as a backstop, at backstopFrames, should this goroutine fall behind.

const (
	// checkpointDelay gathers the writes of this long into one checkpoint.
	checkpointDelay = 100 * time.Millisecond
	// checkpointFrames is the log length (pages) at which the log is made to start over:
	// SQLite's own default threshold.
	checkpointFrames = 1000
	// backstopFrames is SQLite's wal_autocheckpoint on our connections (set in sqliteDSN).
	backstopFrames = 20000
)

// wrote tells the checkpointer that a write transaction has committed.
func (g *group) wrote() {
	select {
	case g.commits <- struct{}{}:
	default:
	}
}

// checkpointLoop runs until stop is closed, checkpointing checkpointDelay after writes.
func (db *DB) checkpointLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		case <-db.group.commits:
		}
		select {
		case <-stop:
			return
		case <-time.After(checkpointDelay):
		}
		if err := db.checkpoint(context.Background()); err != nil {
			slog.Warn("sqlite checkpoint", "err", err)
		}
	}
}

// checkpoint copies the log into the database file; once the log is long, it copies the rest on
// the writer's turn so that the next write starts the log over.
func (db *DB) checkpoint(ctx context.Context) error {
	// One at a time: SQLite refuses a checkpoint while another runs.
	db.group.checkpointing.Lock()
	defer db.group.checkpointing.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// frames counts the log as it was when the copy started: writes go on meanwhile, so a
	// complete copy still leaves a tail.
	frames, _, err := db.walCheckpoint(ctx)
	if err != nil || frames < checkpointFrames {
		return err
	}
	if f := db.group.afterCopy; f != nil {
		f()
	}
	select {
	case db.group.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-db.group.turn }()
	_, _, err = db.walCheckpoint(ctx)
	return err
}

// walCheckpoint runs a passive checkpoint: it copies what it can without waiting for anyone and
// reports the log's length and how much of it is now in the database file (pages).
func (db *DB) walCheckpoint(ctx context.Context) (frames, copied int, err error) {
	var busy int
	err = db.sql.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	return frames, copied, err
}
