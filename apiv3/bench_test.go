package apiv3_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/medpay/medpay/apiv3"
)

func BenchmarkSignRequest(b *testing.B) {
	g, merchant, _ := load(b)
	msg := []byte(g.RequestMessage)
	for b.Loop() {
		if _, err := apiv3.Sign(merchant, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyAnswer(b *testing.B) {
	_, _, platform := load(b)
	s := &apiv3.Signer{Key: platform, Serial: "PUB_KEY_ID_01"}
	body := []byte(`{"prepay_id":"wx26112221580621e9b071c00d9e093b0000"}`)
	h := http.Header{}
	s.SignHeaders(h, body)
	ctx := context.Background()
	for b.Loop() {
		// A fresh verifier each time: the same nonce would be a replay.
		v := &apiv3.AnswerVerifier{Key: &platform.PublicKey, KeyID: "PUB_KEY_ID_01"}
		if err := v.Verify(ctx, h, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCallbackParse(b *testing.B) {
	_, _, platform := load(b)
	key := []byte("0123456789abcdefghijklmnopqrstuv")
	s := &apiv3.Signer{Key: platform, Serial: "PUB_KEY_ID_01"}
	n, _ := apiv3.NewNotification(key, "EV", apiv3.EventTransactionSuccess, "支付成功", apiv3.OriginalTypeTransaction, time.Now(),
		[]byte(`{"out_trade_no":"T1","trade_state":"SUCCESS"}`))
	body, h, _ := s.BuildCallback(n)
	ctx := context.Background()
	for b.Loop() {
		v := &apiv3.AnswerVerifier{Key: &platform.PublicKey, KeyID: "PUB_KEY_ID_01"}
		if _, _, err := apiv3.ParseCallback(ctx, v, key, h, body); err != nil {
			b.Fatal(err)
		}
	}
}
