package bureau

import (
	"github.com/medpay/medpay"

	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
)

func TestSandboxPersons(t *testing.T) {
	t.Parallel()
	persons := SandboxPersons()
	if want := len(Cities()) * len(Scenarios()); len(persons) != want {
		t.Fatalf("%d persons, want %d", len(persons), want)
	}
	seen := map[string]map[string]bool{} // kind → value
	unique := func(kind, v string) {
		if seen[kind] == nil {
			seen[kind] = map[string]bool{}
		}
		if seen[kind][v] {
			t.Errorf("%s %q twice", kind, v)
		}
		seen[kind][v] = true
	}
	covered := map[string]bool{}
	for _, p := range persons {
		unique("psn_no", p.PsnNo)
		unique("id_no", p.IDNo)
		unique("card_no", p.CardNo)
		covered[p.CityID+"/"+p.Scenario] = true
		if !ValidIDNumber(p.IDNo) {
			t.Errorf("%s: invalid ID %s", p.PsnNo, p.IDNo)
		}
		if p.IDNo[:6] != idRegion(p.CityID) || !strings.HasPrefix(p.PsnNo, p.CityID) {
			t.Errorf("%s: ID %s or psn_no not of city %s", p.PsnNo, p.IDNo, p.CityID)
		}
		if n := []rune(p.Name); len(n) < 2 || len(n) > 3 || !unicode.Is(unicode.Han, n[0]) {
			t.Errorf("%s: name %q", p.PsnNo, p.Name)
		}
		if len(p.CardNo) != 9 || p.PIN != "123456" {
			t.Errorf("%s: card %q pin %q", p.PsnNo, p.CardNo, p.PIN)
		}
		year, _ := strconv.Atoi(p.IDNo[6:10])
		wantType, wantInsutype, wantStatus, wantBalance := PsnEmployee, "310", StatusActive, int64(2000_00)
		lo, hi := 1972, 1998
		switch p.Scenario {
		case ScenarioRetiree:
			wantType, wantBalance, lo, hi = PsnRetiree, 5000_00, 1945, 1962
		case ScenarioResident:
			wantType, wantInsutype, wantBalance, lo, hi = PsnResident, "390", 0, 1960, 2004
		case ScenarioAcctEmpty:
			wantBalance = 0
		case ScenarioSuspended:
			wantStatus = StatusSuspended
		}
		if p.PsnType != wantType || p.Insutype != wantInsutype || p.Status != wantStatus || p.AcctBalance != wantBalance {
			t.Errorf("%s (%s): %+v", p.PsnNo, p.Scenario, p)
		}
		if year < lo || year > hi {
			t.Errorf("%s (%s): born %d, want %d..%d", p.PsnNo, p.Scenario, year, lo, hi)
		}
	}
	for _, c := range Cities() {
		for _, sc := range Scenarios() {
			if !covered[c.Code+"/"+sc] {
				t.Errorf("no %s person in %s", sc, c.Name)
			}
			p, ok := FindPerson(c.Code, sc)
			if !ok || p.CityID != c.Code || p.Scenario != sc {
				t.Errorf("FindPerson(%s, %s) = %+v, %v", c.Code, sc, p, ok)
			}
		}
	}
	if _, ok := FindPerson("999999", ScenarioEmployee); ok {
		t.Error("FindPerson found a person in an unknown city")
	}
	if _, ok := FindPerson("440300", "nobody"); ok {
		t.Error("FindPerson found a person of an unknown scenario")
	}
	// Province-wide entries use the capital's address code.
	if p, _ := FindPerson("450000", ScenarioEmployee); p.IDNo[:6] != "450100" {
		t.Errorf("广西 ID %s", p.IDNo)
	}
	if p, _ := FindPerson("620000", ScenarioEmployee); p.IDNo[:6] != "620100" {
		t.Errorf("甘肃 ID %s", p.IDNo)
	}
}

func TestSandboxPersonsDeterministic(t *testing.T) {
	t.Parallel()
	if diff := cmp.Diff(SandboxPersons(), SandboxPersons()); diff != "" {
		t.Fatalf("two runs differ:\n%s", diff)
	}
	// A fixed point, so that a change of the derivation shows up in review (and in the docs of
	// hospitals' test suites that hard-code a person).
	p, _ := FindPerson("440300", ScenarioEmployee)
	if p.PsnNo != "440300010001" || p.CardNo != "C44030101" {
		t.Fatalf("深圳 employee = %+v", p)
	}
}

func TestValidIDNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		want bool
	}{
		{"11010519491231002X", true}, // the example of GB 11643-1999
		{"440524188001010014", true}, // the other example of the standard
		{"110101199003074477", true},
		{"11010519491231002x", false}, // lower-case x: normalise first
		{"110105194912310021", false}, // wrong check digit
		{"110101199003074478", false},
		{"11010519491231002", false},   // 17 characters
		{"11010519491231002XX", false}, // 19
		{"1101051949123100AX", false},  // letter in the body
		{"110105194902300026", false},  // 30 February
		{"110105194913010025", false},  // month 13
		{"010105194912310025", false},  // address code starting with 0
		{"", false},
		{"１１０１０５１９４９１２３１００２Ｘ", false}, // full-width
	}
	for _, tt := range tests {
		if got := ValidIDNumber(tt.id); got != tt.want {
			t.Errorf("ValidIDNumber(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
	// Every check character is reachable, X included, and recomputed correctly.
	seen := map[byte]bool{}
	for _, p := range SandboxPersons() {
		seen[p.IDNo[17]] = true
		if IDCheckDigit(p.IDNo[:17]) != p.IDNo[17] {
			t.Fatalf("%s: check digit", p.IDNo)
		}
	}
	if len(seen) != 11 {
		t.Errorf("sandbox check characters %d distinct, want all 11", len(seen))
	}
	if IDCheckDigit("123") != 0 {
		t.Error("IDCheckDigit of a short input")
	}
}

func TestMasks(t *testing.T) {
	t.Parallel()
	id := "11010519491231002X"
	if m := medpay.MaskIDNo(id); m == id || !strings.HasSuffix(m, "002X") || strings.Contains(m, "19491231") || len(m) != len(id) {
		t.Errorf("medpay.MaskIDNo(%s) = %s", id, m)
	}
	tests := []struct{ got, want string }{
		{medpay.MaskCardNo("C44030101"), "*****0101"},
		{medpay.MaskCardNo("123"), "***"},
		{medpay.MaskName("张三丰")[:len("张")], "张"},
		{medpay.MaskName("李娜"), "李*"},
		{medpay.MaskName(""), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if strings.Contains(medpay.MaskName("张三丰"), "三") {
		t.Error("MaskName keeps more than the first character")
	}
}
