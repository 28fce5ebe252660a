package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/internal/testenv"
	"github.com/medpay/medpay/wire"
)

// workedBill is the worked example of docs/api/bureau.md: 2500 class A, 2×1850 class B (10 %), 300 class C.
const workedBill = `{"med_type":"11","dept_name":"内科","acct_used":true,"items":[
{"code":"250101001","name":"血常规","class":"A","price":2500,"qty":1},
{"code":"86900011","name":"阿莫西林胶囊","class":"B","price":1850,"qty":2,"self_ratio_pct":10},
{"code":"X0001","name":"口罩","class":"C","price":300,"qty":1}]}`

// checkBooks asserts the ledger balances and agrees with the bureau's and the cash channel's own
// records for this payer: what the ledger says left the personal account left it at the bureau,
// what left the wallet left it at the cash channel, and the order's net movements match its state.
func checkBooks(t *testing.T, env *testenv.Env, medTransID string, p *bureau.Person, payer string) *medpay.Order {
	t.Helper()
	ctx := context.Background()
	total, err := env.Store.LedgerTotal(ctx)
	if err != nil || total != 0 {
		t.Fatalf("ledger total = %d, %v; want 0", total, err)
	}
	o, err := env.Store.OrderByID(ctx, medTransID)
	if err != nil {
		t.Fatal(err)
	}
	moves, err := env.Store.OrderLedger(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	hosp := medpay.HospitalAccount(o.MchID)
	if o.SubMchID != "" { // provider mode: the hospital is sub_mch_id
		hosp = medpay.HospitalAccount(o.SubMchID)
	}
	switch o.State {
	case medpay.StateSuccess:
		if moves[hosp] != o.CashFee+o.InsuranceFee {
			t.Errorf("hospital received %d, want %d", moves[hosp], o.CashFee+o.InsuranceFee)
		}
		if moves[medpay.BureauFundAccount(o.CityID)] != -o.HifpPay || moves[medpay.PayerWalletAccount(payer)] != -o.CashFee {
			t.Errorf("ledger moves %v do not match order %+v", moves, o)
		}
	default:
		if len(moves) != 0 {
			t.Errorf("order %s ended %s but the ledger moved %v", o.MedTransID, o.State, moves)
		}
	}
	if p != nil {
		moved, _ := env.Store.Balance(ctx, medpay.PersonalAccount(p.PsnNo))
		bal, err := env.Bureau.Balance(ctx, p.PsnNo)
		if err != nil {
			t.Fatal(err)
		}
		if bal != p.AcctBalance+moved {
			t.Errorf("bureau account %d, want initial %d + ledger %d", bal, p.AcctBalance, moved)
		}
	}
	moved, _ := env.Store.Balance(ctx, medpay.PayerWalletAccount(payer))
	wallet, err := env.Cash.Balance(ctx, payer)
	if err != nil {
		t.Fatal(err)
	}
	if wallet != 1_000_000+moved {
		t.Errorf("wallet %d, want 1000000 + ledger %d", wallet, moved)
	}
	return o
}

// outboxStates lists the notify_type/med_trade_state of the notifications queued for an order.
func outboxStates(t *testing.T, env *testenv.Env, orderID int64) []string {
	t.Helper()
	rows, err := env.DB.SQL().Query(`SELECT body FROM outbox WHERE order_id = $1 ORDER BY id`, orderID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var body string
		rows.Scan(&body)
		m, err := wire.Decode(stringsReader(body))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Get("notify_type")+"/"+m.Get("med_trade_state"))
	}
	return out
}

type payCase struct {
	scenario  string
	kv        []string
	wantPlace string // err_code, or "" for success
	wantState medpay.TradeState
	wantHifp  int64
	wantAcct  int64
	wantCash  int64
	notified  bool
	// declined: the payer's wallet declines the cash part, so the order stays NOTPAY, nothing
	// settled or paid, until it expires (wantState is then its state).
	declined bool
}

