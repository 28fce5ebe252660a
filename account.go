package medpay

import (
	"context"
	"time"
)

// Account kinds: the platform's operators and a merchant's staff.
const (
	AccountOperator = "operator"
	AccountStaff    = "staff"
)

// Roles. Operators are admin (everything), reviewer (applications; no merchant suspension) or
// support (read-only, personal data masked). Staff are owner (the first user, who invites) or
// staff.
const (
	RoleAdmin    = "admin"
	RoleReviewer = "reviewer"
	RoleSupport  = "support"
	RoleOwner    = "owner"
	RoleStaff    = "staff"
)

// Account is a person who signs in to the console or the portal.
type Account struct {
	ID            int64
	Kind          string
	Email         string
	Name          string
	Role          string
	ApplicationID int64 // staff: the application they came with
	MerchantID    int64 // staff: the merchant, once approved
	PasswordHash  string
	TOTPSecret    string // clear in memory, sealed in storage
	TOTPOn        bool   // enrolment finished
	CreatedAt     time.Time
}

// MayUnmask reports whether the account's role may see personal data in clear (each look is
// audited).
func (a *Account) MayUnmask() bool { return a.Kind == AccountOperator && a.Role == RoleAdmin }

// Session is a signed-in browser.
type Session struct {
	Account   *Account
	MFA       bool // the second factor was given
	CreatedAt time.Time
	SeenAt    time.Time
	ExpiresAt time.Time // absolute end
}

// Session lifetimes.
const (
	SessionIdle     = 30 * time.Minute
	SessionAbsolute = 12 * time.Hour
)

// Login throttling: this many failures within LoginWindow block further attempts for the rest of
// the window, per account and (more loosely) per address.
const (
	LoginWindow          = 15 * time.Minute
	LoginFailuresAccount = 5
	LoginFailuresAddress = 20
)

// AuditEntry is one line of the append-only audit log.
type AuditEntry struct {
	ID         int64
	At         time.Time
	ActorID    int64
	Actor      string // "operator:<email>", "staff:<email>", or "applicant:<email>"
	MerchantID int64  // the merchant concerned, 0 for none
	Action     string
	Target     string
	Detail     string
	IP         string
}

// Application states.
const (
	AppSubmitted = "submitted"
	AppApproved  = "approved"
	AppRejected  = "rejected"
)

// Application asks for a merchant: seed §4's three prerequisites (the local authority's consent
// and 定点 status, an open cash channel, an application through the platform).
type Application struct {
	ID             int64
	Kind           string // KindHospital, KindPharmacy or KindProvider
	Name           string
	OrgCodg        string // 定点医药机构编码
	RegisterName   string // the name the bureau's register gives for OrgCodg, when it gives one
	Public         bool   // public hospitals follow the simplified path
	Level          int
	Cities         []string // asked for
	CashMchID      string   // the cash channel's merchant id
	MPAppID        string   // 公众号 or mini-program appid
	ContactName    string
	ContactPhone   string
	ContactEmail   string
	State          string
	Reason         string   // rejection reason, shown to the applicant
	ApprovedCities []string // subset of Cities
	MerchantID     int64
	ReviewedBy     int64
	ReviewedAt     time.Time
	CreatedAt      time.Time
}

// Simplified reports whether the application takes the public hospitals' path (seed §4: the
// 城市服务 route is open to public hospitals only): the consent document may be left out, the
// reviewer confirming public status with the local authority instead.
func (a *Application) Simplified() bool { return a.Public && a.Kind == KindHospital }

// Evidence is an uploaded document.
type Evidence struct {
	ContentType string
	Filename    string
	Data        []byte
	SHA256      string
}

// InstitutionRegister checks a 定点 code against the bureau's register of designated
// institutions and returns the registered name (empty when the register does not tell it).
type InstitutionRegister interface {
	CheckInstitution(ctx context.Context, orgCodg string) (name string, err error)
}

// MerchantChecker checks that a cash-channel merchant id exists and is open for payments.
type MerchantChecker interface {
	CheckMerchant(ctx context.Context, mchID string) error
}
