package bureau

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// coverage is the coverage list of docs/api/bureau.md (城市政策) with the codes chosen for it.
var coverage = map[string]string{
	"深圳": "440300", "成都": "510100", "汕头": "440500", "郑州": "410100", "铜川": "610200", "厦门": "350200",
	"广西": "450000", "嘉兴": "330400", "宁波": "330200", "开封": "410200", "武汉": "420100", "延安": "610600",
	"攀枝花": "510400", "白城": "220800", "长沙": "430100", "哈尔滨": "230100", "沈阳": "210100", "潍坊": "370700",
	"葫芦岛": "211400", "西安": "610100", "宝鸡": "610300", "咸阳": "610400", "榆林": "610800", "渭南": "610500",
	"安康": "610900", "商洛": "611000", "南京": "320100", "甘肃全省": "620000", "合肥": "340100", "青岛": "370200",
	"广州": "440100", "邯郸": "130400", "台州": "331000", "通化": "220500", "石家庄": "130100", "长春": "220100",
}

func TestPresetsCoverAllCities(t *testing.T) {
	t.Parallel()
	cities := Cities()
	got := map[string]string{}
	codes := map[string]bool{}
	for _, c := range cities {
		if !isDigits(c.Code, 6) {
			t.Errorf("%s: code %q is not 6 digits", c.Name, c.Code)
		}
		if codes[c.Code] {
			t.Errorf("code %s twice", c.Code)
		}
		codes[c.Code] = true
		got[c.Name] = c.Code
		researched := c.Code == "440300" || c.Code == "510100" || c.Code == "440100" || c.Code == "420100"
		if c.DefaultPolicy == researched {
			t.Errorf("%s: default_policy = %v", c.Name, c.DefaultPolicy)
		}
	}
	if diff := cmp.Diff(coverage, got); diff != "" {
		t.Fatalf("cities (-want +got):\n%s", diff)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, CST)
	for _, c := range cities {
		p, ok := PolicyFor(c.Code, at)
		if !ok {
			t.Fatalf("%s: no policy in force", c.Name)
		}
		for _, pt := range []string{PsnEmployee, PsnRetiree, PsnResident} {
			for lv := 0; lv <= MaxHospLevel; lv++ {
				r := p.Rule(pt, lv)
				if r.RatioPct <= 0 || r.RatioPct > 100 || r.AnnualLimitFen <= 0 || r.BSelfRatioPct != 10 {
					t.Errorf("%s %s level %d: implausible rule %+v", c.Name, pt, lv, r)
				}
			}
		}
		if c.DefaultPolicy {
			want := []Rule{{0, 70, 5000_00, 10}, {0, 70, 5000_00, 10}, {0, 60, 5000_00, 10}, {0, 50, 5000_00, 10}}
			for lv, w := range want {
				if r := p.Rule(PsnEmployee, lv); r != w {
					t.Errorf("%s default employee level %d = %+v, want %+v", c.Name, lv, r, w)
				}
			}
		}
	}
}

