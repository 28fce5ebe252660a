package http_test

import (
	"context"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/internal/testenv"
)

// TestLocalCashRecoversLostUpdate: the channel the platform serves itself (reached by Go calls,
// cash.Local) committed the payer's payment, and the platform's update was lost: the process died
// between the channel's commit and its own, before any report. Recovery finds the payment by
// query, finishes the order once, books it and queues its notification.
func TestLocalCashRecoversLostUpdate(t *testing.T) {
	t.Parallel()
	if testenv.RemoteCash() {
		t.Skip("the in-process channel only; a channel across the network is recovered the same way, by its verified query")
	}
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	h := env.Hospital(t)
	token := env.Token(t, h)
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "lost-update"))
	ok(t, r)
	id := r.Get("med_trans_id")

	o, p, err := env.Pay.PrepayCash(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	local, isLocal := env.Gateway.(*cash.Local)
	if !isLocal {
		t.Fatalf("the sandbox's gateway is %T, want *cash.Local", env.Gateway)
	}
	// The channel pays and commits; its answer dies with the process (Local.SandboxPay reports
	// nothing to OnPaid: its caller is the one meant to record the answer).
	paid, err := local.SandboxPay(ctx, p.PrepayID, cash.DefaultPIN)
	if err != nil || !paid.Paid() || paid.Amount != o.CashFee {
		t.Fatalf("the channel's payment: %+v, %v", paid, err)
	}
	if o, err = env.Store.OrderByID(ctx, id); err != nil || o.State != medpay.StateNotPay || o.Step != medpay.StepCashPay {
		t.Fatalf("before recovery: %+v, %v", o, err)
	}

	// Recovery as at start (every order waiting at the cashier), then again: the payment is
	// recorded once.
	for range 2 {
		if _, err := env.Pay.RecoverOnce(ctx, env.Clock.Now().Add(time.Hour), 100); err != nil {
			t.Fatal(err)
		}
	}
	o = checkBooks(t, env, id, nil, h.AppID+"/lost-update")
	if o.State != medpay.StateSuccess || o.CashStatus != medpay.LegSuccess || o.CashOrderID != paid.TransactionID {
		t.Fatalf("after recovery: %s, cash leg %s, cash order %q (the channel's %q)", o.State, o.CashStatus, o.CashOrderID, paid.TransactionID)
	}
	if got := outboxStates(t, env, o.ID); len(got) != 1 || got[0] != "PAY/SUCCESS" {
		t.Fatalf("notifications queued: %v, want one PAY/SUCCESS", got)
	}
}
