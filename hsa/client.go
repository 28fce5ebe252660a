package hsa

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm2"
)

const contentType = "application/json;charset=UTF-8"

// RoutePrefix is the path of the operations under a bureau's base URL.
const RoutePrefix = "/org/local/api/hos/"

// DefaultTimeout is the deadline of a call when Client.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxAnswer bounds what the client reads of an answer (a day's statement can be large).
const maxAnswer = 64 << 20

// ErrNoAnswer is wrapped by every failure of Call whose outcome is unknown: the request may or
// may not have been acted on (transport failure, timeout, an answer that does not open or
// verify, a replay refusal, the bureau's internal error). Query before doing anything else.
var ErrNoAnswer = errors.New("hsa: no answer from the bureau")

// Refusal is a signed refusal: the bureau answered and did not do what was asked.
type Refusal struct {
	Code    int
	Message string
	Data    json.RawMessage // the refusal's data, when it has some
}

func (r *Refusal) Error() string { return fmt.Sprintf("hsa: refused %d: %s", r.Code, r.Message) }

// Client calls a bureau.
type Client struct {
	BaseURL    string // e.g. http://127.0.0.1:8080/bureau
	AppID      string
	AppSecret  string
	PrivateKey *sm2.PrivateKey  // the institution's: signs requests
	BureauKey  *ecdsa.PublicKey // the bureau's: verifies answers
	HTTP       *http.Client     // default http.DefaultClient
	Timeout    time.Duration    // deadline of each call, default 10 s
	Now        func() time.Time // default time.Now
	// Window bounds how far a successful answer's timestamp may be from Now (default 5 min),
	// so an old answer replayed to the client is not taken for a new one.
	Window time.Duration
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Call seals data, POSTs it to <BaseURL>/org/local/api/hos/<route> and decodes the answer's data
// into out (when out is not nil). A signed refusal is a *Refusal; a failure whose outcome is
// unknown wraps ErrNoAnswer.
func (c *Client) Call(ctx context.Context, route string, data any, out any) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := Seal(c.AppID, c.AppSecret, c.PrivateKey, data, nil, c.now())
	if err != nil {
		return err // nothing was sent
	}
	body, _ := json.Marshal(req)
	url := strings.TrimSuffix(c.BaseURL, "/") + RoutePrefix + route
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", contentType)
	httpClient := c.HTTP
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	resp, err := httpClient.Do(hreq)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNoAnswer, route, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("%w: %s: reading the answer: %w", ErrNoAnswer, route, err)
	}
	if len(raw) > maxAnswer {
		return fmt.Errorf("%w: %s: answer over %d bytes", ErrNoAnswer, route, maxAnswer)
	}
	var env Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%w: %s: HTTP %d, not an envelope", ErrNoAnswer, route, resp.StatusCode)
	}
	got, err := c.open(&env)
	if err != nil {
		return fmt.Errorf("%w: %s: HTTP %d: %v", ErrNoAnswer, route, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || *env.Code == CodeInternal {
		return fmt.Errorf("%w: %s: HTTP %d: %d %s", ErrNoAnswer, route, resp.StatusCode, *env.Code, env.Message)
	}
	if *env.Code == CodeReplay {
		// Our envelopes are sealed anew for every call: someone sent this one before us.
		return fmt.Errorf("%w: %s: the bureau had already received this request: %s", ErrNoAnswer, route, env.Message)
	}
	if *env.Code != CodeOK || !*env.Success {
		return &Refusal{Code: *env.Code, Message: env.Message, Data: got}
	}
	if err := c.fresh(&env); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNoAnswer, route, err)
	}
	if out != nil && got != nil {
		if err := json.Unmarshal(got, out); err != nil {
			return fmt.Errorf("%w: %s: answer data: %v", ErrNoAnswer, route, err)
		}
	}
	return nil
}

// open checks the answer is for this client and verifies it: with the client's secret, or, for
// an envelope refusal without data, with the empty secret the bureau signs those with.
func (c *Client) open(env *Envelope) (json.RawMessage, error) {
	if env.Code == nil || env.Success == nil {
		return nil, errors.New("answer without code or success")
	}
	keyless := isEnvelopeCode(*env.Code) && env.EncData == "" && !*env.Success
	if env.AppID != c.AppID && !(keyless && env.AppID == "") {
		return nil, fmt.Errorf("answer for appId %q", env.AppID)
	}
	data, err := Open(env, c.AppSecret, c.BureauKey)
	if err != nil && keyless {
		data, err = Open(env, "", c.BureauKey)
	}
	return data, err
}

// fresh checks a successful answer's timestamp is within the window of the client's clock.
func (c *Client) fresh(env *Envelope) error {
	ts, err := env.Time()
	if err != nil {
		return err
	}
	window := c.Window
	if window <= 0 {
		window = DefaultWindow
	}
	if skew := c.now().Sub(ts); skew > window || skew < -window {
		return fmt.Errorf("answer timestamp %s is more than %v from our clock", env.Timestamp, window)
	}
	return nil
}
