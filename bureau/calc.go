package bureau

import (
	"fmt"

	"github.com/medpay/medpay/fee"
)

// This file is the policy engine: computing the split of a bill (docs/api/bureau.md (计算)). It is pure: no
// clock, no storage. The bill itself is parsed by package fee.

// The bill's types and rules live in package fee; these names keep the simulator's vocabulary.
type (
	Bill      = fee.Bill
	Item      = fee.Item
	BillError = fee.BillError
)

// Item classes and medical types (package fee).
const (
	ClassA              = fee.ClassA
	ClassB              = fee.ClassB
	ClassC              = fee.ClassC
	MedTypeOutpatient   = fee.MedTypeOutpatient
	MedTypeRegistration = fee.MedTypeRegistration
	MedTypeChronic      = fee.MedTypeChronic
	MedTypeInpatient    = fee.MedTypeInpatient
	MaxContentBytes     = fee.MaxContentBytes
	MaxItems            = fee.MaxItems
	MaxItemPrice        = fee.MaxItemPrice
	MaxItemQty          = fee.MaxItemQty
	MaxBillTotal        = fee.MaxBillTotal
)

var (
	ErrInvalidBill = fee.ErrInvalidBill
	ParseBill      = fee.Parse
	MedGroup       = fee.MedGroup
	KnownMedType   = fee.KnownMedType
	DefaultMedType = fee.DefaultMedType
)

