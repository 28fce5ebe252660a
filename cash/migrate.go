package cash

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/medpay/medpay/sqlstore"
)

//go:embed migrations
var migrations embed.FS

// Migrate brings db to the channel's schema. The channel has a migration track of its own
// (version table cash_goose_db_version), so it runs alone on a database of its own (medpay cash
// serve) or beside the platform's schema on the platform's database (sandbox mode).
func Migrate(ctx context.Context, db *sqlstore.DB) error {
	sub, err := fs.Sub(migrations, "migrations/"+db.Dialect())
	if err != nil {
		return err
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true), goose.WithTableName("cash_goose_db_version")}
	dialect := goose.DialectSQLite3
	if db.Dialect() == sqlstore.Postgres {
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresTableLocker(lock.WithTableName("cash_goose_lock"))
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.SQL(), sub, opts...)
	if err != nil {
		return fmt.Errorf("cash migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("cash migrate: %w", err)
	}
	return nil
}
