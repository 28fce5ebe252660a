package http

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
)

// routes lists every route of the platform.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	// Open API (docs/api).
	mux.HandleFunc("GET /cgi-bin/token", s.cgiToken)
	mux.HandleFunc("GET /payinsurance/gettoken", s.providerToken)
	mux.HandleFunc("GET /cgi-bin/getcallbackip", s.callbackIP)
	mux.Handle("/payinsurance/unifiedorder", s.api("unifiedorder", s.unifiedOrder, apiOpts{claimInWrite: true}))
	mux.Handle("/payinsurance/queryorder", s.api("queryorder", s.queryOrder, apiOpts{}))
	mux.Handle("/payinsurance/orderquery", s.api("queryorder", s.queryOrder, apiOpts{}))
	mux.Handle("/payinsurance/closeorder", s.api("closeorder", s.closeOrder, apiOpts{}))
	mux.Handle("/payinsurance/micropay", s.api("micropay", s.micropay, apiOpts{}))
	mux.Handle("/payinsurance/getmedinfo", s.api("getmedinfo", s.getMedInfo, apiOpts{minimal: true}))
	mux.Handle("/payinsurance/getbindurl", s.api("getbindurl", s.getBindURL, apiOpts{minimal: true}))
	mux.Handle("/payinsurance/refund", s.api("refund", s.refund, apiOpts{claimInWrite: true}))
	mux.Handle("/payinsurance/queryrefund", s.api("queryrefund", s.queryRefund, apiOpts{}))
	mux.Handle("/payinsurance/refundquery", s.api("queryrefund", s.queryRefund, apiOpts{}))
	mux.Handle("/payinsurance/billdownload", s.apiRaw("billdownload", s.billDownload))

	// 医保 2.0 over APIv3 (v3.md), with its cashier.
	if s.v3 != nil {
		mux.Handle("/v3/", s.v3)
		if s.cfg.Sandbox {
			mux.Handle("/sandbox/v3/", s.v3)
		}
	}

	// Payer pages (docs/api/sandbox.md), protected against cross-origin form posts.
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

	// Sandbox helper API (docs/api/sandbox.md (沙箱辅助接口)).
	if s.cfg.Sandbox {
		mux.HandleFunc("GET /sandbox/persons", s.sandboxPersons)
		mux.HandleFunc("POST /sandbox/bindings", s.sandboxBind)
		mux.HandleFunc("POST /sandbox/orders/{id}/confirm", s.sandboxConfirm)
		mux.HandleFunc("POST /sandbox/paycode", s.sandboxPayCode)
		mux.Handle("GET /me/code", pageHeadersCSP(codePageCSP, http.HandlerFunc(s.payCodePage))) // the payer's payment code (刷码付)
		// The simulated cash channel over APIv3 (docs/cash.md).
		if s.cashAPI != nil {
			mux.Handle("/cash/", http.StripPrefix("/cash", s.cashAPI))
		}
	}

	// The landing page, the API reference it links to, the pages' scripts.
	mux.Handle("GET /{$}", pageHeaders(http.HandlerFunc(s.home)))
	mux.HandleFunc("GET /docs/api/{name}", s.apiDoc)
	mux.HandleFunc("GET /assets/{name}", s.assets)
	// Onboarding, the hospital portal and the operator console (console_web.go, apply.go,
	// portal.go, console.go), every form protected against cross-origin posts.
	web := http.NewServeMux()
	web.HandleFunc("GET /console/console.css", s.consoleStyle)
	web.HandleFunc("GET /apply", s.applyPage)
	web.HandleFunc("POST /apply", s.applySubmit)
	web.HandleFunc("GET /portal/login", s.portalLoginPage)
	web.HandleFunc("POST /portal/login", s.portalLogin)
	web.HandleFunc("POST /portal/logout", s.portalLogout)
	web.HandleFunc("GET /portal/invite/{token}", s.invitePage)
	web.HandleFunc("POST /portal/invite/{token}", s.inviteAccept)
	web.HandleFunc("GET /portal/totp", s.portalTOTP)
	web.HandleFunc("POST /portal/totp", s.portalTOTP)
	web.HandleFunc("GET /portal/{$}", s.requireStaff(s.portalHome, false))
	web.HandleFunc("POST /portal/credentials", s.requireStaff(s.portalRevealCredentials, true))
	web.HandleFunc("POST /portal/keys/rotate", s.requireStaff(s.portalRotate, true))
	web.HandleFunc("GET /portal/settings", s.requireStaff(s.portalSettings, false))
	web.HandleFunc("POST /portal/settings/refund-ips", s.requireStaff(s.portalSetRefundIPs, true))
	web.HandleFunc("POST /portal/settings/notify-test", s.requireStaff(s.portalNotifyTest, false))
	web.HandleFunc("GET /portal/orders", s.requireStaff(s.portalOrders, false))
	web.HandleFunc("GET /portal/orders/{id}", s.requireStaff(s.portalOrder, false))
	web.HandleFunc("POST /portal/notifications/{id}/resend", s.requireStaff(s.portalResend, false))
	web.HandleFunc("GET /portal/refunds", s.requireStaff(s.portalRefunds, false))
	web.HandleFunc("GET /portal/bills", s.requireStaff(s.portalBills, false))
	web.HandleFunc("GET /portal/reconcile", s.requireStaff(s.portalReconcile, false))
	web.HandleFunc("GET /portal/staff", s.requireStaff(s.portalStaff, false))
	web.HandleFunc("POST /portal/staff/invite", s.requireStaff(s.portalInvite, true))
	web.HandleFunc("POST /portal/providers", s.requireStaff(s.portalProvider, true))
	web.HandleFunc("GET /console/login", s.consoleLoginPage)
	web.HandleFunc("POST /console/login", s.consoleLogin)
	web.HandleFunc("POST /console/logout", s.consoleLogout)
	web.HandleFunc("GET /console/totp", s.consoleTOTP)
	web.HandleFunc("POST /console/totp", s.consoleTOTP)
	web.HandleFunc("GET /console/{$}", s.requireOperator(s.consoleDashboard))
	web.HandleFunc("GET /console/applications", s.requireOperator(s.consoleApplications))
	web.HandleFunc("GET /console/applications/{id}", s.requireOperator(s.consoleApplication))
	web.HandleFunc("GET /console/applications/{id}/evidence", s.requireOperator(s.consoleEvidence, medpay.RoleAdmin, medpay.RoleReviewer))
	web.HandleFunc("POST /console/applications/{id}/approve", s.requireOperator(s.consoleApprove, medpay.RoleAdmin, medpay.RoleReviewer))
	web.HandleFunc("POST /console/applications/{id}/reject", s.requireOperator(s.consoleReject, medpay.RoleAdmin, medpay.RoleReviewer))
	web.HandleFunc("GET /console/merchants", s.requireOperator(s.consoleMerchants))
	web.HandleFunc("POST /console/merchants/{id}/suspend", s.requireOperator(s.consoleSuspend, medpay.RoleAdmin))
	web.HandleFunc("POST /console/merchants/{id}/cities", s.requireOperator(s.consoleCities, medpay.RoleAdmin))
	web.HandleFunc("GET /console/orders", s.requireOperator(s.consoleOrders))
	web.HandleFunc("GET /console/orders/{id}", s.requireOperator(s.consoleOrder))
	web.HandleFunc("GET /console/notifications", s.requireOperator(s.consoleNotifications))
	web.HandleFunc("POST /console/notifications/resend", s.requireOperator(s.consoleResend, medpay.RoleAdmin))
	web.HandleFunc("POST /console/notifications/{id}/resend", s.requireOperator(s.consoleResendOne, medpay.RoleAdmin))
	web.HandleFunc("GET /console/reconcile", s.requireOperator(s.consoleReconcile))
	web.HandleFunc("GET /console/policies", s.requireOperator(s.consolePolicies))
	web.HandleFunc("GET /console/audit", s.requireOperator(s.consoleAudit, medpay.RoleAdmin, medpay.RoleReviewer))
	webProtected := http.NewCrossOriginProtection().Handler(web)
	mux.Handle("/apply", webProtected)
	mux.Handle("/portal/", webProtected)
	mux.Handle("/console/", webProtected)

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
func pageHeaders(next http.Handler) http.Handler { return pageHeadersCSP(pageCSP, next) }

// codePageCSP lets the payment code page run its countdown, a script of /assets (none inline).
const codePageCSP = pageCSP + "; script-src 'self'"

func pageHeadersCSP(csp string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// maxBody bounds every request body; the open API's own limit (64 KiB) is enforced by the decoder
// so that it can answer in XML.
const maxBody = 1 << 20

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := int64(maxBody)
		if r.URL.Path == "/apply" {
			limit = MaxEvidence + 1<<20 // the consent document and the form
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
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