func billErr(item int, field, format string, args ...any) *BillError {
	return &BillError{Item: item, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Rule is the policy that applies to one person type at one hospital level (docs/api/bureau.md (城市政策)).
type Rule struct {
	DeductibleFen  int64 `json:"deductible_fen"`   // annual outpatient deductible (起付线)
	RatioPct       int   `json:"ratio_pct"`        // share of the inside-policy amount the pool pays
	AnnualLimitFen int64 `json:"annual_limit_fen"` // annual pool limit (最高支付限额)
	BSelfRatioPct  int   `json:"-"`                // default 乙类先行自付 ratio (from the city)
}

// Entitlement is what is left to a person at the time of a bill.
type Entitlement struct {
	DeductibleLeft int64 // remaining annual deductible for the bill's med_type group
	PoolLeft       int64 // remaining annual pool limit
	AcctBalance    int64 // personal account balance (0 for residents: no account)
}

// EntitlementFor derives the entitlement from the rule and the year's accumulators; the remaining
// amounts never go below zero (a preset lowered mid-year does not claw anything back).
func EntitlementFor(r Rule, dedcUsed, poolPaid, balance int64) Entitlement {
	return Entitlement{
		DeductibleLeft: max(0, r.DeductibleFen-dedcUsed),
		PoolLeft:       max(0, r.AnnualLimitFen-poolPaid),
		AcctBalance:    max(0, balance),
	}
}

// ItemSplit is one item's part of a split.
type ItemSplit struct {
	Code       string `json:"code"`
	Name       string `json:"name"`
	Class      string `json:"class"`
	Price      int64  `json:"price"`
	Qty        int64  `json:"qty"`
	Amount     int64  `json:"det_item_fee_sumamt"` // price × qty
	SelfRatio  int    `json:"selfpay_prop_pct"`    // 100 for C, the applied ratio for B, 0 for A
	SelfpayAmt int64  `json:"selfpay_amt"`         // the part the person pays before the pool
}

// Split is the bureau's computation for one bill (docs/api/bureau.md (计算)), all fen.
type Split struct {
	MedfeeSumamt    int64 // 1. Σ price × qty
	FulamtOwnpayAmt int64 // 2. Σ class C
	PreselfpayAmt   int64 // 3. Σ class B × self ratio
	InscpScpAmt     int64 // 4. inside policy
	ActPayDedc      int64 // 5. deductible paid by this bill
	HifpPay         int64 // 6. 统筹基金
	AcctPay         int64 // 7. 个人账户
	PsnCashPay      int64 // 7. the person's cash part
	RatioPct        int
	Items           []ItemSplit
}

// Check asserts the invariants of a split: legs sum to the whole, nothing negative, the parts of
// step 1–4 consistent. Checked where a split is produced and again before it is stored.
func (s *Split) Check() error {
	switch {
	case s.MedfeeSumamt <= 0:
		return fmt.Errorf("bureau: split invariant: medfee_sumamt %d <= 0", s.MedfeeSumamt)
	case s.HifpPay < 0 || s.AcctPay < 0 || s.PsnCashPay < 0 || s.ActPayDedc < 0 ||
		s.FulamtOwnpayAmt < 0 || s.PreselfpayAmt < 0 || s.InscpScpAmt < 0:
		return fmt.Errorf("bureau: split invariant: negative amount in %+v", *s)
	case s.MedfeeSumamt != s.HifpPay+s.AcctPay+s.PsnCashPay:
		return fmt.Errorf("bureau: split invariant: medfee_sumamt %d != hifp_pay %d + acct_pay %d + psn_cash_pay %d",
			s.MedfeeSumamt, s.HifpPay, s.AcctPay, s.PsnCashPay)
	case s.InscpScpAmt != s.MedfeeSumamt-s.FulamtOwnpayAmt-s.PreselfpayAmt:
		return fmt.Errorf("bureau: split invariant: inscp_scp_amt %d inconsistent", s.InscpScpAmt)
	case s.ActPayDedc > s.InscpScpAmt || s.HifpPay > s.InscpScpAmt-s.ActPayDedc:
		return fmt.Errorf("bureau: split invariant: hifp_pay %d exceeds the inside-policy amount after deductible", s.HifpPay)
	}
	return nil
}

// pctHalfUp is round-half-up(amount × pct / 100) for amount >= 0, 0 <= pct <= 100.
func pctHalfUp(amount int64, pct int) int64 {
	return (amount*int64(pct) + 50) / 100
}

// Calculate computes the split of bill b under rule r for a person with entitlement e, exactly as
// docs/api/bureau.md (计算), in integer fen. Rounding is half up at each step, and it happens in two places
// only: the 乙类先行自付 of each class-B item is rounded per item (so that each item's selfpay_amt
// in response_content is exact and the items add up to preselfpay_amt), and the pool's share
// (step 6) is rounded once on the bill's total. Every other step is a sum, a difference or a
// minimum, so no fen is lost: medfee_sumamt = hifp_pay + acct_pay + psn_cash_pay always.
func Calculate(b *Bill, r Rule, e Entitlement) (*Split, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	if r.RatioPct < 0 || r.RatioPct > 100 || r.BSelfRatioPct < 0 || r.BSelfRatioPct > 100 {
		return nil, fmt.Errorf("bureau: rule out of range: ratio %d%%, 乙类 self ratio %d%%", r.RatioPct, r.BSelfRatioPct)
	}
	if e.DeductibleLeft < 0 || e.PoolLeft < 0 || e.AcctBalance < 0 {
		return nil, fmt.Errorf("bureau: negative entitlement %+v", e)
	}
	s := &Split{RatioPct: r.RatioPct, Items: make([]ItemSplit, len(b.Items))}
	for i, it := range b.Items {
		amt := it.Amount()
		is := ItemSplit{Code: it.Code, Name: it.Name, Class: it.Class, Price: it.Price, Qty: it.Qty, Amount: amt}
		switch it.Class {
		case ClassC:
			is.SelfRatio, is.SelfpayAmt = 100, amt
			s.FulamtOwnpayAmt += amt
		case ClassB:
			is.SelfRatio = r.BSelfRatioPct
			if it.HasSelfRatio {
				is.SelfRatio = it.SelfRatioPct
			}
			is.SelfpayAmt = pctHalfUp(amt, is.SelfRatio) // per-item rounding
			s.PreselfpayAmt += is.SelfpayAmt
		}
		s.MedfeeSumamt += amt
		s.Items[i] = is
	}
	s.InscpScpAmt = s.MedfeeSumamt - s.FulamtOwnpayAmt - s.PreselfpayAmt
	s.ActPayDedc = min(s.InscpScpAmt, e.DeductibleLeft)
	s.HifpPay = min(pctHalfUp(s.InscpScpAmt-s.ActPayDedc, r.RatioPct), e.PoolLeft)
	self := s.MedfeeSumamt - s.HifpPay
	if b.AcctUsed {
		s.AcctPay = min(self, e.AcctBalance)
	}
	s.PsnCashPay = self - s.AcctPay
	if err := s.Check(); err != nil {
		return nil, err
	}
	return s, nil
}
