package apiv3

import (
	"context"
	"errors"
	"sync"
	"time"
)

// NonceStore remembers nonces against replay. Claim records key until expires and reports
// whether it was new; a key claimed before and not yet expired is a replay.
type NonceStore interface {
	Claim(ctx context.Context, key string, now, expires time.Time) (bool, error)
}

// MemoryNonces is the in-memory NonceStore of one process. Entries are purged once expired; when
// Max live entries are held it refuses new ones (fails closed) rather than forget.
type MemoryNonces struct {
	Max int // 0: one million

	mu     sync.Mutex
	m      map[string]time.Time
	nextGC time.Time
}

// ErrNonceStoreFull is returned by MemoryNonces.Claim when it holds Max live nonces.
var ErrNonceStoreFull = errors.New("apiv3: nonce store full")

// Claim implements NonceStore.
func (n *MemoryNonces) Claim(_ context.Context, key string, now, expires time.Time) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[string]time.Time{}
	}
	if until, ok := n.m[key]; ok && now.Before(until) {
		return false, nil
	}
	limit := n.Max
	if limit <= 0 {
		limit = 1_000_000
	}
	if len(n.m) >= limit || now.After(n.nextGC) {
		for k, until := range n.m {
			if !now.Before(until) {
				delete(n.m, k)
			}
		}
		n.nextGC = now.Add(time.Minute)
		if len(n.m) >= limit {
			return false, ErrNonceStoreFull
		}
	}
	n.m[key] = expires
	return true, nil
}
