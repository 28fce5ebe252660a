package http

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/medpay/medpay/secret"
)

// routes lists every route of the platform.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	// Open API (wire-api.md).
	mux.HandleFunc("GET /cgi-bin/token", s.cgiToken)
	mux.HandleFunc("GET /payinsurance/gettoken", s.providerToken)
	mux.HandleFunc("GET /cgi-bin/getcallbackip", s.callbackIP)
	mux.Handle("/payinsurance/unifiedorder", s.api("unifiedorder", s.unifiedOrder, apiOpts{}))
	mux.Handle("/payinsurance/queryorder", s.api("queryorder", s.queryOrder, apiOpts{}))
	mux.Handle("/payinsurance/orderquery", s.api("queryorder", s.queryOrder, apiOpts{}))
	mux.Handle("/payinsurance/closeorder", s.api("closeorder", s.closeOrder, apiOpts{}))
	mux.Handle("/payinsurance/micropay", s.api("micropay", s.micropay, apiOpts{}))
	mux.Handle("/payinsurance/getmedinfo", s.api("getmedinfo", s.getMedInfo, apiOpts{minimal: true}))
	mux.Handle("/payinsurance/getbindurl", s.api("getbindurl", s.getBindURL, apiOpts{minimal: true}))
	mux.Handle("/payinsurance/refund", s.api("refund", s.refund, apiOpts{}))
	mux.Handle("/payinsurance/queryrefund", s.api("queryrefund", s.queryRefund, apiOpts{}))
	mux.Handle("/payinsurance/refundquery", s.api("queryrefund", s.queryRefund, apiOpts{}))
	mux.Handle("/payinsurance/billdownload", s.apiRaw("billdownload", s.billDownload))

	// Payer pages (sandbox.md §2), protected against cross-origin form posts.
	pages := http.NewServeMux()
	pages.HandleFunc("GET /pay/{id}", s.payPage)
	pages.HandleFunc("POST /pay/{id}", s.payConfirm)
	pages.HandleFunc("GET /pay/{id}/qr.png", s.payQR)
	if s.payment.Gateway != nil {
		pages.HandleFunc("GET /pay/{id}/authorize", s.payAuthorize)
		pages.HandleFunc("GET /pay/{id}/authorized", s.payAuthorized)
		pages.HandleFunc("GET /pay/{id}/paid", s.payPaid)
		mux.HandleFunc("POST /notify/cash", s.cashNotify)
	}
	pages.HandleFunc("GET /bind/{token}", s.bindPage)
	pages.HandleFunc("POST /bind/{token}", s.bindSubmit)
	pages.HandleFunc("GET /bind/{token}/authorized", s.bindAuthorized)
	pages.HandleFunc("GET /me/cards", s.cardsPage) // sandbox: ?appid&openid; always: ?t=<bind link token>
	pages.HandleFunc("POST /me/cards", s.cardsUnbind)
	protected := pageHeaders(http.NewCrossOriginProtection().Handler(pages))
	mux.Handle("/pay/", protected)
	mux.Handle("/bind/", protected)
	mux.Handle("/me/", protected)

	// Sandbox helper API (sandbox.md §3).
	if s.cfg.Sandbox {
		mux.HandleFunc("GET /sandbox/persons", s.sandboxPersons)
		mux.HandleFunc("POST /sandbox/bindings", s.sandboxBind)
		mux.HandleFunc("POST /sandbox/orders/{id}/confirm", s.sandboxConfirm)
		mux.HandleFunc("POST /sandbox/paycode", s.sandboxPayCode)
		mux.Handle("GET /me/code", pageHeaders(http.HandlerFunc(s.payCodePage))) // the payer's payment code (刷码付)
		// The simulated cash channel over APIv3 (docs/cash.md).
		if s.cashAPI != nil {
			mux.Handle("/cash/", http.StripPrefix("/cash", s.cashAPI))
		}
	}

	// Operations.
	mux.HandleFunc("GET /healthz", s.health)
	if !s.cfg.MetricsElsewhere {
		mux.Handle("GET /metrics", s.MetricsHandler())
	}

	return s.withRequestID(limitBody(mux))
}

// pageCSP lets the payer pages load nothing but their own images (and data: QR codes) and
// inline styles; no script runs, and no other site may frame them.
const pageCSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"

// pageHeaders adds the payer pages' security headers. Their URLs carry order ids and single-use
// tokens, so no Referer leaves them.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// maxBody bounds every request body; the open API's own limit (64 KiB) is enforced by the decoder
// so that it can answer in XML.
const maxBody = 1 << 20

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

type ridKey struct{}

// withRequestID gives every request an id, sent back as X-Request-Id and used as rid.
func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := strconv.FormatInt(time.Now().UnixMilli(), 36) + "-" + secret.RandomString(10, "abcdefghijklmnopqrstuvwxyz0123456789")
		w.Header().Set("X-Request-Id", rid)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ridKey{}, rid)))
	})
}

func requestID(ctx context.Context) string {
	rid, _ := ctx.Value(ridKey{}).(string)
	return rid
}

func itoa(n int) string { return strconv.Itoa(n) }
