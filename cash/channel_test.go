package cash_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// served is a channel on its own database behind an HTTP server, with one merchant's APIv3 client.
type served struct {
	db     *sqlstore.DB
	box    *secret.Box
	ch     *cash.Channel
	url    string
	client *apiv3.Client
	creds  *cash.MerchantCredentials
}

func serveChannel(t testing.TB, engine string) *served {
	t.Helper()
	db := sqlstoretest.Open(t, engine)
	key := make([]byte, 32)
	rand.Read(key)
	box, err := secret.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	s := &served{db: db, box: box}
	s.start(t)
	if s.creds, err = s.ch.CreateMerchant(context.Background(), "", nil); err != nil {
		t.Fatal(err)
	}
	priv, _ := apiv3.ParsePrivateKey([]byte(s.creds.MerchantPrivateKey))
	pub, _ := apiv3.ParsePublicKey([]byte(s.creds.PlatformPublicKey))
	s.client = &apiv3.Client{BaseURL: s.url, MchID: s.creds.MchID, SerialNo: s.creds.MerchantSerialNo, Key: priv,
		Verifier: &apiv3.AnswerVerifier{Key: pub, KeyID: s.creds.PlatformPublicKeyID}}
	return s
}

// start (re)starts the channel on the database: a new process as far as the channel can tell.
func (s *served) start(t testing.TB) {
	ch, err := cash.NewChannel(context.Background(), s.db, s.box, cash.Options{AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ch.Handler())
	t.Cleanup(srv.Close)
	s.ch, s.url = ch, srv.URL
	if s.client != nil {
		s.client.BaseURL = srv.URL
	}
}

func (s *served) prepay(t *testing.T, outTradeNo string, fen int64) string {
	t.Helper()
	var ans apiv3.PrepayAnswer
	err := s.client.Do(context.Background(), "POST", apiv3.PathJSAPI, &apiv3.PrepayRequest{AppID: "wxapp", MchID: s.creds.MchID,
		Description: "药费", OutTradeNo: outTradeNo, NotifyURL: "http://127.0.0.1:9/notify", Amount: apiv3.Amount{Total: fen},
		Payer: &apiv3.Payer{OpenID: "o-" + outTradeNo}}, &ans)
	if err != nil {
		t.Fatal(err)
	}
	return ans.PrepayID
}

func (s *served) post(t *testing.T, path string, in any) (int, map[string]any) {
	body, _ := json.Marshal(in)
	resp, err := http.Post(s.url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func count(t *testing.T, db *sqlstore.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.SQL().QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConcurrentPaymentsPayOnce(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := serveChannel(t, engine)
			prepayID := s.prepay(t, "RACE-PAY-01", 700)
			var wg sync.WaitGroup
			ids := make([]any, 8)
			for i := range ids {
				wg.Go(func() {
					status, out := s.post(t, "/sandbox/pay", map[string]string{"prepay_id": prepayID, "pin": cash.DefaultPIN})
					if status != 200 {
						t.Errorf("payment %d: %d %v", i, status, out)
						return
					}
					ids[i] = out["transaction_id"]
				})
			}
			wg.Wait()
			for _, id := range ids[1:] {
				if id != ids[0] {
					t.Fatalf("transaction ids %v", ids)
				}
			}
			if b, _ := s.ch.Wallet().Balance(context.Background(), "wxapp/o-RACE-PAY-01"); b != cash.DefaultBalance-700 {
				t.Fatalf("balance %d after one payment of 700", b)
			}
			if n := count(t, s.db, `SELECT COUNT(*) FROM cash_callbacks WHERE event_type = 'TRANSACTION.SUCCESS'`); n != 1 {
				t.Fatalf("%d payment callbacks", n)
			}
		})
	}
}

func TestConcurrentRefundsNeverExceedThePayment(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := serveChannel(t, engine)
			prepayID := s.prepay(t, "RACE-REF-01", 1000)
			if status, out := s.post(t, "/sandbox/pay", map[string]string{"prepay_id": prepayID, "pin": cash.DefaultPIN}); status != 200 {
				t.Fatalf("pay: %d %v", status, out)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok, refused := 0, 0
			for i := range 10 {
				wg.Go(func() {
					var r apiv3.Refund
					err := s.client.Do(context.Background(), "POST", apiv3.PathRefunds, &apiv3.RefundRequest{OutTradeNo: "RACE-REF-01",
						OutRefundNo: fmt.Sprintf("RACE-REF-01-%d", i), Amount: apiv3.RefundRequestAmount{Refund: 300, Total: 1000, Currency: "CNY"}}, &r)
					var apiErr *apiv3.Error
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && r.Status == apiv3.RefundSuccess:
						ok++
					case errors.As(err, &apiErr) && apiErr.Code == apiv3.CodeInvalidRequest:
						refused++
					default:
						t.Errorf("refund %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			if ok != 3 || refused != 7 {
				t.Fatalf("%d refunds made, %d refused; want 3 and 7", ok, refused)
			}
			if b, _ := s.ch.Wallet().Balance(context.Background(), "wxapp/o-RACE-REF-01"); b != cash.DefaultBalance-100 {
				t.Fatalf("balance %d, want %d", b, cash.DefaultBalance-100)
			}
			if n := count(t, s.db, `SELECT refunded FROM cash_trades WHERE out_trade_no = 'RACE-REF-01'`); n != 900 {
				t.Fatalf("refunded %d", n)
			}
		})
	}
}

// recorder keeps the last request and its body.
type recorder struct {
	req  *http.Request
	body []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.body, _ = io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(r.body))
	r.req = req.Clone(context.Background())
	return http.DefaultTransport.RoundTrip(req)
}

func TestReplayRefusedAfterRestart(t *testing.T) {
	t.Parallel()
	s := serveChannel(t, sqlstore.SQLite)
	rec := &recorder{}
	s.client.HTTP = &http.Client{Transport: rec}
	s.prepay(t, "REPLAY-0001", 100)
	s.start(t) // a new process on the same database
	replay, _ := http.NewRequest("POST", s.url+rec.req.URL.Path, bytes.NewReader(rec.body))
	replay.Header = rec.req.Header.Clone()
	resp, err := http.DefaultClient.Do(replay)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("request replayed after a restart answered %d", resp.StatusCode)
	}
}

