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

// ForOrg returns the bureau acting for the institution orgCodg: 医保 2.0 orders (v3.md) are
// uploaded by the hospital's own institution, so their settlements are in its journal.
type ForOrg func(ctx context.Context, orgCodg string) (medpay.Bureau, error)

// CashBooks is the cash channel's journal (cash.Books on the channel's database).
type CashBooks interface {
	Statement(ctx context.Context, from, to time.Time) ([]cash.StatementEntry, error)
}

// Journals reads several cash journals as one: the APIv3 channel's, and the wallet that charges
// the cash part of 医保 2.0 orders.
type Journals []CashBooks

// Statement concatenates the journals' entries.
func (js Journals) Statement(ctx context.Context, from, to time.Time) ([]cash.StatementEntry, error) {
	var out []cash.StatementEntry
	for _, j := range js {
		es, err := j.Statement(ctx, from, to)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return out, nil
}

// cashKey is the order a cash journal serial belongs to: an APIv3 payment's out_trade_no is the
// order's med_trans_id; a charge of the synchronous wallet is <med_trans_id>-C<attempt>.
func cashKey(serial string) string {
	if i := strings.LastIndex(serial, "-C"); i > 0 {
		return serial[:i]
	}
	return serial
}

// Day reconciles the CST calendar day that starts at start. With forOrg, the journals of the
// institutions whose 2.0 orders moved that day are read too, for those orders' payOrdIds.
func Day(ctx context.Context, store *sqlstore.Store, bu medpay.Bureau, wallet CashBooks, start time.Time, forOrg ...ForOrg) (*Report, error) {
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
	if len(forOrg) > 0 {
		more, err := v3Entries(ctx, store, orders, forOrg[0], start)
		if err != nil {
			return nil, err
		}
		entries = append(entries, more...)
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

// v3Entries reads the journals of the institutions of the day's 2.0 orders, keeping the entries
// of bureau orders the platform has a 2.0 order for (the hospital settles others itself).
func v3Entries(ctx context.Context, store *sqlstore.Store, orders map[int64]*medpay.Order, forOrg ForOrg, start time.Time) ([]medpay.StatementEntry, error) {
	mine := map[string]map[string]bool{} // institution → payOrdIds of its 2.0 orders
	for _, o := range orders {
		if o.Generation == medpay.GenerationV3 && o.PayOrdID != "" {
			if mine[o.OrgNo] == nil {
				mine[o.OrgNo] = map[string]bool{}
			}
			mine[o.OrgNo][o.PayOrdID] = true
		}
	}
	var out []medpay.StatementEntry
	for org, ids := range mine {
		bu, err := forOrg(ctx, org)
		if err != nil {
			return nil, err
		}
		entries, err := bu.Statement(ctx, start)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if ids[e.PayOrdID] {
				out = append(out, e)
			}
		}
	}
	return out, nil
}
