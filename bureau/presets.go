package bureau

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/medpay/medpay"
)

// City presets (docs/api/bureau.md (城市政策)): one embedded data file, presets.json, versioned by effective date.
// An operator edits the file (or loads another with LoadPolicies); the code holds no figures.

//go:embed presets.json
var presetsJSON []byte

// Person types.
const (
	PsnEmployee = "employee" // 在职
	PsnRetiree  = "retiree"  // 退休
	PsnResident = "resident" // 居民
)

// Hospital levels: 0 社区, 1 一级, 2 二级, 3 三级.
const (
	HospCommunity = 0
	MaxHospLevel  = 3
)

// CST is China Standard Time (UTC+8, no daylight saving): effective dates, accumulator years,
// statement days and setl_time are in this zone. A fixed zone needs no tzdata.
var CST = medpay.CST

// City is one entry of the coverage list.
type City struct {
	Code          string `json:"code"` // 6-digit administrative code
	Name          string `json:"name"` // Chinese name
	DefaultPolicy bool   `json:"default_policy"`
}

// CityPolicy is one version of a city's policy.
type CityPolicy struct {
	City
	Note          string
	Effective     time.Time // 00:00 CST of the effective date
	Source        string
	BSelfRatioPct int
	rules         map[string][MaxHospLevel + 1]Rule
}

// Rule returns the rule for psnType (PsnEmployee, PsnRetiree, PsnResident) at hospLevel. A level
// outside 0..3 is clamped; an unknown person type gets the employee rule (callers validate first).
func (p *CityPolicy) Rule(psnType string, hospLevel int) Rule {
	hospLevel = min(max(hospLevel, 0), MaxHospLevel)
	levels, ok := p.rules[psnType]
	if !ok {
		levels = p.rules[PsnEmployee]
	}
	r := levels[hospLevel]
	r.BSelfRatioPct = p.BSelfRatioPct
	return r
}

// PolicySet is a parsed presets file: every version of every city.
type PolicySet struct {
	cities   []City
	versions map[string][]*CityPolicy // by city code, sorted by Effective
}

type presetFile struct {
	About  []string     `json:"about"`
	Cities []presetCity `json:"cities"`
}

type presetCity struct {
	Code          string          `json:"code"`
	Name          string          `json:"name"`
	DefaultPolicy bool            `json:"default_policy"`
	Note          string          `json:"note"`
	Versions      []presetVersion `json:"versions"`
}

type presetVersion struct {
	Effective     string        `json:"effective"`
	Source        string        `json:"source"`
	BSelfRatioPct *int          `json:"b_self_ratio_pct"`
	Employee      []presetLevel `json:"employee"`
	Retiree       []presetLevel `json:"retiree"`
	Resident      []presetLevel `json:"resident"`
}

type presetLevel struct {
	Level *int `json:"level"`
	Rule
}

// LoadPolicies parses a presets file in the format of the embedded presets.json, checking every
// figure: 6-digit unique codes, names, distinct dates (YYYY-MM-DD), each person type with levels
// 0..3 exactly once, ratios 0..100, amounts not negative.
func LoadPolicies(data []byte) (*PolicySet, error) {
	var f presetFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("presets: %w", err)
	}
	if len(f.Cities) == 0 {
		return nil, fmt.Errorf("presets: no cities")
	}
	ps := &PolicySet{versions: make(map[string][]*CityPolicy)}
	for _, c := range f.Cities {
		if !isDigits(c.Code, 6) {
			return nil, fmt.Errorf("presets: city %q: code %q is not 6 digits", c.Name, c.Code)
		}
		if _, dup := ps.versions[c.Code]; dup {
			return nil, fmt.Errorf("presets: city code %s appears twice", c.Code)
		}
		if c.Name == "" {
			return nil, fmt.Errorf("presets: city %s: no name", c.Code)
		}
		if len(c.Versions) == 0 {
			return nil, fmt.Errorf("presets: city %s: no versions", c.Code)
		}
		city := City{Code: c.Code, Name: c.Name, DefaultPolicy: c.DefaultPolicy}
		var vs []*CityPolicy
		for _, v := range c.Versions {
			p, err := parseVersion(city, c.Note, v)
			if err != nil {
				return nil, fmt.Errorf("presets: city %s version %s: %w", c.Code, v.Effective, err)
			}
			vs = append(vs, p)
		}
		sort.Slice(vs, func(i, j int) bool { return vs[i].Effective.Before(vs[j].Effective) })
		for i := 1; i < len(vs); i++ {
			if vs[i].Effective.Equal(vs[i-1].Effective) {
				return nil, fmt.Errorf("presets: city %s: two versions effective %s", c.Code, vs[i].Effective.Format(time.DateOnly))
			}
		}
		ps.cities = append(ps.cities, city)
		ps.versions[c.Code] = vs
	}
	return ps, nil
}

