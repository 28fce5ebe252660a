package http

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/medpay/medpay"
	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/secret"
)

// The application to become a merchant (seed §4), public at /apply.

// MaxEvidence bounds the consent document.
const MaxEvidence = 5 << 20

// Evidence types accepted, by their sniffed content type.
var evidenceTypes = map[string]bool{"application/pdf": true, "image/png": true, "image/jpeg": true}

var (
	// 定点医药机构编码: H (medical) or P (pharmacy), the 6-digit region, 5 digits.
	orgCodgPattern = regexp.MustCompile(`^[HP][0-9]{11}$`)
	// A WeChat Pay merchant id: 8 to 10 digits.
	cashMchIDPattern = regexp.MustCompile(`^[0-9]{8,10}$`)
	mpAppIDPattern   = regexp.MustCompile(`^wx[0-9a-f]{16}$`)
	phonePattern     = regexp.MustCompile(`^[0-9+\- ]{7,20}$`)
	emailPattern     = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

// sandboxRegister stands for the bureau's register of designated institutions in the sandbox:
// every well-formed code is accepted and no registered name is returned. In production the
// platform must be given a register that asks the bureau (the national interface's institution
// query); without one, applications are refused rather than let through unchecked.
type sandboxRegister struct{}

func (sandboxRegister) CheckInstitution(_ context.Context, orgCodg string) (string, error) {
	if !orgCodgPattern.MatchString(orgCodg) {
		return "", errors.New("定点机构编码格式不正确(H 或 P 加 11 位数字)")
	}
	return "", nil
}

// sandboxMerchants stands for the cash channel's merchant query in the sandbox: every well-formed
// merchant id is open. In production it must ask the cash channel whether the merchant exists and
// may take payments.
type sandboxMerchants struct{}

func (sandboxMerchants) CheckMerchant(_ context.Context, mchID string) error {
	if !cashMchIDPattern.MatchString(mchID) {
		return errors.New("微信支付商户号格式不正确(8 至 10 位数字)")
	}
	return nil
}

// unconfigured refuses every check: production without a register or a merchant checker.
type unconfigured struct{ what string }

func (u unconfigured) CheckInstitution(context.Context, string) (string, error) {
	return "", errors.New(u.what + "尚未接入,暂不能受理申请")
}

func (u unconfigured) CheckMerchant(context.Context, string) error {
	return errors.New(u.what + "尚未接入,暂不能受理申请")
}

func (s *Server) institutionRegister() medpay.InstitutionRegister {
	if s.cfg.Register != nil {
		return s.cfg.Register
	}
	if s.cfg.Sandbox {
		return sandboxRegister{}
	}
	return unconfigured{"医保定点机构登记查询"}
}

func (s *Server) merchantChecker() medpay.MerchantChecker {
	if s.cfg.CashMerchants != nil {
		return s.cfg.CashMerchants
	}
	if s.cfg.Sandbox {
		return sandboxMerchants{}
	}
	return unconfigured{"支付渠道商户查询"}
}

// applyForm is the application form's state.
type applyForm struct {
	Kind, Name, OrgCodg, Level, CashMchID, MPAppID string
	Public                                         bool
	Cities                                         []string
	ContactName, ContactPhone, ContactEmail        string
	AllCities                                      []bureau.City
	Errors                                         map[string]string
	Submitted                                      *medpay.Application
}

func (s *Server) applyPage(w http.ResponseWriter, r *http.Request) {
	s.renderWeb(w, http.StatusOK, "apply.html", &webData{Title: "申请接入医保移动支付", Area: "apply",
		Data: &applyForm{Kind: medpay.KindHospital, Level: "3", AllCities: bureau.Cities()}})
}

// MaxApplicationsPerAddress bounds the applications one address may submit within
// medpay.LoginWindow (counted with the login throttle's counters).
const MaxApplicationsPerAddress = 10

// applySubmit checks and stores an application.
func (s *Server) applySubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	throttleKey := "apply:" + s.clientIP(r)
	if n, err := s.store.LoginFailures(ctx, throttleKey, s.now()); err != nil {
		s.webError(w, r, "apply", err)
		return
	} else if n >= MaxApplicationsPerAddress {
		s.renderWeb(w, http.StatusTooManyRequests, "message.html", &webData{Title: "提交过于频繁", Area: "apply",
			Error: "同一地址提交的申请过多,请 15 分钟后再试。"})
		return
	}
	if err := r.ParseMultipartForm(MaxEvidence + 64<<10); err != nil {
		s.renderWeb(w, http.StatusBadRequest, "message.html", &webData{Title: "申请无效", Area: "apply",
			Error: "表单无效或附件超过 5 MB。"})
		return
	}
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	f := &applyForm{Kind: v("kind"), Name: v("name"), OrgCodg: strings.ToUpper(v("org_codg")), Level: v("level"),
		CashMchID: v("cash_mchid"), MPAppID: v("mp_appid"), Public: v("public") == "1", Cities: r.PostForm["city"],
		ContactName: v("contact_name"), ContactPhone: v("contact_phone"), ContactEmail: v("contact_email"),
		AllCities: bureau.Cities(), Errors: map[string]string{}}
	bad := func(field, msg string) { f.Errors[field] = msg }
	switch f.Kind {
	case medpay.KindHospital, medpay.KindPharmacy, medpay.KindProvider:
	default:
		bad("kind", "请选择机构类型")
	}
	if f.Name == "" || len([]rune(f.Name)) > 64 {
		bad("name", "请填写机构名称(不超过 64 字)")
	}
	level, err := strconv.Atoi(f.Level)
	if err != nil || level < 0 || level > 3 {
		bad("level", "请选择医院等级")
	}
	if f.Kind != medpay.KindProvider {
		if len(f.Cities) == 0 {
			bad("city", "请至少选择一个开通城市")
		}
		for _, c := range f.Cities {
			if _, ok := bureau.DefaultPolicies().City(c); !ok {
				bad("city", "城市 "+c+" 不在覆盖范围内")
			}
		}
	} else {
		f.Cities, level, f.Public = nil, 0, false
	}
	if len(f.Cities) > 50 {
		bad("city", "城市过多")
	}
	var registerName string
	if f.Kind != medpay.KindProvider || f.OrgCodg != "" {
		name, err := s.institutionRegister().CheckInstitution(ctx, f.OrgCodg)
		if err != nil {
			bad("org_codg", "定点机构编码未通过核验:"+err.Error())
		}
		registerName = name
	}
	if err := s.merchantChecker().CheckMerchant(ctx, f.CashMchID); err != nil {
		bad("cash_mchid", "支付商户号未通过核验:"+err.Error())
	}
	if !mpAppIDPattern.MatchString(f.MPAppID) {
		bad("mp_appid", "公众号或小程序 appid 格式不正确(wx 加 16 位十六进制)")
	}
	if f.ContactName == "" || len([]rune(f.ContactName)) > 32 {
		bad("contact_name", "请填写联系人")
	}
	if !phonePattern.MatchString(f.ContactPhone) {
		bad("contact_phone", "请填写有效的联系电话")
	}
	if !emailPattern.MatchString(f.ContactEmail) || len(f.ContactEmail) > 128 {
		bad("contact_email", "请填写有效的邮箱")
	}
	password := r.PostFormValue("password")
	if len([]rune(password)) < secret.MinPasswordLen || len(password) > 128 {
		bad("password", fmt.Sprintf("密码至少 %d 位", secret.MinPasswordLen))
	}
	ev, evErr := readEvidence(r)
	a := &medpay.Application{Kind: f.Kind, Public: f.Public && f.Kind == medpay.KindHospital}
	switch {
	case evErr != nil:
		bad("consent", evErr.Error())
	case ev == nil && !a.Simplified():
		bad("consent", "请上传当地医保主管部门的同意文件(PDF 或图片)")
	}
	if len(f.Errors) > 0 {
		s.renderWeb(w, http.StatusUnprocessableEntity, "apply.html", &webData{Title: "申请接入医保移动支付", Area: "apply",
			Error: "请修改标出的内容后重新提交。", Data: f})
		return
	}
	a.Name, a.OrgCodg, a.RegisterName, a.Level, a.Cities = f.Name, f.OrgCodg, registerName, level, f.Cities
	a.CashMchID, a.MPAppID = f.CashMchID, f.MPAppID
	a.ContactName, a.ContactPhone, a.ContactEmail = f.ContactName, f.ContactPhone, f.ContactEmail
	a.CreatedAt = s.now()
	owner := &medpay.Account{Email: f.ContactEmail, Name: f.ContactName, PasswordHash: secret.HashPassword(password)}
	if err := s.store.CreateApplication(ctx, a, ev, owner, s.clientIP(r)); errors.Is(err, medpay.ErrConflict) {
		f.Errors["contact_email"] = "该邮箱已有账号,请直接登录机构门户"
		s.renderWeb(w, http.StatusConflict, "apply.html", &webData{Title: "申请接入医保移动支付", Area: "apply",
			Error: "请修改标出的内容后重新提交。", Data: f})
		return
	} else if err != nil {
		s.webError(w, r, "apply", err)
		return
	}
	if _, err := s.store.RecordLoginFailure(ctx, throttleKey, s.now()); err != nil {
		s.logger.Error("apply throttle", "err", err)
	}
	s.renderWeb(w, http.StatusOK, "applied.html", &webData{Title: "申请已提交", Area: "apply", Data: a})
}

