package http_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/medpay/medpay/internal/testenv"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsKeepSecrets runs a payment with every kind of secret and personal datum on the wire and
// checks that none reaches the logs, which still say what happened.
func TestLogsKeepSecrets(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	env := testenv.New(t, testenv.Options{Log: &logs})
	h := env.Hospital(t)
	token := env.Token(t, h)
	p := env.Bind(t, h, "log-payer", "440300", "bureau_timeout") // a scenario that logs warnings
	r := env.Call(t, "/payinsurance/unifiedorder", token, h.APIKey, testenv.OrderRequest(h, "log-payer",
		"pay_type", "2", "cash_fee", "0", "insurance_fee", "10000", "user_card_no", p.IDNo, "user_name", p.Name))
	ok(t, r)
	env.Confirm(t, r.Get("med_trans_id"), "123456")
	// The card number travels in full to the hospital; it must still stay out of the logs.
	ok(t, env.Call(t, "/payinsurance/getmedinfo", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "openid", "log-payer")))
	env.Call(t, "/payinsurance/queryorder", token, h.APIKey, testenv.Msg("appid", h.AppID, "mch_id", h.MchID, "med_trans_id", r.Get("med_trans_id")))
	env.Post(t, "/payinsurance/unifiedorder", token, signed(t, testenv.OrderRequest(h, "x"), "wrong-key-wrong-key-wrong-key-00"))

	out := logs.String()
	if !strings.Contains(out, `"endpoint":"unifiedorder"`) || !strings.Contains(out, "reversing") {
		t.Fatalf("logs do not tell the story:\n%s", out)
	}
	for name, secret := range map[string]string{"api key": h.APIKey, "app secret": h.Secret, "token": token,
		"ID number": p.IDNo, "card number": p.CardNo, "PIN": `"123456"`} {
		if strings.Contains(out, secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
}
