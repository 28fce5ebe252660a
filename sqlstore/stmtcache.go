package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"

	"modernc.org/sqlite"
)

// The SQLite driver parses every query it is given anew: profiles of the open API under load
// showed about a quarter of the server's time in SQLite's parser. cachingDriver wraps it and keeps,
// per connection, the prepared statement of each query text it has run, so that a query the
// platform runs again (the same few dozen texts, all with placeholders) is bound and stepped
// without being parsed. PostgreSQL needs nothing of the kind: pgx caches statements itself.

// maxCachedStmts bounds the statements one connection keeps; texts beyond it run uncached.
const maxCachedStmts = 256

type cachingDriver struct{ base *sqlite.Driver }

// sqliteDriverName is the name the caching driver is registered under.
const sqliteDriverName = "medpay-sqlite"

func init() {
	// The SQLite package registers its driver as "sqlite"; wrap that very driver, so that every
	// function and hook registered on it stays in force.
	db, err := sql.Open("sqlite", "")
	if err != nil {
		panic(err)
	}
	sql.Register(sqliteDriverName, cachingDriver{base: db.Driver().(*sqlite.Driver)})
	db.Close()
}

func (d cachingDriver) Open(name string) (driver.Conn, error) {
	c, err := d.base.Open(name)
	if err != nil {
		return nil, err
	}
	cc, ok := c.(sqliteConn)
	if !ok { // not the driver this was written for: use it as it is
		return c, nil
	}
	return &cachingConn{sqliteConn: cc, stmts: make(map[string]*cachedStmt)}, nil
}

// sqliteConn is what the SQLite driver's connection provides and database/sql uses.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// cachingConn is one connection with its statements. database/sql uses a connection from one
// goroutine at a time, so the map needs no lock; a statement whose rows are still open is busy,
// and a query of the same text meanwhile (a query inside a loop over the rows of another with
// the same text) runs uncached.
type cachingConn struct {
	sqliteConn
	stmts map[string]*cachedStmt
}

type cachedStmt struct {
	stmt driver.Stmt
	busy bool
}

// cacheable keeps scripts (several statements, as migrations run) and very long texts out.
func cacheable(query string) bool {
	q := strings.TrimSpace(query)
	return len(q) < 8<<10 && !strings.Contains(strings.TrimSuffix(q, ";"), ";")
}

// stmt returns the idle cached statement of query, preparing it the first time, or nil when the
// query should run uncached.
func (c *cachingConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		return s, nil
	}
	if len(c.stmts) >= maxCachedStmts || !cacheable(query) {
		return nil, nil
	}
	st, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s := &cachedStmt{stmt: st}
	c.stmts[query] = s
	return s, nil
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.stmt(ctx, query)
	if err != nil || s == nil {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	return s.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.stmt(ctx, query)
	if err != nil || s == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := s.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.busy = true
	return &cachedRows{Rows: rows, s: s}, nil
}

func (c *cachingConn) Close() error {
	var errs []error
	for q, s := range c.stmts {
		errs = append(errs, s.stmt.Close())
		delete(c.stmts, q)
	}
	errs = append(errs, c.sqliteConn.Close())
	return errors.Join(errs...)
}

// cachedRows frees its statement for the next use when closed.
type cachedRows struct {
	driver.Rows
	s *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.s.busy = false
	return err
}
