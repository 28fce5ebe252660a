package bureau_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/bureau/bureautest"
	"github.com/medpay/medpay/hsa"
	"github.com/medpay/medpay/national"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// A hospital's HIS drives the served bureau over real HTTP as its developers would: maps of the
// national fields in, maps out, through 6201 → 6202 → 6301 → 6203 and a 6401, checking the rules
// of national.md §2–4.

type obj = map[string]any

func hisCall(t *testing.T, c *hsa.Client, route string, data obj) (obj, error) {
	t.Helper()
	var out obj
	err := c.Call(context.Background(), route, data, &out)
	return out, err
}

func mustCall(t *testing.T, c *hsa.Client, route string, data obj) obj {
	t.Helper()
	out, err := hisCall(t, c, route, data)
	if err != nil {
		t.Fatalf("%s: %v", route, err)
	}
	return out
}

func wantRefusal(t *testing.T, err error, code int, part string) {
	t.Helper()
	var r *hsa.Refusal
	if !errors.As(err, &r) || r.Code != code || !strings.Contains(r.Message, part) {
		t.Fatalf("err %v, want refusal %d naming %q", err, code, part)
	}
}

// hisBill is the worked example as 6201 fee details: 65.00 元.
func hisBill(payAuthNo, medOrgOrd string) obj {
	return obj{"payAuthNo": payAuthNo, "mdtrtId": "MD" + medOrgOrd, "orgCodg": "H44030100001", "medOrgOrd": medOrgOrd,
		"medType": "11", "insuplcAdmdvs": "440300", "acctUsedFlag": "1", "medfeeSumamt": "65.00",
		"feedetailList": []obj{
			{"feedetlSn": "1", "detItemFeeSumamt": "25.00", "cnt": "1", "pric": "25.00", "medListCodg": "250101001", "medListName": "血常规", "chrgitmLv": "01"},
			{"feedetlSn": "2", "detItemFeeSumamt": "37.00", "cnt": "2", "pric": "18.50", "medListCodg": "86900011", "medListName": "阿莫西林胶囊", "chrgitmLv": "02", "selfpayProp": "0.10"},
			{"feedetlSn": "3", "detItemFeeSumamt": "3.00", "cnt": "1", "pric": "3.00", "medListCodg": "X0001", "medListName": "口罩", "chrgitmLv": "03"},
		}}
}

func yuanSum(t *testing.T, m obj, keys ...string) int64 {
	t.Helper()
	var s int64
	for _, k := range keys {
		v, ok := m[k].(string)
		if !ok {
			t.Fatalf("%s missing or not a string in %v", k, m)
		}
		f, err := national.ParseYuan(v)
		if err != nil {
			t.Fatal(err)
		}
		s += f
	}
	return s
}