func TestPaymentScenarios(t *testing.T) {
	t.Parallel()
	bill := []string{"pay_type", "3", "total_fee", "6500", "cash_fee", "1000", "insurance_fee", "5500", "allow_fee_change", "1", "request_content", workedBill}
	cases := []payCase{
		// 深圳, level 3, employee: hifp 3207, the account pays the whole self part 3293.
		{scenario: "employee", kv: bill, wantState: medpay.StateSuccess, wantHifp: 3207, wantAcct: 3293, notified: true},
		{scenario: "retiree", kv: bill, wantState: medpay.StateSuccess, wantHifp: 3207, wantAcct: 3293, notified: true},
		{scenario: "acct_empty", kv: bill, wantState: medpay.StateSuccess, wantHifp: 3207, wantAcct: 0, wantCash: 3293, notified: true},
		{scenario: "suspended", kv: bill, wantPlace: medpay.ErrBureauRejected},
		{scenario: "bureau_timeout", kv: bill, wantState: medpay.StatePayError, wantHifp: 3207, wantAcct: 3293, notified: true},
		{scenario: "settle_lost", kv: bill, wantState: medpay.StateSuccess, wantHifp: 3207, wantAcct: 3293, notified: true},
		{scenario: "cash_declined", kv: []string{"pay_type", "3", "total_fee", "6500", "cash_fee", "1000", "insurance_fee", "5500",
			"allow_fee_change", "1", "request_content", `{"acct_used":false,"items":[{"code":"1","name":"诊疗","class":"A","price":6500,"qty":1}]}`},
			declined: true, wantState: medpay.StateClosed, wantHifp: 3575, wantCash: 2925},
		{scenario: "acct_empty", kv: []string{"pay_type", "2", "total_fee", "5000", "cash_fee", "0", "insurance_fee", "5000", "allow_fee_change", "0"},
			wantPlace: medpay.ErrFeeChanged},
	}
	for _, tc := range cases {
		t.Run(tc.scenario+"/"+tc.wantPlace, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{})
			h := env.Hospital(t)
			token := env.Token(t, h)
			p := env.Bind(t, h, "payer-"+tc.scenario, "440300", tc.scenario)
			payer := h.AppID + "/payer-" + tc.scenario
			r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "payer-"+tc.scenario, tc.kv...))
			if tc.wantPlace != "" {
				bizFail(t, r, tc.wantPlace)
				return
			}
			ok(t, r)
			id := r.Get("med_trans_id")
			if got := r.Get("insurance_fee"); got != itoa(tc.wantHifp+tc.wantAcct) {
				t.Fatalf("pre-settled insurance_fee %s, want %d", got, tc.wantHifp+tc.wantAcct)
			}
			code, out := env.Confirm(t, id, "123456")
			if tc.declined {
				if code != http.StatusPaymentRequired || out["med_trade_state"] != string(medpay.StateNotPay) {
					t.Fatalf("confirm of a declined payer: %d %v", code, out)
				}
				checkBooks(t, env, id, &p, payer)
				env.Clock.Advance(medpay.DefaultExpiry + time.Minute)
				token = env.Token(t, h) // the old one expired meanwhile
				if _, err := env.Pay.ExpireOnce(context.Background(), 10); err != nil {
					t.Fatal(err)
				}
				o, _ := env.Store.OrderByID(context.Background(), id)
				if q, err := env.Gateway.QueryPayment(context.Background(), o.CashTradeNo()); err != nil || q.State != medpay.CashClosed {
					t.Errorf("the expired order's cash prepay: %+v, %v", q, err)
				}
			} else if code != 200 || out["med_trade_state"] != string(tc.wantState) {
				t.Fatalf("confirm: %d %v", code, out)
			}
			o := checkBooks(t, env, id, &p, payer)
			if tc.wantState == medpay.StateSuccess && (o.HifpPay != tc.wantHifp || o.AcctPay != tc.wantAcct || o.CashFee != tc.wantCash) {
				t.Errorf("split hifp %d acct %d cash %d, want %d %d %d", o.HifpPay, o.AcctPay, o.CashFee, tc.wantHifp, tc.wantAcct, tc.wantCash)
			}
			if o.Step != medpay.StepDone {
				t.Errorf("step %q, want done", o.Step)
			}
			if got := outboxStates(t, env, o.ID); tc.notified && (len(got) != 1 || got[0] != "PAY/"+string(tc.wantState)) {
				t.Errorf("notifications %v, want one PAY/%s", got, tc.wantState)
			}
			q := env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", id))
			ok(t, q)
			if q.Get("med_trade_state") != string(tc.wantState) {
				t.Errorf("queryorder state %s", q.Get("med_trade_state"))
			}
			if tc.wantState == medpay.StateSuccess {
				var rc map[string]any
				if err := json.Unmarshal([]byte(q.Get("response_content")), &rc); err != nil || rc["setl_id"] == nil {
					t.Errorf("response_content %q: %v", q.Get("response_content"), err)
				}
				if q.Get("insurance_order_id") == "" || q.Get("time_end") == "" || q.Get("medical_card_id") != p.CardNo {
					t.Errorf("query fields: insurance_order_id %q time_end %q medical_card_id %q", q.Get("insurance_order_id"), q.Get("time_end"), q.Get("medical_card_id"))
				}
			}
			// The bureau keeps nothing of a failed order: a settle that timed out is revoked
			// (6401), a settlement whose cash leg failed has its insured part refunded (6203 HI;
			// the cash part stays on the bureau's books, so the order is refunded in part).
			wantOrd := map[string]int{"bureau_timeout": medpay.OrdRevoked, "cash_declined": medpay.OrdRevoked}[tc.scenario]
			if wantOrd != 0 {
				state, err := env.Bureau.OrderState(context.Background(), o.PayOrdID)
				if err != nil || state != wantOrd {
					t.Errorf("bureau order state %d, %v; want %d", state, err, wantOrd)
				}
			}
		})
	}
}