func TestPresetsResearchedFigures(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, CST)
	tests := []struct {
		city, psnType string
		want          [4]Rule // levels 0..3
	}{
		{"440300", PsnEmployee, [4]Rule{{0, 75, 10000_00, 10}, {0, 75, 10000_00, 10}, {0, 65, 10000_00, 10}, {0, 55, 10000_00, 10}}},
		{"440300", PsnRetiree, [4]Rule{{0, 75, 12000_00, 10}, {0, 75, 12000_00, 10}, {0, 65, 12000_00, 10}, {0, 55, 12000_00, 10}}},
		{"510100", PsnEmployee, [4]Rule{{200_00, 60, 2000_00, 10}, {200_00, 60, 2000_00, 10}, {200_00, 60, 2000_00, 10}, {200_00, 50, 2000_00, 10}}},
		{"510100", PsnRetiree, [4]Rule{{150_00, 60, 2500_00, 10}, {150_00, 60, 2500_00, 10}, {150_00, 60, 2500_00, 10}, {150_00, 50, 2500_00, 10}}},
		{"440100", PsnEmployee, [4]Rule{{0, 80, 8000_00, 10}, {0, 80, 8000_00, 10}, {0, 65, 8000_00, 10}, {0, 65, 8000_00, 10}}},
		{"440100", PsnRetiree, [4]Rule{{0, 80, 10000_00, 10}, {0, 80, 10000_00, 10}, {0, 65, 10000_00, 10}, {0, 65, 10000_00, 10}}},
		{"420100", PsnEmployee, [4]Rule{{0, 85, 3500_00, 10}, {0, 85, 3500_00, 10}, {0, 65, 3500_00, 10}, {0, 55, 3500_00, 10}}},
		{"420100", PsnRetiree, [4]Rule{{0, 85, 4500_00, 10}, {0, 85, 4500_00, 10}, {0, 65, 4500_00, 10}, {0, 55, 4500_00, 10}}},
	}
	for _, tt := range tests {
		p, ok := PolicyFor(tt.city, at)
		if !ok {
			t.Fatalf("%s: no policy", tt.city)
		}
		for lv := range 4 {
			if got := p.Rule(tt.psnType, lv); got != tt.want[lv] {
				t.Errorf("%s %s level %d = %+v, want %+v", tt.city, tt.psnType, lv, got, tt.want[lv])
			}
		}
	}
	p, _ := PolicyFor("440300", at)
	if p.Rule(PsnEmployee, 7) != p.Rule(PsnEmployee, 3) || p.Rule(PsnEmployee, -1) != p.Rule(PsnEmployee, 0) {
		t.Error("levels are not clamped")
	}
}

const versionedPresets = `{
  "cities": [
    {"code": "440300", "name": "深圳", "default_policy": false, "versions": [
      {"effective": "2026-01-01", "b_self_ratio_pct": 15,
       "employee": [{"level":0,"deductible_fen":0,"ratio_pct":80,"annual_limit_fen":100},{"level":1,"deductible_fen":0,"ratio_pct":80,"annual_limit_fen":100},{"level":2,"deductible_fen":0,"ratio_pct":70,"annual_limit_fen":100},{"level":3,"deductible_fen":0,"ratio_pct":60,"annual_limit_fen":100}],
       "retiree": [{"level":0,"deductible_fen":0,"ratio_pct":80,"annual_limit_fen":100},{"level":1,"deductible_fen":0,"ratio_pct":80,"annual_limit_fen":100},{"level":2,"deductible_fen":0,"ratio_pct":70,"annual_limit_fen":100},{"level":3,"deductible_fen":0,"ratio_pct":60,"annual_limit_fen":100}],
       "resident": [{"level":3,"deductible_fen":0,"ratio_pct":40,"annual_limit_fen":100},{"level":2,"deductible_fen":0,"ratio_pct":50,"annual_limit_fen":100},{"level":1,"deductible_fen":0,"ratio_pct":60,"annual_limit_fen":100},{"level":0,"deductible_fen":0,"ratio_pct":60,"annual_limit_fen":100}]},
      {"effective": "2020-01-01", "b_self_ratio_pct": 10,
       "employee": [{"level":0,"deductible_fen":0,"ratio_pct":75,"annual_limit_fen":100},{"level":1,"deductible_fen":0,"ratio_pct":75,"annual_limit_fen":100},{"level":2,"deductible_fen":0,"ratio_pct":65,"annual_limit_fen":100},{"level":3,"deductible_fen":0,"ratio_pct":55,"annual_limit_fen":100}],
       "retiree": [{"level":0,"deductible_fen":0,"ratio_pct":75,"annual_limit_fen":100},{"level":1,"deductible_fen":0,"ratio_pct":75,"annual_limit_fen":100},{"level":2,"deductible_fen":0,"ratio_pct":65,"annual_limit_fen":100},{"level":3,"deductible_fen":0,"ratio_pct":55,"annual_limit_fen":100}],
       "resident": [{"level":0,"deductible_fen":0,"ratio_pct":60,"annual_limit_fen":100},{"level":1,"deductible_fen":0,"ratio_pct":60,"annual_limit_fen":100},{"level":2,"deductible_fen":0,"ratio_pct":50,"annual_limit_fen":100},{"level":3,"deductible_fen":0,"ratio_pct":40,"annual_limit_fen":100}]}
    ]}
  ]
}`