func TestHISAgainstServedBureau(t *testing.T) {
	t.Parallel()
	s := bureautest.Serve(t, sqlstoretest.Open(t, sqlstoretest.Engines()[0]), nil, 0)
	c := s.HSA(t, 30*time.Second)
	p, _ := bureau.FindPerson("440300", bureau.ScenarioEmployee)
	auth, err := s.Sim.As(s.Institution.AppID).SandboxPayAuth(context.Background(), p.IDNo, medpay.ScopePay)
	if err != nil {
		t.Fatal(err)
	}

	// 6201: the split, in yuan strings that add up; the same order again is the same upload.
	up := mustCall(t, c, national.RouteUpload, hisBill(auth.PayAuthNo, "HIS-1"))
	if up["payOrdId"] == nil || up["payToken"] == nil || up["feeSumamt"] != "65.00" || up["fundPay"] != "32.07" ||
		up["psnAcctPay"] != "32.93" || up["ownPayAmt"] != "0.00" || up["inscpScpAmt"] != "58.30" || up["preselfpayAmt"] != "3.70" ||
		up["fulamtOwnpayAmt"] != "3.00" {
		t.Fatalf("6201 answer %v", up)
	}
	if again := mustCall(t, c, national.RouteUpload, hisBill(auth.PayAuthNo, "HIS-1")); again["payOrdId"] != up["payOrdId"] {
		t.Fatalf("6201 repeat %v, first %v", again, up)
	}
	changed := hisBill(auth.PayAuthNo, "HIS-1")
	changed["deptName"] = "外科"
	_, err = hisCall(t, c, national.RouteUpload, changed)
	wantRefusal(t, err, national.CodeRefused, "内容不同")

	// 6201 refusals: sums, amounts, missing fields, each named.
	bad := hisBill(auth.PayAuthNo, "HIS-2")
	bad["medfeeSumamt"] = "66.00"
	_, err = hisCall(t, c, national.RouteUpload, bad)
	wantRefusal(t, err, national.CodeRefused, "medfeeSumamt")
	bad = hisBill(auth.PayAuthNo, "HIS-2")
	bad["feedetailList"].([]obj)[1]["detItemFeeSumamt"] = "36.00"
	bad["medfeeSumamt"] = "64.00"
	_, err = hisCall(t, c, national.RouteUpload, bad)
	wantRefusal(t, err, national.CodeRefused, "feedetailList[1].detItemFeeSumamt")
	bad = hisBill(auth.PayAuthNo, "HIS-2")
	bad["feedetailList"].([]obj)[0]["pric"] = "25.001"
	_, err = hisCall(t, c, national.RouteUpload, bad)
	wantRefusal(t, err, national.CodeRefused, "feedetailList[0].pric")
	for _, field := range []string{"medOrgOrd", "orgCodg", "mdtrtId", "medType"} {
		bad = hisBill(auth.PayAuthNo, "HIS-2")
		delete(bad, field)
		_, err = hisCall(t, c, national.RouteUpload, bad)
		wantRefusal(t, err, national.CodeRefused, field)
	}
	bad = hisBill("", "HIS-2")
	_, err = hisCall(t, c, national.RouteUpload, bad)
	wantRefusal(t, err, national.CodeRefused, "payAuthNo")

	// 6202: settles once; the amounts add up; the same orgBizSer answers the same; another is refused.
	pay := obj{"payAuthNo": auth.PayAuthNo, "payOrdId": up["payOrdId"], "payToken": up["payToken"], "orgCodg": "H44030100001",
		"orgBizSer": "BIZ-1", "mdtrtId": "MDHIS-1", "acctUsedFlag": "1"}
	st := mustCall(t, c, national.RouteSettle, pay)
	if st["ordStas"] != "4" || st["setlId"] == nil || st["setlTime"] == nil ||
		yuanSum(t, st, "ownPayAmt", "psnAcctPay", "fundPay") != yuanSum(t, st, "feeSumamt") || st["fundPay"] != "32.07" {
		t.Fatalf("6202 answer %v", st)
	}
	if again := mustCall(t, c, national.RouteSettle, pay); again["setlId"] != st["setlId"] {
		t.Fatalf("6202 repeat %v", again)
	}
	pay["orgBizSer"] = "BIZ-2"
	_, err = hisCall(t, c, national.RouteSettle, pay)
	wantRefusal(t, err, national.CodeRefused, "已结算")

	// 6301: settled, with the amounts and setlType.
	q := mustCall(t, c, national.RouteQuery, obj{"payOrdId": up["payOrdId"], "payToken": up["payToken"], "orgCodg": "H44030100001"})
	if q["ordStas"] != "4" || q["setlType"] != "HI" || q["medOrgOrd"] != "HIS-1" || q["fundPay"] != "32.07" || q["setlId"] != st["setlId"] {
		t.Fatalf("6301 answer %v", q)
	}

	// 6203: the component rules, then an HI refund, once.
	refund := func(sn, typ, totl, cash, acct, fund string) obj {
		return obj{"payOrdId": up["payOrdId"], "appRefdSn": sn, "payAuthNo": auth.PayAuthNo, "appRefdTime": "2026-11-30 10:00:00",
			"refdType": typ, "totlRefdAmt": totl, "cashRefdAmt": cash, "psnAcctRefdAmt": acct, "fundRefdAmt": fund, "expContent": "退费"}
	}
	_, err = hisCall(t, c, national.RouteRefund, refund("RF-0", "ALL", "60.00", "0.00", "27.93", "32.07"))
	wantRefusal(t, err, national.CodeRefused, "ALL")
	_, err = hisCall(t, c, national.RouteRefund, refund("RF-0", "HI", "10.00", "0.00", "5.00", "4.00"))
	wantRefusal(t, err, national.CodeRefused, "totlRefdAmt")
	both := refund("RF-0", "HI", "10.00", "0.00", "5.00", "5.00")
	both["ecToken"] = "EC1"
	_, err = hisCall(t, c, national.RouteRefund, both)
	wantRefusal(t, err, national.CodeRefused, "ecToken")
	_, err = hisCall(t, c, national.RouteRefund, refund("RF-0", "HI", "40.00", "0.00", "40.00", "0.00"))
	wantRefusal(t, err, national.CodeRefundExceeds, "超过")
	r := mustCall(t, c, national.RouteRefund, refund("RF-1", "HI", "10.00", "0.00", "5.00", "5.00"))
	if r["refStatus"] != "SUCC" || r["refdId"] == nil || r["appRefdSn"] != "RF-1" {
		t.Fatalf("6203 answer %v", r)
	}
	if again := mustCall(t, c, national.RouteRefund, refund("RF-1", "HI", "10.00", "0.00", "5.00", "5.00")); again["refdId"] != r["refdId"] {
		t.Fatalf("6203 repeat %v", again)
	}
	if q := mustCall(t, c, national.RouteQuery, obj{"payOrdId": up["payOrdId"], "payToken": up["payToken"]}); q["ordStas"] != "6" {
		t.Fatalf("6301 after a part refund %v", q)
	}

	// 6401: revokes an upload; the late 6202 is refused; a settled order cannot be revoked.
	up2 := mustCall(t, c, national.RouteUpload, hisBill(auth.PayAuthNo, "HIS-3"))
	ref2 := obj{"payOrdId": up2["payOrdId"], "payToken": up2["payToken"], "orgCodg": "H44030100001"}
	mustCall(t, c, national.RouteRevoke, ref2)
	_, err = hisCall(t, c, national.RouteSettle, obj{"payOrdId": up2["payOrdId"], "payToken": up2["payToken"], "orgBizSer": "BIZ-3"})
	wantRefusal(t, err, national.CodeRefused, "已撤销")
	_, err = hisCall(t, c, national.RouteRevoke, obj{"payOrdId": up["payOrdId"], "payToken": up["payToken"]})
	wantRefusal(t, err, national.CodeRefused, "请退款")
	_, err = hisCall(t, c, national.RouteQuery, obj{"payOrdId": up2["payOrdId"], "payToken": "wrong"})
	wantRefusal(t, err, national.CodeRefused, "payToken")
}

