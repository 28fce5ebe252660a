package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

func openCaching(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open(sqliteDriverName, sqliteDSN(filepath.Join(t.TempDir(), "c.db")))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // one connection: every statement comes from its cache
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL); CREATE TABLE log (n BIGINT)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// A cached statement is re-bound every time: each run sees its own arguments, and a failed run
// (a constraint) leaves the statement usable.
func TestStmtCacheRebinds(t *testing.T) {
	db := openCaching(t)
	const ins = `INSERT INTO kv (k, v) VALUES ($1, $2)`
	for i := range 100 {
		if _, err := db.Exec(ins, string(rune('a'+i%26))+string(rune('a'+i/26)), i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(ins, "aa", 7); err == nil || !isUniqueViolation(err) {
		t.Fatalf("duplicate key: %v", err)
	}
	if _, err := db.Exec(ins, "zz", 1000); err != nil {
		t.Fatalf("after a failure: %v", err)
	}
	var sum, n int64
	const sel = `SELECT COALESCE(SUM(v), 0), COUNT(*) FROM kv WHERE v >= $1`
	for _, lo := range []int64{0, 50, 1000, 2000} {
		if err := db.QueryRow(sel, lo).Scan(&sum, &n); err != nil {
			t.Fatal(err)
		}
		var want, wantN int64
		for i := int64(0); i < 100; i++ {
			if i >= lo {
				want, wantN = want+i, wantN+1
			}
		}
		if 1000 >= lo {
			want, wantN = want+1000, wantN+1
		}
		if sum != want || n != wantN {
			t.Fatalf("v >= %d: sum %d count %d, want %d %d", lo, sum, n, want, wantN)
		}
	}
	c := cachedCount(t, db)
	if c != 2 {
		t.Fatalf("%d statements cached, want 2 (the insert and the select; the script is not cached)", c)
	}
}

// A query of the same text while the rows of an earlier one are still open runs uncached
// instead of resetting the statement under the open rows.
func TestStmtCacheNestedSameText(t *testing.T) {
	db := openCaching(t)
	for i, k := range []string{"a", "b", "c"} {
		if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES ($1, $2)`, k, i); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const q = `SELECT k, v FROM kv WHERE v >= $1 ORDER BY k`
	rows, err := conn.QueryContext(ctx, q, 0)
	if err != nil {
		t.Fatal(err)
	}
	var outer []string
	for rows.Next() {
		var k string
		var v int
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		outer = append(outer, k)
		if len(outer) > 3 {
			t.Fatalf("outer rows %v: the inner query reset the outer one", outer)
		}
		var inner int
		if err := conn.QueryRowContext(ctx, q, v).Scan(new(string), &inner); err != nil {
			t.Fatal(err)
		}
		if inner != v {
			t.Fatalf("inner query saw %d, want %d", inner, v)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if len(outer) != 3 {
		t.Fatalf("outer rows %v: the inner query disturbed the outer one", outer)
	}
}

// Transactions use the cache too, and a rolled-back write stays rolled back.
func TestStmtCacheInTransactions(t *testing.T) {
	db := openCaching(t)
	for i := range 3 {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO log (n) VALUES ($1)`, i); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			tx.Rollback()
			continue
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	var n, sum int
	if err := db.QueryRow(`SELECT COUNT(*), SUM(n) FROM log`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 2 || sum != 2 {
		t.Fatalf("count %d sum %d, want 2 and 2 (0 and 2 committed)", n, sum)
	}
}

func cachedCount(t *testing.T, db *sql.DB) int {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := -1
	conn.Raw(func(dc any) error {
		if c, ok := dc.(*cachingConn); ok {
			n = len(c.stmts)
		}
		return nil
	})
	return n
}

func BenchmarkPointQuery(b *testing.B) {
	for _, name := range []string{"sqlite", sqliteDriverName} {
		b.Run(name, func(b *testing.B) {
			db, err := sql.Open(name, sqliteDSN(filepath.Join(b.TempDir(), "b.db")))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL); INSERT INTO kv VALUES ('a', 1)`); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				var v int
				if err := db.QueryRow(`SELECT v FROM kv WHERE k = $1 AND v > $2 AND v < $3`, "a", 0, 10).Scan(&v); err != nil || v != 1 {
					b.Fatal(v, err)
				}
			}
		})
	}
}