func TestPolicyVersionByDate(t *testing.T) {
	t.Parallel()
	ps, err := LoadPolicies([]byte(versionedPresets))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at       time.Time
		ok       bool
		ratio3   int
		bRatio   int
		resident int // level 3
	}{
		{time.Date(2019, 12, 31, 23, 59, 59, 0, CST), false, 0, 0, 0},
		{time.Date(2020, 1, 1, 0, 0, 0, 0, CST), true, 55, 10, 40},
		{time.Date(2025, 12, 31, 23, 59, 59, 0, CST), true, 55, 10, 40},
		// 2025-12-31 16:00 UTC is 2026-01-01 00:00 CST: the new version is in force.
		{time.Date(2025, 12, 31, 16, 0, 0, 0, time.UTC), true, 60, 15, 40},
		{time.Date(2025, 12, 31, 15, 59, 59, 0, time.UTC), true, 55, 10, 40},
		{time.Date(2030, 1, 1, 0, 0, 0, 0, CST), true, 60, 15, 40},
	}
	for _, tt := range tests {
		p, ok := ps.PolicyFor("440300", tt.at)
		if ok != tt.ok {
			t.Fatalf("at %v: ok = %v", tt.at, ok)
		}
		if !ok {
			continue
		}
		if r := p.Rule(PsnEmployee, 3); r.RatioPct != tt.ratio3 || r.BSelfRatioPct != tt.bRatio {
			t.Errorf("at %v: rule %+v, want ratio %d b %d", tt.at, r, tt.ratio3, tt.bRatio)
		}
		if r := p.Rule(PsnResident, 3); r.RatioPct != tt.resident {
			t.Errorf("at %v: resident level 3 = %+v (levels given out of order)", tt.at, r)
		}
	}
	if _, ok := ps.PolicyFor("999999", time.Now()); ok {
		t.Error("unknown city has a policy")
	}
	if got := len(ps.Policies()); got != 2 {
		t.Errorf("Policies() = %d versions, want 2", got)
	}
	if ps.Policies()[0].Effective.Year() != 2020 {
		t.Error("versions not sorted by date")
	}
}

func TestLoadPoliciesRejects(t *testing.T) {
	t.Parallel()
	tests := map[string]func(string) string{
		"short code":     func(s string) string { return strings.Replace(s, `"440300"`, `"4403"`, 1) },
		"no name":        func(s string) string { return strings.Replace(s, `"深圳"`, `""`, 1) },
		"bad date":       func(s string) string { return strings.Replace(s, `"2026-01-01"`, `"2026/01/01"`, 1) },
		"same date":      func(s string) string { return strings.Replace(s, `"2026-01-01"`, `"2020-01-01"`, 1) },
		"ratio over 100": func(s string) string { return strings.Replace(s, `"ratio_pct":80`, `"ratio_pct":180`, 1) },
		"repeated level": func(s string) string { return strings.Replace(s, `{"level":1,`, `{"level":0,`, 1) },
		"unknown field":  func(s string) string { return strings.Replace(s, `"default_policy"`, `"defualt_policy"`, 1) },
		"no b ratio":     func(s string) string { return strings.Replace(s, `"b_self_ratio_pct": 15,`, ``, 1) },
		"duplicate city": func(s string) string {
			i := strings.Index(s, `{"code"`)
			j := strings.LastIndex(s, "]")
			return s[:j] + "," + s[i:j] + s[j:]
		},
	}
	for name, edit := range tests {
		_, err := LoadPolicies([]byte(edit(versionedPresets)))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}
