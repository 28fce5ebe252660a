package payment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/secret"
	"github.com/medpay/medpay/sqlstore"
)

// 刷码付 (micropay, docs/api/orders.md (micropay)): the institution scans the payer's payment code and the
// platform places the order and settles it at once, with the same saga as the payer's PIN
// confirmation. Above the no-PIN limit the order waits for the payer to confirm with the PIN.

// Payment codes (auth_code).
const (
	PayCodeTTL = 60 * time.Second
	// payCodePrefix starts every code, the way WeChat Pay's codes start with 10–15, so that a
	// cashier's scanner can tell a medpay code from a bank card or another wallet's code.
	payCodePrefix = "28"
	payCodeLen    = 18
)

// DefaultNoPINLimit is the amount (fen) up to which a micropay needs no PIN: 1 000 元.
const DefaultNoPINLimit int64 = 100_000

// StepScanned is the recovery point of a micropay order that no saga step has started: the
// payer's code was scanned and the order placed; it is paid by PayNow (within the no-PIN limit)
// or by the payer's PIN confirmation (Confirm), or closes at time_expire or by closeorder. The
// order's state is NOTPAY, so expiry, closing and the payment page treat it as any unpaid order;
// the open API reports it as USERPAYING (ReportedState), since for the hospital the payment has
// begun. Recovery does not touch it: nothing outside has been asked.
const StepScanned = medpay.StepScanned

// ReportedState is the med_trade_state the open API reports for o.
func ReportedState(o *medpay.Order) medpay.TradeState {
	if o.State == medpay.StateNotPay && o.Step == StepScanned {
		return medpay.StateUserPaying
	}
	return o.State
}

// IssuePayCode issues a payment code to the payer (appid, openid): 18 digits, valid PayCodeTTL,
// good for one order. Only its hash is stored.
func (s *Service) IssuePayCode(ctx context.Context, appid, openid string) (code string, expires time.Time, err error) {
	if appid == "" || openid == "" {
		return "", time.Time{}, errors.New("payment code: empty appid or openid")
	}
	now := s.now()
	for range 3 { // a clash with a stored code is next to impossible; draw again
		code = payCodePrefix + secret.RandomString(payCodeLen-len(payCodePrefix), "0123456789")
		c := &sqlstore.PayCode{AppID: appid, OpenID: openid, CreatedAt: now, ExpiresAt: now.Add(PayCodeTTL)}
		err = s.Store.CreatePayCode(ctx, secret.Hash(code), c)
		if !errors.Is(err, medpay.ErrConflict) {
			break
		}
	}
	if err != nil {
		return "", time.Time{}, err
	}
	return code, now.Add(PayCodeTTL), nil
}

// MicropayRequest is a validated micropay request: the fields of unifiedorder without notify_url
// and return_url, the scanned auth_code, and the payer field of the mode.
type MicropayRequest struct {
	PlaceRequest
	AuthCode string
	// PayerField names the payer in Fields: "openid" (independent mode) or "sub_openid"
	// (service-provider mode). It may be absent from the request: the code names the payer.
	PayerField string
	// NoPINLimit is the amount (fen, cash + insurance after pre-settlement) up to which the order
	// is settled at once; above it the payer confirms with the PIN. 0 means DefaultNoPINLimit; a
	// negative limit asks for the PIN every time.
	NoPINLimit int64
}

func (r *MicropayRequest) limit() int64 {
	if r.NoPINLimit == 0 {
		return DefaultNoPINLimit
	}
	return r.NoPINLimit
}

