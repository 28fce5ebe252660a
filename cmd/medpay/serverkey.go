package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// keyFile is where an SQLite database's server key is kept when none is given.
func keyFile(dsn string) string { return dsn + ".key" }

// openSealed opens the database and the server key and makes sure the key opens the values the
// database already holds (a key check value is stored the first time). A wrong key, or a lost
// SQLite key file, is refused with what to do: serving with it would answer every token request
// with a system error.
func openSealed(ctx context.Context, dsn, given string) (*sqlstore.DB, *secret.Box, error) {
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	key, source, err := serverKey(ctx, db, dsn, given)
	if err == nil {
		var box *secret.Box
		if box, err = secret.NewBox(key); err == nil {
			if err = sqlstore.CheckServerKey(ctx, db, box, time.Now()); err == nil {
				return db, box, nil
			}
			if errors.Is(err, sqlstore.ErrServerKey) {
				err = wrongKey(dsn, source)
			}
		}
	}
	db.Close()
	return nil, nil, err
}

// serverKey returns the key given, or for SQLite the one kept in the key file, creating that
// file only while the database holds nothing sealed.
func serverKey(ctx context.Context, db *sqlstore.DB, dsn, given string) ([]byte, string, error) {
	if given != "" {
		k, err := secret.ParseKey(given)
		return k, "--server-key", err
	}
	if sqlstore.IsPostgres(dsn) {
		return nil, "", errors.New("--server-key (MEDPAY_SERVER_KEY) is required with PostgreSQL: 64 hex characters, e.g. from `openssl rand -hex 32`; keep it as safe as the database")
	}
	path := keyFile(dsn)
	data, err := os.ReadFile(path)
	if err == nil {
		k, err := secret.ParseKey(string(data))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		return k, "the key file " + path, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	holds, err := db.HoldsSealedValues(ctx)
	if err != nil {
		return nil, "", err
	}
	if holds {
		return nil, "", fmt.Errorf("the server key file %s is missing, but the database %s holds API keys sealed with the key it held.\n"+
			"A new key would not open them, so none is made. Restore %s from a backup, or give the key with --server-key (MEDPAY_SERVER_KEY)", path, dsn, path)
	}
	k, err := secret.LoadOrCreateKeyFile(path)
	return k, "the key file " + path, err
}

func wrongKey(dsn, source string) error {
	msg := fmt.Sprintf("the server key from %s does not open the API keys sealed in %s: they were sealed with another key, "+
		"and a server started with this one would answer every token request with a system error.\n"+
		"Start with the key the database was sealed with (--server-key or MEDPAY_SERVER_KEY", source, sqlstore.Redact(dsn))
	if !sqlstore.IsPostgres(dsn) {
		msg += ", or the file " + keyFile(dsn)
	}
	msg += "); to change keys, run 'medpay server-key rotate'. Nothing was changed."
	if _, err := os.Stat(keyFile(dsn) + ".new"); err == nil {
		msg += fmt.Sprintf("\n%s.new exists: a rotation stopped after re-sealing; if that key opens the database, move it over %s.", keyFile(dsn), keyFile(dsn))
	}
	return errors.New(msg)
}

const serverKeyUsage = `usage: medpay server-key rotate [--db DSN] [--server-key OLD] [--new-key NEW]

Re-seals every sealed value (the merchants' API keys, the payers' names, ID and card numbers, and
the other sealed credentials) and the key check under a new server key, and recomputes the lookup
hashes of ID numbers, in one transaction: all of them change or none does. Stop the servers first and start them again with
the new key.

With an SQLite key file (no --server-key) the new key replaces the file. Otherwise the new key is
--new-key, or one made up and printed once: put it where the servers read MEDPAY_SERVER_KEY.
`

func runServerKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub, rest, err := subcommand("server-key", serverKeyUsage, args, stdout, stderr)
	if err != nil {
		return err
	}
	if sub != "rotate" {
		return unknownSub("server-key", serverKeyUsage, sub, stderr)
	}
	fs := newFlags("server-key rotate", stdout)
	setUsage(fs, serverKeyUsage)
	dsn := fs.String("db", "medpay.db", "database: SQLite file or postgres:// URL")
	oldKey := fs.String("server-key", "", "the current key, 64 hex characters (default for SQLite: the key file beside the database)")
	newKey := fs.String("new-key", "", "the new key, 64 hex characters (default: a new random key)")
	if err := parseFlags(fs, rest, getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("server-key rotate: unexpected argument %q", fs.Arg(0))
	}
	db, oldBox, err := openSealed(ctx, *dsn, *oldKey)
	if err != nil {
		return err
	}
	defer db.Close()
	generated := *newKey == ""
	if generated {
		k := make([]byte, 32)
		rand.Read(k)
		*newKey = hex.EncodeToString(k)
	}
	nk, err := secret.ParseKey(*newKey)
	if err != nil {
		return fmt.Errorf("--new-key: %w", err)
	}
	newBox, err := secret.NewBox(nk)
	if err != nil {
		return err
	}
	// With a key file, the new key is written beside it first: if the process dies after the
	// commit, the key that opens the database is still on disk.
	var pending string
	toFile := *oldKey == "" && !sqlstore.IsPostgres(*dsn)
	if toFile {
		pending = keyFile(*dsn) + ".new"
		if err := writeKeyFile(pending, *newKey); err != nil {
			return err
		}
	}
	report, err := sqlstore.RotateServerKey(ctx, db, oldBox, newBox, time.Now())
	if err != nil {
		if pending != "" {
			os.Remove(pending)
		}
		return fmt.Errorf("rotate: %w (nothing was changed)", err)
	}
	var parts []string
	for _, r := range report {
		parts = append(parts, fmt.Sprintf("%d in %s", r.Count, r.Column))
	}
	fmt.Fprintf(stdout, "re-sealed %s and the key check under the new key\n", strings.Join(parts, ", "))
	switch {
	case toFile:
		if err := os.Rename(pending, keyFile(*dsn)); err != nil {
			return fmt.Errorf("the database is re-sealed under the key in %s, but it could not replace %s: %w; move it there by hand", pending, keyFile(*dsn), err)
		}
		fmt.Fprintf(stdout, "the new key is in %s; the old key no longer opens the database\n", keyFile(*dsn))
	case generated:
		fmt.Fprintf(stdout, "new server key (shown once; start the servers with it as --server-key or MEDPAY_SERVER_KEY):\n%s\n", *newKey)
	default:
		fmt.Fprintln(stdout, "start the servers with the new key (--server-key or MEDPAY_SERVER_KEY); the old key no longer opens the database")
	}
	return nil
}

// writeKeyFile writes a key as hex to a new 0600 file and syncs it.
func writeKeyFile(path, hexKey string) error {
	os.Remove(path) // a leftover of a rotation that failed before its commit
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(hexKey + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadServerKey returns the key given, or for SQLite the one kept beside the database file,
// creating it when missing. The platform's own database goes through openSealed, which also checks
// the key against what the database holds; this serves the cash channel's separate database.
func loadServerKey(dsn, given string) ([]byte, error) {
	if given != "" {
		return secret.ParseKey(given)
	}
	if sqlstore.IsPostgres(dsn) {
		return nil, errors.New("--server-key (MEDPAY_SERVER_KEY) is required with PostgreSQL: 64 hex characters, e.g. from `openssl rand -hex 32`")
	}
	return secret.LoadOrCreateKeyFile(keyFile(dsn))
}
