package sqlstore

import (
	"sync"
	"time"
)

// CacheTTL is how long a Store keeps an access token or a merchant it has read, measured on the
// real clock. It bounds staleness across processes: a merchant changed by another process (a new
// API key, a suspension) is seen here at most CacheTTL later. Changes made through this Store
// are seen at once. It must stay well below any overlap window that relies on it (the token
// overlap is 5 minutes).
const CacheTTL = 2 * time.Second

// cacheMax bounds each cache; past it the cache starts again empty.
const cacheMax = 10000

// ttlCache keeps values read from the database for at most ttl of real time. The merchant and
// token caches never keep absence, so a row another process has just created is seen at once.
type ttlCache[V any] struct {
	ttl time.Duration
	now func() time.Time // the real clock; tests set their own
	mu  sync.Mutex
	m   map[string]ttlEntry[V]
	// gen counts forget calls: a read that began before one may have seen the row as it was
	// before the change that caused it, and is not kept (see begin and put).
	gen uint64
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time // monotonic
}

func newTTLCache[V any](ttl time.Duration) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, now: time.Now, m: make(map[string]ttlEntry[V])}
}

func (c *ttlCache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || !c.now().Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// readStart is taken before a read whose result may be kept: when the read began, and the
// generation of forgets it began in.
type readStart struct {
	at  time.Time
	gen uint64
}

// begin is called before reading what put will keep.
func (c *ttlCache[V]) begin() readStart {
	c.mu.Lock()
	defer c.mu.Unlock()
	return readStart{at: c.now(), gen: c.gen}
}

// put keeps v, read from the database after start: its lifetime counts from start, so a slow
// read does not stretch the bound. A read that overlapped a forget is not kept: it may have read
// the row before the commit that the forget follows.
func (c *ttlCache[V]) put(key string, v V, start readStart) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != start.gen {
		return
	}
	if len(c.m) >= cacheMax {
		clear(c.m)
	}
	c.m[key] = ttlEntry[V]{v: v, expires: start.at.Add(c.ttl)}
}

// forget drops the entries whose value matches, and keeps no read that is under way.
func (c *ttlCache[V]) forget(match func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.m {
		if match(e.v) {
			delete(c.m, k)
		}
	}
}
