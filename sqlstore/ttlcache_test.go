package sqlstore

import (
	"testing"
	"time"
)

// A read that began before a forget (the forget follows the commit of a change) may hold the row
// as it was before the change: it is not kept, or this process would see the old row for up to
// the TTL after its own change.
func TestTTLCacheReadOverlappingForget(t *testing.T) {
	c := newTTLCache[int](time.Minute)
	start := c.begin()
	c.forget(func(int) bool { return true })
	c.put("k", 1, start)
	if _, ok := c.get("k"); ok {
		t.Fatal("a read that overlapped a forget was kept")
	}
	start = c.begin()
	c.put("k", 2, start)
	if v, ok := c.get("k"); !ok || v != 2 {
		t.Fatalf("a read after the forget was not kept: %d %v", v, ok)
	}
}
