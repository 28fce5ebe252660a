package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
)

func TestOperatorCreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "medpay.db")
	create := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append([]string{"operator", "create", "--db", db}, args...), func(string) string { return "" }, &out, &errOut)
		return out.String(), err
	}
	out, err := create("--email", "Ops@Example.cn", "--role", "reviewer")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\n  (\S{16})\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no password printed:\n%s", out)
	}
	store, err := openStore(ctx, db, "")
	if err != nil {
		t.Fatal(err)
	}
	defer store.DB().Close()
	a, err := store.AccountByEmail(ctx, medpay.AccountOperator, "ops@example.cn")
	if err != nil || a.Role != medpay.RoleReviewer || !secret.CheckPassword(a.PasswordHash, m[1]) || a.TOTPOn {
		t.Fatalf("account %+v %v", a, err)
	}
	if _, err := create("--email", "ops@example.cn", "--role", "admin"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := create("--email", "x@example.cn", "--role", "root"); err == nil {
		t.Fatal("unknown role accepted")
	}
	if log, _ := store.AuditLog(ctx, 0, 10); len(log) != 1 || log[0].Action != "operator.create" {
		t.Fatalf("audit %+v", log)
	}
}
