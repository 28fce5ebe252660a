// Package national is the data of the national mobile-payment protocol's operations
// (national.md §4: 6201 uldFeeInfo, 6202 pay_order, 6203 refund_Order, 6301 query_order_info,
// 6401 revoke_order, 1101 psn_info, 3201 stmt_day, auth_info) as both sides exchange it inside
// the hsa envelope, and Client, the platform's medpay.Bureau over the network.
package national

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/medpay/medpay"
)

// Routes (national.md §1).
const (
	RouteUpload    = "uldFeeInfo"
	RouteSettle    = "pay_order"
	RouteRefund    = "refund_Order"
	RouteQuery     = "query_order_info"
	RouteRevoke    = "revoke_order"
	RoutePerson    = "psn_info"
	RouteStatement = "stmt_day"
	RouteAuth      = "auth_info"
)

// Business refusal codes of the operations (the envelope's own are hsa's 1000–1999).
const (
	CodeRefused       = 2001 // the bureau refuses (a missing field, a state that does not allow it): medpay 506
	CodeRefundExceeds = 2002 // more than is left to refund: medpay 515
	CodeIdentity      = 2003 // the person does not match: medpay 512
	CodeConflict      = 2004 // an idempotency key reused for something else
	CodeRefundRefused = 2005 // the refund is refused: medpay 553
)

// refStatus of 6203 (national.md §3).
const (
	RefundSucc = "SUCC"
	RefundFail = "FAIL"
	RefundExp  = "EXP" // outcome unknown: ask again with the same appRefdSn
)

// Time formats on the wire (China time).
const (
	TimeLayout = "2006-01-02 15:04:05"
	DateLayout = "2006-01-02"
)

// Yuan writes fen as a yuan string with two decimals.
func Yuan(fen int64) string { return medpay.FormatYuan(fen) }

