package bureau

import (
	"fmt"
	"github.com/medpay/medpay"
	"hash/fnv"
	"strings"
	"time"
)

// Sandbox scenarios (docs/api/sandbox.md (场景)): how the bureau and the cash channel treat a test person.
const (
	ScenarioEmployee      = "employee"       // 在职, account 2 000 元
	ScenarioRetiree       = "retiree"        // 退休, account 5 000 元
	ScenarioResident      = "resident"       // 居民, no personal account
	ScenarioAcctEmpty     = "acct_empty"     // employee, account 0
	ScenarioSuspended     = "suspended"      // binding succeeds, pre-settlement and settle refused (506)
	ScenarioBureauTimeout = "bureau_timeout" // settle and query of the person's settlements never answer
	ScenarioSettleLost    = "settle_lost"    // settle commits, the first answer per serial is lost
	ScenarioCashDeclined  = "cash_declined"  // the cash channel declines; the bureau sees an employee
	ScenarioRefundUnknown = "refund_unknown" // refund commits, the first answer per serial is lost
)

// Scenarios lists the scenarios in a fixed order; a person's psn_no carries the 1-based index.
func Scenarios() []string {
	return []string{ScenarioEmployee, ScenarioRetiree, ScenarioResident, ScenarioAcctEmpty, ScenarioSuspended,
		ScenarioBureauTimeout, ScenarioSettleLost, ScenarioCashDeclined, ScenarioRefundUnknown}
}

// Insurance types and statuses.
const (
	InsutypeEmployee = "310" // 职工基本医疗保险 (employees and retirees)
	InsutypeResident = "390" // 城乡居民基本医疗保险
	StatusActive     = "active"
	StatusSuspended  = "suspended"
)

// SandboxPIN is the payment PIN of every sandbox person (checked by the cash channel, not here).
const SandboxPIN = "123456"

// Person is an insured person of the simulator. AcctBalance is the initial balance in
// SandboxPersons and the current one when read from the simulator.
type Person struct {
	PsnNo       string `json:"psn_no"`
	Name        string `json:"name"`
	IDNo        string `json:"id_no"`
	CardNo      string `json:"card_no"`
	CityID      string `json:"city_id"`
	Scenario    string `json:"scenario"`
	PIN         string `json:"pin"`
	PsnType     string `json:"psn_type"`
	Insutype    string `json:"insutype"`
	Status      string `json:"status"`
	AcctBalance int64  `json:"acct_balance"`
}

// scenarioProfile is what a scenario implies for a person.
func scenarioProfile(scenario string) (psnType, insutype, status string, balance int64) {
	switch scenario {
	case ScenarioRetiree:
		return PsnRetiree, InsutypeEmployee, StatusActive, 5000_00
	case ScenarioResident:
		return PsnResident, InsutypeResident, StatusActive, 0
	case ScenarioAcctEmpty:
		return PsnEmployee, InsutypeEmployee, StatusActive, 0
	case ScenarioSuspended:
		return PsnEmployee, InsutypeEmployee, StatusSuspended, 2000_00
	}
	return PsnEmployee, InsutypeEmployee, StatusActive, 2000_00
}

var (
	surnames    = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫孔汤")
	maleGiven   = strings.Fields("伟 强 磊 军 勇 杰 涛 明 超 刚 平 辉 鹏 华 飞 建国 志强 建华 海涛 国庆 文博 浩然 宇航 子轩 俊杰 晓东 志明 永刚 振华 立新 德明 家豪")
	femaleGiven = strings.Fields("芳 娜 敏 静 丽 艳 娟 霞 秀英 桂英 秀兰 玉兰 海燕 丽娟 婷婷 雪梅 欣怡 雨桐 子涵 思雨 晓燕 春梅 凤英 淑珍 佳怡 梦婷 慧敏 丽华 美玲 诗涵")
)

// idRegion is the address code of a sandbox person's ID number: the city's code, or for a
// province-wide entry (code ending in 0000: 广西 450000, 甘肃 620000) its capital's, xx0100
// (南宁 450100, 兰州 620100).
func idRegion(cityCode string) string {
	if strings.HasSuffix(cityCode, "0000") {
		return cityCode[:2] + "0100"
	}
	return cityCode
}

// SandboxPersons returns the test persons: for every preset city, one person of every scenario.
// The output is the same on every run and every machine (derived from a hash of city and
// scenario, no randomness):
//
//   - psn_no:  city code + 2-digit scenario number (1-based, order of Scenarios) + "0001",
//     e.g. 440300010001 is 深圳's employee.
//   - card_no: "C" + first 4 digits of the city code + 2-digit scenario number + "01" (9 chars).
//   - id_no:   18 digits, address code idRegion(city), a birth date plausible for the type
//     (employees 1972–1998, retirees 1945–1962, residents 1960–2004), a sequence whose first digit
//     is the scenario number and whose parity matches the name's sex, and the GB 11643 check digit.
//
// FindPerson picks one by city and scenario.
func SandboxPersons() []Person {
	var out []Person
	for _, c := range Cities() {
		for i, sc := range Scenarios() {
			out = append(out, sandboxPerson(c.Code, i+1, sc))
		}
	}
	return out
}

// FindPerson returns the sandbox person of cityID with scenario.
func FindPerson(cityID, scenario string) (Person, bool) {
	for i, sc := range Scenarios() {
		if sc == scenario {
			if _, ok := defaultPolicies.City(cityID); !ok {
				return Person{}, false
			}
			return sandboxPerson(cityID, i+1, sc), true
		}
	}
	return Person{}, false
}

func sandboxPerson(city string, n int, scenario string) Person {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%s", city, scenario)
	r := h.Sum64()
	next := func(m uint64) int {
		v := int(r % m)
		r /= m
		return v
	}
	psnType, insutype, status, balance := scenarioProfile(scenario)
	male := next(2) == 1
	name := string(surnames[next(uint64(len(surnames)))])
	if male {
		name += maleGiven[next(uint64(len(maleGiven)))]
	} else {
		name += femaleGiven[next(uint64(len(femaleGiven)))]
	}
	from, span := 1972, 27
	switch psnType {
	case PsnRetiree:
		from, span = 1945, 18
	case PsnResident:
		from, span = 1960, 45
	}
	birth := time.Date(from+next(uint64(span)), time.Month(1+next(12)), 1+next(28), 0, 0, 0, 0, time.UTC)
	seq := n*100 + next(50)*2 // 100..998, even
	if male {
		seq++
	}
	id17 := idRegion(city) + birth.Format("20060102") + fmt.Sprintf("%03d", seq)
	return Person{
		PsnNo:       fmt.Sprintf("%s%02d0001", city, n),
		Name:        name,
		IDNo:        id17 + string(IDCheckDigit(id17)),
		CardNo:      fmt.Sprintf("C%s%02d01", city[:4], n),
		CityID:      city,
		Scenario:    scenario,
		PIN:         SandboxPIN,
		PsnType:     psnType,
		Insutype:    insutype,
		Status:      status,
		AcctBalance: balance,
	}
}

// IDCheckDigit and ValidIDNumber are the domain's (medpay.IDCheckDigit, medpay.ValidIDNumber).
var (
	IDCheckDigit  = medpay.IDCheckDigit
	ValidIDNumber = medpay.ValidIDNumber
)
