package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// runCLI runs the command in-process with no environment and returns its stdout.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), args, func(string) string { return "" }, &out, &errOut)
	return out.String(), err
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("medpay %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// createHospital onboards a hospital through the command and returns its API key.
func createHospital(t *testing.T, db string, extra ...string) string {
	t.Helper()
	out := mustCLI(t, append([]string{"merchant", "create", "--db", db, "--name", "深圳市人民医院", "--city", "440300", "--json"}, extra...)...)
	var c struct {
		MchID  string `json:"mch_id"`
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	return c.MchID + " " + c.APIKey
}

// serveRefused runs serve and wants it to refuse before listening.
func serveRefused(t *testing.T, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		var out, errOut bytes.Buffer
		errc <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), func(string) string { return "" }, &out, &errOut)
	}()
	err := <-errc
	if err == nil {
		t.Fatal("serve returned without an error")
	}
	return err
}

func merchantCount(t *testing.T, db string) int {
	t.Helper()
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(mustCLI(t, "merchant", "list", "--db", db, "--json")), &list); err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func hexKey() string {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i*7 + 1)
	}
	return hex.EncodeToString(k)
}

func TestWrongServerKeyRefused(t *testing.T) {
	db := filepath.Join(t.TempDir(), "medpay.db")
	createHospital(t, db)
	wrong := strings.Repeat("ab", 32)

	_, err := runCLI(t, "merchant", "create", "--db", db, "--name", "B", "--city", "440300", "--server-key", wrong)
	if err == nil {
		t.Fatal("merchant create accepted a key that does not open the database")
	}
	for _, want := range []string{"does not open", "--server-key", db + ".key", "medpay server-key rotate", "Nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	}
	if n := merchantCount(t, db); n != 1 {
		t.Errorf("%d merchants after a refused create, want 1", n)
	}
	err = serveRefused(t, "--db", db, "--server-key", wrong)
	if !strings.Contains(err.Error(), "does not open") {
		t.Errorf("serve: %v", err)
	}

	// A damaged key file is refused the same way.
	if err := os.WriteFile(db+".key", []byte(wrong+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = serveRefused(t, "--db", db)
	if !strings.Contains(err.Error(), "the key file "+db+".key does not open") {
		t.Errorf("serve with a wrong key file: %v", err)
	}
}

func TestLostKeyFileRefusedNotRegenerated(t *testing.T) {
	db := filepath.Join(t.TempDir(), "medpay.db")
	createHospital(t, db)
	if err := os.Remove(db + ".key"); err != nil {
		t.Fatal(err)
	}
	for _, try := range []func() error{
		func() error { return serveRefused(t, "--db", db) },
		func() error {
			_, err := runCLI(t, "merchant", "create", "--db", db, "--name", "B", "--city", "440300")
			return err
		},
	} {
		err := try()
		if err == nil || !strings.Contains(err.Error(), "is missing") || !strings.Contains(err.Error(), "Restore "+db+".key") {
			t.Errorf("want a refusal that says to restore the key file, got %v", err)
		}
		if _, err := os.Stat(db + ".key"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the key file was regenerated (stat: %v)", err)
		}
	}
	if n := merchantCount(t, db); n != 1 {
		t.Errorf("%d merchants, want 1", n)
	}
}

func TestFirstStartMakesKeyFileAndCheck(t *testing.T) {
	db := filepath.Join(t.TempDir(), "medpay.db")
	createHospital(t, db)
	st, err := os.Stat(db + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	createHospital(t, db) // the same key opens it again
	if n := merchantCount(t, db); n != 2 {
		t.Errorf("%d merchants, want 2", n)
	}
}

// A database sealed before the key check existed: its values decide, and the check is stored.
func TestKeyCheckOnDatabaseWithoutCheck(t *testing.T) {
	db := filepath.Join(t.TempDir(), "medpay.db")
	createHospital(t, db)
	d, err := sqlstore.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.SQL().Exec(`DELETE FROM server_key_check`); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := runCLI(t, "merchant", "create", "--db", db, "--name", "B", "--city", "440300", "--server-key", strings.Repeat("cd", 32)); err == nil ||
		!strings.Contains(err.Error(), "does not open") {
		t.Fatalf("a wrong key was accepted on a database without a key check: %v", err)
	}
	createHospital(t, db)
}

func TestServerKeyRotate(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "medpay.db")
	first := strings.Fields(createHospital(t, db))
	second := strings.Fields(createHospital(t, db))
	oldKey, err := os.ReadFile(db + ".key")
	if err != nil {
		t.Fatal(err)
	}

	out := mustCLI(t, "server-key", "rotate", "--db", db)
	if !strings.Contains(out, "re-sealed 2 in merchants.api_key_enc") || !strings.Contains(out, db+".key") {
		t.Errorf("rotate printed %q", out)
	}
	newKey, err := os.ReadFile(db + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(oldKey, newKey) {
		t.Fatal("the key file did not change")
	}
	if _, err := os.Stat(db + ".key.new"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rotation left %s.key.new behind", db)
	}
	// The old key stops working; the new one opens every API key as it was.
	if err := serveRefused(t, "--db", db, "--server-key", strings.TrimSpace(string(oldKey))); !strings.Contains(err.Error(), "does not open") {
		t.Errorf("old key after rotation: %v", err)
	}
	store := openWithKey(t, db, strings.TrimSpace(string(newKey)))
	for _, c := range [][]string{first, second} {
		m, err := store.MerchantByMchID(t.Context(), c[0])
		if err != nil {
			t.Fatal(err)
		}
		if m.APIKey != c[1] {
			t.Errorf("merchant %s: API key changed by rotation", c[0])
		}
	}

	// Explicit keys: a wrong current key changes nothing.
	if _, err := runCLI(t, "server-key", "rotate", "--db", db, "--server-key", strings.TrimSpace(string(oldKey)), "--new-key", hexKey()); err == nil {
		t.Fatal("rotation with a wrong current key succeeded")
	}
	out = mustCLI(t, "server-key", "rotate", "--db", db, "--server-key", strings.TrimSpace(string(newKey)), "--new-key", hexKey())
	if !strings.Contains(out, "start the servers with the new key") {
		t.Errorf("rotate printed %q", out)
	}
	if _, err := runCLI(t, "merchant", "list", "--db", db); err != nil { // needs no key
		t.Fatal(err)
	}
	store = openWithKey(t, db, hexKey())
	if m, err := store.MerchantByMchID(t.Context(), first[0]); err != nil || m.APIKey != first[1] {
		t.Errorf("after the second rotation: %v", err)
	}
}

func openWithKey(t *testing.T, dsn, hexKey string) *sqlstore.Store {
	t.Helper()
	store, err := openStore(t.Context(), dsn, hexKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.DB().Close() })
	return store
}

// On PostgreSQL the key is always given; a wrong one is refused the same way, and rotation works.
func TestServerKeyPostgres(t *testing.T) {
	if os.Getenv(sqlstoretest.PostgresEnv) == "" {
		t.Skip(sqlstoretest.PostgresEnv + " not set")
	}
	dsn := sqlstoretest.DSN(t, sqlstore.Postgres)
	key := hexKey()
	if _, err := runCLI(t, "merchant", "create", "--db", dsn, "--name", "A", "--city", "440300"); err == nil || !strings.Contains(err.Error(), "required with PostgreSQL") {
		t.Fatalf("no key on PostgreSQL: %v", err)
	}
	c := strings.Fields(createHospital(t, dsn, "--server-key", key))
	if err := serveRefused(t, "--db", dsn, "--sandbox", "--server-key", strings.Repeat("ef", 32)); !strings.Contains(err.Error(), "does not open") {
		t.Errorf("wrong key: %v", err)
	}
	out := mustCLI(t, "server-key", "rotate", "--db", dsn, "--server-key", key)
	i := strings.LastIndex(strings.TrimSpace(out), "\n")
	newKey := strings.TrimSpace(out[i+1:])
	if _, err := secret.ParseKey(newKey); err != nil {
		t.Fatalf("rotate did not print a new key: %q", out)
	}
	if m, err := openWithKey(t, dsn, newKey).MerchantByMchID(t.Context(), c[0]); err != nil || m.APIKey != c[1] {
		t.Errorf("after rotation: %v", err)
	}
}