func parseVersion(city City, note string, v presetVersion) (*CityPolicy, error) {
	eff, err := time.ParseInLocation(time.DateOnly, v.Effective, CST)
	if err != nil {
		return nil, fmt.Errorf("effective %q: want YYYY-MM-DD", v.Effective)
	}
	if v.BSelfRatioPct == nil {
		return nil, fmt.Errorf("b_self_ratio_pct missing")
	}
	if *v.BSelfRatioPct < 0 || *v.BSelfRatioPct > 100 {
		return nil, fmt.Errorf("b_self_ratio_pct %d outside 0..100", *v.BSelfRatioPct)
	}
	p := &CityPolicy{City: city, Note: note, Effective: eff, Source: v.Source, BSelfRatioPct: *v.BSelfRatioPct,
		rules: make(map[string][MaxHospLevel + 1]Rule)}
	for _, t := range []struct {
		psnType string
		levels  []presetLevel
	}{{PsnEmployee, v.Employee}, {PsnRetiree, v.Retiree}, {PsnResident, v.Resident}} {
		var rules [MaxHospLevel + 1]Rule
		var seen [MaxHospLevel + 1]bool
		if len(t.levels) != MaxHospLevel+1 {
			return nil, fmt.Errorf("%s: want levels 0..%d, have %d entries", t.psnType, MaxHospLevel, len(t.levels))
		}
		for _, l := range t.levels {
			if l.Level == nil || *l.Level < 0 || *l.Level > MaxHospLevel || seen[*l.Level] {
				return nil, fmt.Errorf("%s: level missing, out of 0..%d or repeated", t.psnType, MaxHospLevel)
			}
			if l.RatioPct < 0 || l.RatioPct > 100 || l.DeductibleFen < 0 || l.AnnualLimitFen < 0 {
				return nil, fmt.Errorf("%s level %d: ratio outside 0..100 or negative amount", t.psnType, *l.Level)
			}
			seen[*l.Level] = true
			rules[*l.Level] = l.Rule
		}
		p.rules[t.psnType] = rules
	}
	return p, nil
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Cities lists the set's cities in file order.
func (ps *PolicySet) Cities() []City { return slices.Clone(ps.cities) }

// Policies lists every version of every city, by city in file order, then by effective date.
func (ps *PolicySet) Policies() []*CityPolicy {
	var out []*CityPolicy
	for _, c := range ps.cities {
		out = append(out, ps.versions[c.Code]...)
	}
	return out
}

// PolicyFor returns the version of cityID's policy in force at at: the latest whose effective
// date (00:00 CST) is not after at. False when the city is unknown or no version was yet in force.
func (ps *PolicySet) PolicyFor(cityID string, at time.Time) (*CityPolicy, bool) {
	vs := ps.versions[cityID]
	for i := len(vs) - 1; i >= 0; i-- {
		if !vs[i].Effective.After(at) {
			return vs[i], true
		}
	}
	return nil, false
}

// City returns the city with code.
func (ps *PolicySet) City(code string) (City, bool) {
	for _, c := range ps.cities {
		if c.Code == code {
			return c, true
		}
	}
	return City{}, false
}

var defaultPolicies = func() *PolicySet {
	ps, err := LoadPolicies(presetsJSON)
	if err != nil {
		panic("bureau: embedded presets.json: " + err.Error())
	}
	return ps
}()

// DefaultPolicies is the set parsed from the embedded presets.json.
func DefaultPolicies() *PolicySet { return defaultPolicies }

// Policies lists every version of every city of the embedded presets.
func Policies() []*CityPolicy { return defaultPolicies.Policies() }

// PolicyFor returns the embedded preset of cityID in force at at.
func PolicyFor(cityID string, at time.Time) (*CityPolicy, bool) {
	return defaultPolicies.PolicyFor(cityID, at)
}

// Cities lists the cities of the embedded presets (the coverage list).
func Cities() []City { return defaultPolicies.Cities() }

// CityList is the coverage list as the platform's pages offer it.
func CityList() []medpay.City {
	var out []medpay.City
	for _, c := range Cities() {
		out = append(out, medpay.City{Code: c.Code, Name: c.Name})
	}
	return out
}