func TestPreSettlementErrors(t *testing.T) {
	env, h, token := setup(t)
	place := func(openid string, kv ...string) *wire.Message {
		return env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, openid,
			append([]string{"pay_type", "2", "cash_fee", "0", "insurance_fee", "10000", "allow_fee_change", "1"}, kv...)...))
	}
	bizFail(t, place("nobody"), medpay.ErrNoCard)
	p := env.Bind(t, h, "bound", "440300", "employee")
	bizFail(t, place("bound", "user_card_no", "110101199001011237"), medpay.ErrIdentityMismatch)
	bizFail(t, place("bound", "user_name", "某某"), medpay.ErrIdentityMismatch)
	ok(t, place("bound", "user_card_no", p.IDNo, "user_name", p.Name, "user_card_type", "1"))
}

func TestWrongPINBlocksAfterFive(t *testing.T) {
	env, h, token := setup(t)
	place := func() string {
		r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "pin-payer"))
		ok(t, r)
		return r.Get("med_trans_id")
	}
	// Five wrong PINs in a row over the payer's orders (at most three on one order).
	ids := []string{place(), place()}
	for i := 1; i <= 5; i++ {
		code, out := env.Confirm(t, ids[(i-1)/3], "000000")
		if code != 403 {
			t.Fatalf("attempt %d: %d %v", i, code, out)
		}
		// What is left is the smaller of the payer's and the order's attempts.
		if want := min(5-i, 3-(i-1)%3-1); want > 0 && out["remaining"] != float64(want) {
			t.Fatalf("attempt %d: remaining %v, want %d", i, out["remaining"], want)
		}
	}
	later := place()
	if code, out := env.Confirm(t, later, "123456"); code != 403 || out["blocked_until"] == nil {
		t.Fatalf("right PIN while blocked: %d %v", code, out)
	}
	env.Clock.Advance(15*60*1e9 + 1)
	if code, out := env.Confirm(t, later, "123456"); code != 200 || out["med_trade_state"] != "SUCCESS" {
		t.Fatalf("after the block: %d %v", code, out)
	}
	// The order with three wrong PINs stays locked until it expires.
	if code, out := env.Confirm(t, ids[0], "123456"); code != 403 || out["blocked_until"] == nil {
		t.Fatalf("right PIN on a locked order: %d %v", code, out)
	}
}

// TestClosedOrderRevokedAtBureau: closing an unpaid insured order revokes its upload (6401), so
// that the bureau holds nothing open for it and refuses a settle.
func TestClosedOrderRevokedAtBureau(t *testing.T) {
	env, h, token := setup(t)
	env.Bind(t, h, "close-1", "440300", "employee")
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "close-1",
		"pay_type", "2", "cash_fee", "0", "insurance_fee", "10000", "allow_fee_change", "1"))
	ok(t, r)
	ok(t, env.Call(t, "/payinsurance/closeorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", r.Get("med_trans_id"))))
	o, err := env.Store.OrderByID(context.Background(), r.Get("med_trans_id"))
	if err != nil || o.PayOrdID == "" {
		t.Fatalf("order %+v, %v", o, err)
	}
	if s, err := env.Bureau.OrderState(context.Background(), o.PayOrdID); err != nil || s != medpay.OrdRevoked {
		t.Fatalf("bureau order state %d, %v; want revoked", s, err)
	}
}