// readEvidence reads the uploaded consent document, checking its size and its type by content
// (the browser's claimed type and the file name are not trusted). No file gives nil, nil.
func readEvidence(r *http.Request) (*medpay.Evidence, error) {
	file, hdr, err := r.FormFile("consent")
	if errors.Is(err, http.ErrMissingFile) {
		return nil, nil
	}
	if err != nil {
		return nil, errors.New("附件无法读取")
	}
	defer file.Close()
	if hdr.Size > MaxEvidence {
		return nil, errors.New("附件不能超过 5 MB")
	}
	data, err := io.ReadAll(io.LimitReader(file, MaxEvidence+1))
	if err != nil {
		return nil, errors.New("附件无法读取")
	}
	if len(data) > MaxEvidence {
		return nil, errors.New("附件不能超过 5 MB")
	}
	if len(data) == 0 {
		return nil, nil
	}
	ctype := http.DetectContentType(data)
	if !evidenceTypes[ctype] {
		return nil, errors.New("附件须为 PDF、PNG 或 JPEG 文件")
	}
	name := hdr.Filename
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if len(name) > 100 {
		name = name[:100]
	}
	return &medpay.Evidence{ContentType: ctype, Filename: name, Data: data}, nil
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func cityName(code string) string {
	if c, ok := bureau.DefaultPolicies().City(code); ok {
		return c.Name
	}
	return code
}