// TestServedEnvelopeRules checks the envelope as the bureau enforces it: signatures, encryption,
// the appId, the clock window and replays; every refusal signed by the bureau.
func TestServedEnvelopeRules(t *testing.T) {
	t.Parallel()
	s := bureautest.Serve(t, sqlstoretest.Open(t, sqlstoretest.Engines()[0]), nil, 0)
	good := s.HSA(t, 30*time.Second)
	data := obj{"stmtDate": time.Now().In(medpay.CST).Format("2006-01-02")}
	if _, err := hisCall(t, good, national.RouteStatement, data); err != nil {
		t.Fatal(err)
	}
	otherKey, _ := hsa.GenerateKey()
	tests := []struct {
		name string
		edit func(c *hsa.Client)
		code int
	}{
		{"signed with another key", func(c *hsa.Client) { c.PrivateKey = otherKey }, hsa.CodeBadSignature},
		{"encrypted with another secret", func(c *hsa.Client) { c.AppSecret = strings.Repeat("0", 32) }, hsa.CodeUndecryptable},
		{"unknown appId", func(c *hsa.Client) { c.AppID = "MP0000000000000000000000" }, hsa.CodeUnknownApp},
		{"clock 6 minutes ahead", func(c *hsa.Client) { c.Now = func() time.Time { return time.Now().Add(6 * time.Minute) } }, hsa.CodeStaleTimestamp},
	}
	for _, tt := range tests {
		c := *good
		tt.edit(&c)
		_, err := hisCall(t, &c, national.RouteStatement, data)
		var r *hsa.Refusal
		if !errors.As(err, &r) || r.Code != tt.code {
			t.Errorf("%s: %v, want refusal %d", tt.name, err, tt.code)
		}
	}
	// A replayed envelope: the same bytes twice.
	priv, _ := hsa.ParsePrivateKey(s.PrivateKey)
	env, err := hsa.Seal(s.Institution.AppID, s.Institution.AppSecret, priv, data, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(env)
	post := func() *hsa.Envelope {
		resp, err := http.Post(s.URL+hsa.RoutePrefix+national.RouteStatement, "application/json;charset=UTF-8", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a hsa.Envelope
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatal(err)
		}
		return &a
	}
	bureauKey, _ := hsa.ParsePublicKey(s.Institution.BureauPublicKey)
	if a := post(); a.Code == nil || *a.Code != 0 || a.EncData == "" {
		t.Fatalf("first: %+v", a)
	}
	a := post()
	if a.Code == nil || *a.Code != hsa.CodeReplay || a.EncData != "" {
		t.Fatalf("replay: %+v", a)
	}
	// The refusal is signed by the bureau (an envelope refusal: without the institution's secret).
	if _, err := hsa.Open(a, "", bureauKey); err != nil {
		t.Fatalf("replay refusal does not verify: %v", err)
	}
}
