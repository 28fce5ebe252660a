package apiv3

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Event types and resource types of the callbacks this package builds and reads.
const (
	EventTransactionSuccess = "TRANSACTION.SUCCESS"
	EventRefundSuccess      = "REFUND.SUCCESS"
	EventRefundAbnormal     = "REFUND.ABNORMAL"
	EventRefundClosed       = "REFUND.CLOSED"
	ResourceTypeEncrypted   = "encrypt-resource"
	OriginalTypeTransaction = "transaction"
	OriginalTypeRefund      = "refund"
)

// Notification is a callback's body. Resource holds the event's JSON sealed under the
// merchant's APIv3 key.
type Notification struct {
	ID           string   `json:"id"`
	CreateTime   string   `json:"create_time"` // RFC 3339
	ResourceType string   `json:"resource_type"`
	EventType    string   `json:"event_type"`
	Summary      string   `json:"summary"`
	Resource     Resource `json:"resource"`
}

// Resource is a callback's encrypted payload.
type Resource struct {
	OriginalType   string `json:"original_type"`
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
}

// NewNotification seals plaintext (the event's JSON) into a notification with a fresh nonce;
// associated data is the original type, as WeChat Pay sends it.
func NewNotification(apiv3Key []byte, id, eventType, summary, originalType string, created time.Time, plaintext []byte) (*Notification, error) {
	nonce := Nonce()[:NonceSize]
	ct, err := Seal(apiv3Key, nonce, originalType, plaintext)
	if err != nil {
		return nil, err
	}
	return &Notification{
		ID: id, CreateTime: created.Format(time.RFC3339), ResourceType: ResourceTypeEncrypted,
		EventType: eventType, Summary: summary,
		Resource: Resource{OriginalType: originalType, Algorithm: AlgorithmAESGCM, Ciphertext: ct,
			AssociatedData: originalType, Nonce: nonce},
	}, nil
}

// BuildCallback returns the body of n and the signed headers to POST it with.
func (s *Signer) BuildCallback(n *Notification) ([]byte, http.Header, error) {
	body, err := json.Marshal(n)
	if err != nil {
		return nil, nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if err := s.SignHeaders(h, body); err != nil {
		return nil, nil, err
	}
	return body, h, nil
}

// ParseCallback verifies a callback's headers and body with v, then opens its resource with the
// APIv3 key: it returns the notification and the event's JSON. Probes, bad signatures, replays
// and tampered resources are errors (wrapping ErrSignature or ErrDecrypt); the receiver answers
// them with a 4XX and {"code":"FAIL"}.
func ParseCallback(ctx context.Context, v *AnswerVerifier, apiv3Key []byte, h http.Header, body []byte) (*Notification, []byte, error) {
	if len(body) > MaxBody {
		return nil, nil, fmt.Errorf("%w: callback of %d bytes", ErrSignature, len(body))
	}
	if err := v.Verify(ctx, h, body); err != nil {
		return nil, nil, err
	}
	var n Notification
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&n); err != nil {
		return nil, nil, fmt.Errorf("apiv3: callback body: %w", err)
	}
	if n.ID == "" || n.EventType == "" {
		return nil, nil, fmt.Errorf("apiv3: callback without id or event_type")
	}
	if n.ResourceType != ResourceTypeEncrypted || n.Resource.Algorithm != AlgorithmAESGCM {
		return nil, nil, fmt.Errorf("apiv3: callback resource %q with algorithm %q", n.ResourceType, n.Resource.Algorithm)
	}
	pt, err := Open(apiv3Key, n.Resource.Nonce, n.Resource.AssociatedData, n.Resource.Ciphertext)
	if err != nil {
		return nil, nil, err
	}
	return &n, pt, nil
}

// CallbackFail is the body a receiver answers a callback it could not accept with.
func CallbackFail(message string) []byte {
	b, _ := json.Marshal(map[string]string{"code": "FAIL", "message": message})
	return b
}