// Micropay places the order of a scanned payment code and pays it at once within the no-PIN
// limit. It returns the order in whatever state the saga left it: SUCCESS, PAYERROR,
// SYS_REFUNDED, or (reported) USERPAYING while the payer must still confirm or an outside answer
// is pending. Placement failures are the errors of unifiedorder; a bad, expired, used or
// foreign code is err 517. A retry with the same hosp_out_trade_no and the same fields returns
// the order (its current state) without using a code again.
func (s *Service) Micropay(ctx context.Context, r *MicropayRequest) (*medpay.Order, error) {
	// The code is a credential, not content of the order: it is neither stored nor part of the
	// idempotency fingerprint. A micropay has no notify_url or return_url, even if sent.
	for _, k := range []string{"auth_code", "notify_url", "return_url"} {
		delete(r.Fields, k)
	}
	hospitalAppID := r.Merchant.AppID
	if prev, err := s.Store.OrderByTradeNo(ctx, r.Merchant.ID, r.HospOutTradeNo); err == nil {
		return s.micropayRetry(ctx, r, prev)
	} else if !errors.Is(err, medpay.ErrNotFound) {
		return nil, err
	}

	hash := secret.Hash(r.AuthCode)
	code, err := s.Store.ClaimPayCode(ctx, hash, hospitalAppID, r.Fields[r.PayerField], s.now())
	if errors.Is(err, medpay.ErrNotFound) {
		// A racing call with the same number may have placed the order meanwhile.
		if prev, err := s.Store.OrderByTradeNo(ctx, r.Merchant.ID, r.HospOutTradeNo); err == nil {
			return s.micropayRetry(ctx, r, prev)
		}
		return nil, s.codeError(ctx, hash, hospitalAppID, r.Fields[r.PayerField])
	} else if err != nil {
		return nil, err
	}
	r.Fields[r.PayerField] = code.OpenID
	r.Micropay = true
	o, err := s.Place(ctx, &r.PlaceRequest)
	if err != nil {
		// No order came of the code: give it back so that the payer need not show a new one.
		if rerr := s.Store.ReleasePayCode(ctx, code); rerr != nil {
			s.log().Warn("release payment code", "err", rerr)
		}
		return nil, err
	}
	return s.micropayPay(ctx, r, o)
}

// micropayRetry answers a repeated hosp_out_trade_no.
func (s *Service) micropayRetry(ctx context.Context, r *MicropayRequest, prev *medpay.Order) (*medpay.Order, error) {
	if r.Fields[r.PayerField] == "" {
		_, openid := prev.Payer()
		r.Fields[r.PayerField] = openid
	}
	if prev.Fingerprint != Fingerprint(r.Fields) { // other content, or an order of unifiedorder
		return nil, medpay.Errorf(medpay.ErrDuplicateTradeNo, "")
	}
	o, err := s.Refresh(ctx, prev)
	if err != nil {
		return nil, err
	}
	// A first call that stopped between placing and paying is finished by its retry.
	return s.micropayPay(ctx, r, o)
}

// micropayPay pays a scanned order within the no-PIN limit and returns it as it stands.
func (s *Service) micropayPay(ctx context.Context, r *MicropayRequest, o *medpay.Order) (*medpay.Order, error) {
	// A cash part is paid by the payer in the cash channel's cashier, never charged by the
	// platform: such an order waits for the payer on the pay page, as one above the limit does.
	if o.State != medpay.StateNotPay || o.Step != StepScanned || o.CashFee > 0 || o.CashFee+o.InsuranceFee > r.limit() {
		return o, nil
	}
	paid, err := s.PayNow(ctx, o.MedTransID)
	if paid == nil {
		return nil, err
	}
	if err != nil {
		// The outcome is pending (recovery finishes it) or another call is paying it: the
		// hospital polls queryorder.
		s.log().Warn("micropay not finished synchronously", "med_trans_id", o.MedTransID, "err", err)
	}
	return paid, nil
}

// codeError tells why a payment code could not be claimed (err 517).
func (s *Service) codeError(ctx context.Context, hash, appid, openid string) error {
	c, err := s.Store.PayCodeByHash(ctx, hash)
	switch {
	case errors.Is(err, medpay.ErrNotFound):
		return medpay.Errorf(medpay.ErrAuthCode, "auth_code invalid")
	case err != nil:
		return err
	case c.AppID != appid || (openid != "" && c.OpenID != openid):
		return medpay.Errorf(medpay.ErrAuthCode, "auth_code was not issued to this payer")
	case !c.UsedAt.IsZero():
		return medpay.Errorf(medpay.ErrAuthCode, "auth_code already used")
	default:
		return medpay.Errorf(medpay.ErrAuthCode, "auth_code expired")
	}
}

// PayNow pays a micropay order without the PIN, through the same claim and saga as Confirm. It
// refuses orders that were not placed by micropay: every other payment needs the payer's PIN.
func (s *Service) PayNow(ctx context.Context, medTransID string) (*medpay.Order, error) {
	o, err := s.payable(ctx, medTransID)
	if err != nil || o.State != medpay.StateNotPay {
		return o, err
	}
	if o.Step != StepScanned {
		return nil, fmt.Errorf("order %s was not placed by micropay: it needs the payer's PIN", medTransID)
	}
	if o.CashFee > 0 {
		return nil, fmt.Errorf("order %s has a cash part: the payer pays it in the cash channel's cashier", medTransID)
	}
	return s.start(ctx, o)
}
