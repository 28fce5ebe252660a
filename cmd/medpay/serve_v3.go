package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/medins"
	"github.com/medpay/medpay/reconcile"
	"github.com/medpay/medpay/sqlstore"
)

// newV3 is 医保 2.0 (/v3/): it settles hospitals' uploads as their channel, which the in-process
// bureau allows; against a bureau on the network the orders are refused until that bureau
// accepts the platform as a channel (docs/decisions.md).
func newV3(ctx context.Context, store *sqlstore.Store, sim *bureau.Simulator, wallet medpay.CashChannel, baseURL string,
	sandbox bool, kick func(), logger *slog.Logger, now func() time.Time) (*medins.Handler, error) {
	bureauFor := func(ctx context.Context, orgCodg string) (medpay.Bureau, error) {
		if sim == nil {
			return nil, errors.New("医保 2.0 needs the in-process bureau")
		}
		return sim.ForOrg(ctx, orgCodg)
	}
	return medins.New(ctx, medins.Config{Store: store, Bureau: bureauFor, Cash: wallet, BaseURL: baseURL,
		Sandbox: sandbox, Notify: kick, Logger: logger, Now: now})
}

// v3Journals lets reconciliation read the journals of hospitals' institutions at the in-process
// bureau, where their 2.0 orders are settled.
func v3Journals(sim *bureau.Simulator) reconcile.ForOrg {
	return func(ctx context.Context, orgCodg string) (medpay.Bureau, error) {
		if sim == nil {
			return nil, errors.New("reconciling 医保 2.0 orders needs the in-process bureau")
		}
		return sim.ForOrg(ctx, orgCodg)
	}
}

// recoverV3 carries on 医保 2.0 payments left mid-way and closes expired unpaid ones.
func recoverV3(ctx context.Context, v3 *medins.Handler, logger *slog.Logger) {
	if n, err := v3.Recover(ctx, time.Now().Add(-recoverAfter), 100); err != nil {
		logger.Error("v3 recovery", "err", err)
	} else if n > 0 {
		logger.Info("v3 orders recovered or expired", "count", n)
	}
}
