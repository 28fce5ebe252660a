// Package reconcile compares, for one day, the platform's ledger with the bureau's and the cash
// channel's own journals — three-way reconciliation. Each party's movements are netted per
// serial (a bureau order's payOrdId, a cash charge) so that a payment, its reversal and its refunds on
// the same day cancel out; any serial whose nets differ is a discrepancy for an operator.
package reconcile

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/cash"
	"github.com/medpay/medpay/sqlstore"
)

// Amounts is what moved under one serial, in fen, as each party sees it.
type Amounts struct {
	Platform int64 `json:"platform"` // the ledger's net
	Books    int64 `json:"books"`    // the party's own journal's net
}

// Discrepancy is a serial on which the platform and a party disagree.
type Discrepancy struct {
	Party  string `json:"party"` // "bureau_fund", "personal_account" or "cash"
	Serial string `json:"serial"`
	Amounts
}

// Report is the outcome of one day's reconciliation.
type Report struct {
	Day           string             `json:"day"`
	Serials       int                `json:"serials"`
	Totals        map[string]Amounts `json:"totals"`
	Discrepancies []Discrepancy      `json:"discrepancies"`
}

// OK reports whether every serial agrees.
func (r *Report) OK() bool { return len(r.Discrepancies) == 0 }

// Parties whose books are compared with the ledger.
const (
	BureauFund      = "bureau_fund"
	PersonalAccount = "personal_account"
	Cash            = "cash"
)

// Day reconciles the CST calendar day that starts at start.
// CashBooks is the cash channel's journal (cash.Books on the channel's database).
type CashBooks interface {
	Statement(ctx context.Context, from, to time.Time) ([]cash.StatementEntry, error)
}

// cashKey is the order a cash journal serial belongs to: an APIv3 payment's out_trade_no is the
// order's med_trans_id; a charge of the former synchronous channel was <med_trans_id>-C<attempt>.
func cashKey(serial string) string {
	if i := strings.LastIndex(serial, "-C"); i > 0 {
		return serial[:i]
	}
	return serial
}

func Day(ctx context.Context, store *sqlstore.Store, bu medpay.Bureau, wallet CashBooks, start time.Time) (*Report, error) {
	end := start.AddDate(0, 0, 1)
	// nets[party][serial] holds the platform's and the party's view.
	nets := map[string]map[string]*Amounts{BureauFund: {}, PersonalAccount: {}, Cash: {}}
	at := func(party, serial string) *Amounts {
		a := nets[party][serial]
		if a == nil {
			a = &Amounts{}
			nets[party][serial] = a
		}
		return a
	}

	// The platform: what each order's ledger accounts paid out to the hospital that day.
	moves, err := store.Movements(ctx, start, end)
	if err != nil {
		return nil, err
	}
	orders := map[int64]*medpay.Order{}
	for _, m := range moves {
		o := orders[m.OrderID]
		if o == nil {
			if o, err = store.OrderByRowID(ctx, m.OrderID); err != nil {
				return nil, err
			}
			orders[m.OrderID] = o
		}
		switch {
		case strings.HasPrefix(m.Account, "bureau_fund:"):
			at(BureauFund, o.PayOrdID).Platform -= m.Amount
		case strings.HasPrefix(m.Account, "personal_account:"):
			at(PersonalAccount, o.PayOrdID).Platform -= m.Amount
		case strings.HasPrefix(m.Account, "payer_wallet:"):
			at(Cash, o.CashTradeNo()).Platform -= m.Amount
		}
	}

	// The bureau's journal (3201): settlements less refunds, per bureau order (payOrdId).
	entries, err := bu.Statement(ctx, start)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		sign := int64(1)
		switch e.Kind {
		case medpay.StmtRevoke:
			sign = 0 // moves nothing, but the platform must agree that nothing moved
		case medpay.StmtRefund:
			sign = -1
		}
		at(BureauFund, e.PayOrdID).Books += sign * e.HifpPay
		at(PersonalAccount, e.PayOrdID).Books += sign * e.AcctPay
	}

	// The cash channel's journal: charges less refunds, per charge serial.
	journal, err := wallet.Statement(ctx, start, end)
	if err != nil {
		return nil, err
	}
	for _, e := range journal {
		if e.Kind == cash.KindRefund {
			at(Cash, cashKey(e.Charge)).Books -= e.Amount
		} else {
			at(Cash, cashKey(e.Serial)).Books += e.Amount
		}
	}

	r := &Report{Day: start.Format("20060102"), Totals: map[string]Amounts{}, Discrepancies: []Discrepancy{}}
	seen := map[string]bool{}
	for party, bySerial := range nets {
		var total Amounts
		for serial, a := range bySerial {
			seen[serial] = true
			total.Platform += a.Platform
			total.Books += a.Books
			if a.Platform != a.Books {
				r.Discrepancies = append(r.Discrepancies, Discrepancy{Party: party, Serial: serial, Amounts: *a})
			}
		}
		r.Totals[party] = total
	}
	r.Serials = len(seen)
	sort.Slice(r.Discrepancies, func(i, j int) bool {
		a, b := r.Discrepancies[i], r.Discrepancies[j]
		if a.Serial != b.Serial {
			return a.Serial < b.Serial
		}
		return a.Party < b.Party
	})
	return r, nil
}