// ParseYuan reads a yuan amount of at most two decimals into fen, exactly, or fails.
func ParseYuan(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty amount")
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || (dot && frac == "") || !digits(whole) || !digits(frac) || len(whole) > 12 {
		return 0, fmt.Errorf("amount %q is not yuan with at most two decimals", s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac, 10, 64)
	return w*100 + f, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FeeDetail is one line of feedetailList (6201).
type FeeDetail struct {
	FeedetlSn        string `json:"feedetlSn"`
	DetItemFeeSumamt string `json:"detItemFeeSumamt"`
	Cnt              string `json:"cnt"`
	Pric             string `json:"pric"`
	MedListCodg      string `json:"medListCodg"`
	MedinsListCodg   string `json:"medinsListCodg,omitempty"`
	MedListName      string `json:"medListName"`
	ChrgitmLv        string `json:"chrgitmLv,omitempty"`   // 01 甲类, 02 乙类, 03 丙类 (medpay)
	SelfpayProp      string `json:"selfpayProp,omitempty"` // 乙类 proportion, e.g. "0.10" (medpay)
}

// UploadData is the request data of 6201.
type UploadData struct {
	PayAuthNo     string      `json:"payAuthNo,omitempty"`
	EcToken       string      `json:"ecToken,omitempty"`
	MdtrtID       string      `json:"mdtrtId,omitempty"`
	OrgCodg       string      `json:"orgCodg"`
	PsnNo         string      `json:"psnNo,omitempty"`
	Insutype      string      `json:"insutype,omitempty"`
	MedOrgOrd     string      `json:"medOrgOrd"`
	Begntime      string      `json:"begntime,omitempty"`
	IDNo          string      `json:"idNo,omitempty"`
	UserName      string      `json:"userName,omitempty"`
	IDType        string      `json:"idType,omitempty"`
	InsuplcAdmdvs string      `json:"insuplcAdmdvs,omitempty"`
	DeptName      string      `json:"deptName,omitempty"`
	MedType       string      `json:"medType"`
	AcctUsedFlag  string      `json:"acctUsedFlag,omitempty"` // "1" the account may pay, "0" not
	MedfeeSumamt  string      `json:"medfeeSumamt"`
	HospLv        string      `json:"hospLv,omitempty"`    // medpay: the hospital's level, default the institution's
	OrderType     string      `json:"orderType,omitempty"` // medpay: RegPay or DiagPay
	Feedetails    []FeeDetail `json:"feedetailList"`
}

// Split is the amounts of a settlement on the wire.
type Split struct {
	FeeSumamt  string `json:"feeSumamt,omitempty"`
	FundPay    string `json:"fundPay,omitempty"`
	PsnAcctPay string `json:"psnAcctPay,omitempty"`
	OwnPayAmt  string `json:"ownPayAmt,omitempty"`
}

// UploadAnswer is the answer data of 6201.
type UploadAnswer struct {
	PayOrdID  string `json:"payOrdId"`
	PayToken  string `json:"payToken"`
	MedOrgOrd string `json:"medOrgOrd"`
	Split
	InscpScpAmt     string `json:"inscpScpAmt,omitempty"`
	PreselfpayAmt   string `json:"preselfpayAmt,omitempty"`
	FulamtOwnpayAmt string `json:"fulamtOwnpayAmt,omitempty"`
	ActPayDedc      string `json:"actPayDedc,omitempty"`
	// RespContent is the calculation detail in the platform's response_content form (docs/api/bureau.md
	// §4, fen) (medpay).
	RespContent string `json:"respContent,omitempty"`
}

// SettleData is the request data of 6202.
type SettleData struct {
	PayAuthNo    string `json:"payAuthNo,omitempty"`
	PayOrdID     string `json:"payOrdId"`
	PayToken     string `json:"payToken"`
	OrgCodg      string `json:"orgCodg,omitempty"`
	OrgBizSer    string `json:"orgBizSer"`
	ChrgBchno    string `json:"chrgBchno,omitempty"`
	FeeType      string `json:"feeType,omitempty"`
	MdtrtID      string `json:"mdtrtId,omitempty"`
	AcctUsedFlag string `json:"acctUsedFlag,omitempty"`
}

// OrderAnswer is the answer data of 6202 and 6301.
type OrderAnswer struct {
	PayOrdID  string `json:"payOrdId"`
	OrdStas   string `json:"ordStas"`
	MedOrgOrd string `json:"medOrgOrd,omitempty"`
	TraceTime string `json:"traceTime,omitempty"`
	CallType  string `json:"callType,omitempty"`
	RevsToken string `json:"revsToken,omitempty"`
	Split
	SetlType    string `json:"setlType,omitempty"` // ALL, CASH, HI (6301, settled states)
	SetlID      string `json:"setlId,omitempty"`
	SetlTime    string `json:"setlTime,omitempty"`
	RespContent string `json:"respContent,omitempty"`
}

// OrderRefData is the request data of 6301 and 6401.
type OrderRefData struct {
	PayOrdID string `json:"payOrdId"`
	OrgCodg  string `json:"orgCodg,omitempty"`
	PayToken string `json:"payToken"`
	IDNo     string `json:"idNo,omitempty"`
	UserName string `json:"userName,omitempty"`
	IDType   string `json:"idType,omitempty"`
}

// RefundData is the request data of 6203.
type RefundData struct {
	PayOrdID       string `json:"payOrdId"`
	AppRefdSn      string `json:"appRefdSn"`
	EcToken        string `json:"ecToken,omitempty"`
	PayAuthNo      string `json:"payAuthNo,omitempty"`
	AppRefdTime    string `json:"appRefdTime,omitempty"`
	RefdType       string `json:"refdType"`
	TotlRefdAmt    string `json:"totlRefdAmt"`
	CashRefdAmt    string `json:"cashRefdAmt"`
	PsnAcctRefdAmt string `json:"psnAcctRefdAmt"`
	FundRefdAmt    string `json:"fundRefdAmt"`
	ExpContent     string `json:"expContent,omitempty"`
}

// RefundAnswer is the answer data of 6203.
type RefundAnswer struct {
	RefStatus      string `json:"refStatus"`
	PayOrdID       string `json:"payOrdId"`
	AppRefdSn      string `json:"appRefdSn"`
	RefdID         string `json:"refdId,omitempty"`
	RefdTime       string `json:"refdTime,omitempty"`
	CashRefdAmt    string `json:"cashRefdAmt,omitempty"`
	PsnAcctRefdAmt string `json:"psnAcctRefdAmt,omitempty"`
	FundRefdAmt    string `json:"fundRefdAmt,omitempty"`
}

// PersonData is the request data of 1101.
type PersonData struct {
	IDNo          string `json:"idNo"`
	UserName      string `json:"userName"`
	IDType        string `json:"idType,omitempty"`
	CardNo        string `json:"cardNo,omitempty"`
	InsuplcAdmdvs string `json:"insuplcAdmdvs,omitempty"`
}

// PersonAnswer is the answer data of 1101.
type PersonAnswer struct {
	PsnNo         string `json:"psnNo"`
	Insutype      string `json:"insutype"`
	PsnType       string `json:"psnType"`
	InsuStas      string `json:"insuStas"` // 1 active, 2 suspended
	InsuplcAdmdvs string `json:"insuplcAdmdvs"`
	UserName      string `json:"userName"` // masked
	IDNo          string `json:"idNo"`     // masked
}

// StatementData is the request data of 3201.
type StatementData struct {
	OrgCodg  string `json:"orgCodg,omitempty"`
	StmtDate string `json:"stmtDate"`
}

// StatementRecord is one record of 3201.
type StatementRecord struct {
	Kind       string `json:"kind"` // settle, refund, revoke
	Time       string `json:"time"`
	PayOrdID   string `json:"payOrdId"`
	MedOrgOrd  string `json:"medOrgOrd,omitempty"`
	SetlID     string `json:"setlId,omitempty"`
	AppRefdSn  string `json:"appRefdSn,omitempty"`
	RefdID     string `json:"refdId,omitempty"`
	PsnNo      string `json:"psnNo,omitempty"`
	FundPay    string `json:"fundPay"`
	PsnAcctPay string `json:"psnAcctPay"`
	OwnPayAmt  string `json:"ownPayAmt"`
}

// StatementAnswer is the answer data of 3201.
type StatementAnswer struct {
	StmtDate   string            `json:"stmtDate"`
	Records    []StatementRecord `json:"records"`
	SetlCnt    int               `json:"setlCnt"`
	RefdCnt    int               `json:"refdCnt"`
	RevsCnt    int               `json:"revsCnt"`
	FundPaySum string            `json:"fundPaySum"`
	AcctPaySum string            `json:"psnAcctPaySum"`
	CashSum    string            `json:"ownPayAmtSum"`
}

// AuthData is the request data of auth_info.
type AuthData struct {
	AuthCode string `json:"authCode"`
}

// AuthAnswer is the answer data of auth_info.
type AuthAnswer struct {
	PayAuthNo     string `json:"payAuthNo"`
	PsnNo         string `json:"psnNo"`
	UserName      string `json:"userName"`
	IDNo          string `json:"idNo"`
	InsuplcAdmdvs string `json:"insuplcAdmdvs"`
	ValidUntil    string `json:"validUntil,omitempty"` // empty: until the card is unbound (scope bind)
}

// FormatTime writes a time on the wire, China time; the zero time is empty.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(medpay.CST).Format(TimeLayout)
}

// ParseTime reads a time of the wire; empty is the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.ParseInLocation(TimeLayout, s, medpay.CST)
}

// SplitOf writes a settlement's amounts.
func SplitOf(st *medpay.Settlement) Split {
	return Split{FeeSumamt: Yuan(st.MedfeeSumamt), FundPay: Yuan(st.HifpPay), PsnAcctPay: Yuan(st.AcctPay), OwnPayAmt: Yuan(st.PsnCashPay)}
}

// Apply reads the amounts into st, checking that they add up (national.md §3).
func (s Split) Apply(st *medpay.Settlement) error {
	var err error
	read := func(v string, into *int64) {
		if err == nil {
			*into, err = ParseYuan(v)
		}
	}
	read(s.FeeSumamt, &st.MedfeeSumamt)
	read(s.FundPay, &st.HifpPay)
	read(s.PsnAcctPay, &st.AcctPay)
	read(s.OwnPayAmt, &st.PsnCashPay)
	if err != nil {
		return err
	}
	if st.HifpPay+st.AcctPay+st.PsnCashPay != st.MedfeeSumamt {
		return fmt.Errorf("ownPayAmt %s + psnAcctPay %s + fundPay %s != feeSumamt %s", s.OwnPayAmt, s.PsnAcctPay, s.FundPay, s.FeeSumamt)
	}
	return nil
}
