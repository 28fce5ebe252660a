package medpay

import "fmt"

// Transfer moves Amount fen from one ledger account to another. The ledger is double-entry: a
// transfer is stored as two entries, -Amount on From and +Amount on To, so every account sum over
// the whole ledger is zero by construction and each party's balance can be checked against its own
// records (the bureau's, the cash channel's).
type Transfer struct {
	From   string
	To     string
	Amount int64
}

// Ledger account names.
func BureauFundAccount(city string) string   { return "bureau_fund:" + city }
func PersonalAccount(psnNo string) string    { return "personal_account:" + psnNo }
func PayerWalletAccount(payer string) string { return "payer_wallet:" + payer }
func HospitalAccount(mchID string) string    { return "hospital:" + mchID }

// Check rejects transfers that are not strictly positive or go nowhere.
func (t Transfer) Check() error {
	if t.Amount <= 0 || t.From == "" || t.To == "" || t.From == t.To {
		return fmt.Errorf("invalid transfer %+v", t)
	}
	return nil
}

// Reverse returns the transfer that undoes t.
func (t Transfer) Reverse() Transfer { return Transfer{From: t.To, To: t.From, Amount: t.Amount} }
