package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
)

// runOperator creates an operator account of the console. The initial password is printed once;
// the TOTP second factor is enrolled at the first sign-in.
func runOperator(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: medpay operator create --email EMAIL --role admin|reviewer|support [--name NAME]")
	}
	fs := newFlags("operator create", stderr)
	dsn := fs.String("db", "medpay.db", "database: SQLite file or postgres:// URL")
	serverKey := fs.String("server-key", "", "64 hex characters sealing API keys (default: file beside the SQLite database)")
	email := fs.String("email", "", "the operator's email, the login name")
	name := fs.String("name", "", "the operator's name")
	role := fs.String("role", "", "admin (everything), reviewer (applications) or support (read-only, personal data masked)")
	if err := parseFlags(fs, args[1:], getenv); err != nil {
		return err
	}
	if !strings.Contains(*email, "@") {
		return errors.New("--email is required")
	}
	switch *role {
	case medpay.RoleAdmin, medpay.RoleReviewer, medpay.RoleSupport:
	default:
		return fmt.Errorf("--role must be admin, reviewer or support, not %q", *role)
	}
	store, err := openStore(ctx, *dsn, *serverKey)
	if err != nil {
		return err
	}
	defer store.DB().Close()
	password := secret.RandomString(16, "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
	now := time.Now()
	a := &medpay.Account{Kind: medpay.AccountOperator, Email: *email, Name: *name, Role: *role,
		PasswordHash: secret.HashPassword(password), CreatedAt: now}
	err = store.CreateAccount(ctx, a, &medpay.AuditEntry{At: now, Actor: "cli", Action: "operator.create", Target: *email, Detail: *role})
	if errors.Is(err, medpay.ErrConflict) {
		return fmt.Errorf("an operator with email %s exists already", *email)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "operator %s (%s) created. Initial password, shown once:\n\n  %s\n\n", a.Email, a.Role, password)
	fmt.Fprintln(stdout, "Sign in at <base-url>/console/login; the second factor (TOTP) is enrolled at the first sign-in.")
	return nil
}
