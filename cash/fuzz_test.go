package cash_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/medpay/medpay/apiv3"
	"github.com/medpay/medpay/sqlstore"
)

// FuzzSignedRequests sends correctly signed requests with arbitrary bodies and paths to the
// channel: every answer is signed and is a success or a 4XX, never a 5XX.
func FuzzSignedRequests(f *testing.F) {
	for _, seed := range []struct{ path, body string }{
		{apiv3.PathJSAPI, `{"appid":"wxapp","mchid":"M","description":"药","out_trade_no":"FUZZ-0001","notify_url":"http://127.0.0.1:9/n","amount":{"total":1},"payer":{"openid":"o"}}`},
		{apiv3.PathNative, `{"appid":"wxapp","mchid":"M","description":"药","out_trade_no":"FUZZ-0002","notify_url":"http://127.0.0.1:9/n","amount":{"total":-1}}`},
		{apiv3.PathRefunds, `{"out_trade_no":"FUZZ-0001","out_refund_no":"R1","amount":{"refund":1,"total":1,"currency":"CNY"}}`},
		{apiv3.PathByOutTrade + "FUZZ-0001/close", `{"mchid":"M"}`},
		{apiv3.PathJSAPI, `{"amount":{"total":1e400}}`},
		{apiv3.PathRefunds, `[]`},
	} {
		f.Add(seed.path, []byte(seed.body))
	}
	s := serveChannel(f, sqlstore.SQLite)
	mchid := []byte(`"mchid":"` + s.creds.MchID + `"`)
	f.Fuzz(func(t *testing.T, path string, body []byte) {
		body = bytes.ReplaceAll(body, []byte(`"mchid":"M"`), mchid)
		if len(path) == 0 || path[0] != '/' {
			path = "/" + path
		}
		req, err := http.NewRequest("POST", s.url+path, bytes.NewReader(body))
		if err != nil {
			return // not a URL at all
		}
		s.client.Authorize(req, body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %q answered %d", path, body, resp.StatusCode)
		}
	})
}
