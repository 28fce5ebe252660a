package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
	"github.com/medpay/medpay/wire"
)

// TestTwoProcessesShareNotifications runs two server processes on one PostgreSQL database. The
// hospital refuses the first attempt of every notification, so the retries fall due about
// together 15 s later, when both processes' workers race for them. Each notification must then be
// delivered once, and each outbox row must record exactly two attempts.
func TestTwoProcessesShareNotifications(t *testing.T) {
	if os.Getenv(sqlstoretest.PostgresEnv) == "" {
		t.Skip(sqlstoretest.PostgresEnv + " not set: this test needs PostgreSQL")
	}
	if testing.Short() {
		t.Skip("runs two server processes for about 20 s")
	}
	t.Parallel()
	dsn := sqlstoretest.DSN(t, sqlstore.Postgres)
	env := []string{"MEDPAY_SERVER_KEY=" + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", "MEDPAY_SANDBOX=true"}
	c := onboard(t, dsn, env...)

	var mu sync.Mutex
	seen := map[string]int{}      // attempts received per notify_id
	delivered := map[string]int{} // attempts acknowledged per notify_id
	notifyURL := hospitalReceiver(t, c.APIKey, func(m *wire.Message) bool {
		id := m.Get("notify_id")
		mu.Lock()
		defer mu.Unlock()
		seen[id]++
		if seen[id] == 1 {
			return false
		}
		delivered[id]++
		return true
	})

	a := serve(t, dsn, freeAddr(t), env...)
	b := serve(t, dsn, freeAddr(t), env...)
	const orders = 20
	tokA, tokB := token(t, a.url, c), token(t, b.url, c)
	for i := 0; i < orders; i++ {
		p, tok := a, tokA
		if i%2 == 1 {
			p, tok = b, tokB
		}
		id := placeOrder(t, p.url, tok, c, fmt.Sprintf("two-%d", i), "employee", notifyURL)
		resp, err := postJSON(p.url, "/sandbox/orders/"+id+"/confirm", `{"pin":"123456"}`)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	// Wait until the outbox says every notification is delivered and no claim is in hand: every
	// attempt made has then been recorded. A stop after that cannot cut a duplicate short.
	db, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(2 * time.Minute) // a hang, not a measure of speed
	for {
		var done, total int
		if err := db.SQL().QueryRow(`SELECT COUNT(*) FILTER (WHERE state = 'delivered' AND lease_until = 0), COUNT(*) FROM outbox`).Scan(&done, &total); err != nil {
			t.Fatal(err)
		}
		if total == orders && done == orders {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d notifications delivered", done, total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.stop(t)
	b.stop(t)

	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != orders {
		t.Fatalf("%d notifications delivered, want %d", len(delivered), orders)
	}
	for id, n := range delivered {
		if n != 1 || seen[id] != 2 {
			t.Errorf("notification %s received %d times, delivered %d times; want 2 and 1", id, seen[id], n)
		}
	}
	rows, err := db.SQL().Query(`SELECT o.notify_id, COUNT(a.id) FROM outbox o JOIN notify_attempts a ON a.outbox_id = o.id GROUP BY o.notify_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		rows.Scan(&id, &n)
		if n != 2 {
			t.Errorf("notification %s: %d attempts recorded, want 2 (one refused, one delivered)", id, n)
		}
	}
}
