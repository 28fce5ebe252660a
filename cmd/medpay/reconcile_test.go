package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/sqlstore"
)

func TestReconcileCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "medpay.db")
	today := time.Now().In(time.FixedZone("CST", 8*3600)).Format("20060102")
	run1 := func() (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, []string{"reconcile", "--db", db, "--date", today}, func(string) string { return "" }, &out, &errOut)
		return out.String(), err
	}
	// An empty day reconciles.
	sdb, err := sqlstore.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := run1(); err != nil || !strings.Contains(out, "0 serials") {
		t.Fatalf("empty day: %v\n%s", err, out)
	}
	// A charge the platform never recorded is reported, and the command fails.
	if _, err := cash.New(sdb, nil).Charge(ctx, "STRAY-C1", "wx1/o1", 1234); err != nil {
		t.Fatal(err)
	}
	sdb.Close()
	out, err := run1()
	if err == nil || !strings.Contains(out, "DISCREPANCY cash") || !strings.Contains(out, "STRAY: ledger 0.00, books 12.34") {
		t.Fatalf("stray charge: %v\n%s", err, out)
	}
}