func TestConcurrentRepeatsOfOneRefund(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := serveChannel(t, engine)
			prepayID := s.prepay(t, "RACE-REP-01", 1000)
			if status, out := s.post(t, "/sandbox/pay", map[string]string{"prepay_id": prepayID, "pin": cash.DefaultPIN}); status != 200 {
				t.Fatalf("pay: %d %v", status, out)
			}
			var wg sync.WaitGroup
			ids := make([]string, 6)
			for i := range ids {
				wg.Go(func() {
					var r apiv3.Refund
					err := s.client.Do(context.Background(), "POST", apiv3.PathRefunds, &apiv3.RefundRequest{OutTradeNo: "RACE-REP-01",
						OutRefundNo: "RACE-REP-01-R", Amount: apiv3.RefundRequestAmount{Refund: 400, Total: 1000, Currency: "CNY"}}, &r)
					if err != nil {
						t.Errorf("refund %d: %v", i, err)
					}
					ids[i] = r.RefundID
				})
			}
			wg.Wait()
			for _, id := range ids[1:] {
				if id != ids[0] || id == "" {
					t.Fatalf("refund ids %v", ids)
				}
			}
			if b, _ := s.ch.Wallet().Balance(context.Background(), "wxapp/o-RACE-REP-01"); b != cash.DefaultBalance-600 {
				t.Fatalf("balance %d: the refund was not made exactly once", b)
			}
		})
	}
}

func TestRefundByTransactionID(t *testing.T) {
	t.Parallel()
	s := serveChannel(t, sqlstore.SQLite)
	ctx := context.Background()
	prepayID := s.prepay(t, "BY-TXID-01", 500)
	status, out := s.post(t, "/sandbox/pay", map[string]string{"prepay_id": prepayID, "pin": cash.DefaultPIN})
	if status != 200 {
		t.Fatalf("pay: %d %v", status, out)
	}
	txID := out["transaction_id"].(string)
	var r apiv3.Refund
	err := s.client.Do(ctx, "POST", apiv3.PathRefunds, &apiv3.RefundRequest{TransactionID: txID, OutRefundNo: "BY-TXID-R1",
		Amount: apiv3.RefundRequestAmount{Refund: 200, Total: 500, Currency: "CNY"}}, &r)
	if err != nil || r.OutTradeNo != "BY-TXID-01" || r.TransactionID != txID || r.Amount.Refund != 200 {
		t.Fatalf("refund by transaction_id: %+v, %v", r, err)
	}
	// Both numbers given must name the same order.
	var apiErr *apiv3.Error
	err = s.client.Do(ctx, "POST", apiv3.PathRefunds, &apiv3.RefundRequest{TransactionID: txID, OutTradeNo: "OTHER-0001",
		OutRefundNo: "BY-TXID-R2", Amount: apiv3.RefundRequestAmount{Refund: 1, Total: 500, Currency: "CNY"}}, nil)
	if !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("mismatched numbers: %v", err)
	}
	// The total must be the order's.
	err = s.client.Do(ctx, "POST", apiv3.PathRefunds, &apiv3.RefundRequest{OutTradeNo: "BY-TXID-01",
		OutRefundNo: "BY-TXID-R3", Amount: apiv3.RefundRequestAmount{Refund: 1, Total: 499, Currency: "CNY"}}, nil)
	if !errors.As(err, &apiErr) || apiErr.Code != apiv3.CodeParamError || apiErr.Detail.Field != "amount.total" {
		t.Fatalf("wrong total: %v", err)
	}
	// An unpaid order cannot be refunded.
	s.prepay(t, "UNPAID-0001", 300)
	err = s.client.Do(ctx, "POST", apiv3.PathRefunds, &apiv3.RefundRequest{OutTradeNo: "UNPAID-0001",
		OutRefundNo: "UNPAID-R1", Amount: apiv3.RefundRequestAmount{Refund: 1, Total: 300, Currency: "CNY"}}, nil)
	if !errors.As(err, &apiErr) || apiErr.Code != apiv3.CodeInvalidRequest {
		t.Fatalf("refund of an unpaid order: %v", err)
	}
}
