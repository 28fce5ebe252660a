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
// hospital refuses the first delivery of every notification, so every first attempt fails and
// the retries fall due 15 s later, when both processes' workers race for them. Each
// notification must then be delivered once, and each outbox row must record exactly two attempts.
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
	delivered := map[string]int{}
	refused := map[string]bool{} // not a time window: placing the orders may take long on a busy machine
	notifyURL := hospitalReceiver(t, c.APIKey, func(m *wire.Message) bool {
		mu.Lock()
		defer mu.Unlock()
		id := m.Get("notify_id")
		if !refused[id] {
			refused[id] = true
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

	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(delivered)
		mu.Unlock()
		if n >= orders || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // room for a duplicate to show up
	a.stop(t)
	b.stop(t)

	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != orders {
		t.Fatalf("%d notifications delivered, want %d", len(delivered), orders)
	}
	for id, n := range delivered {
		if n != 1 {
			t.Errorf("notification %s delivered %d times", id, n)
		}
	}
	db, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
