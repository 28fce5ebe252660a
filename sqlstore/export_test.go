package sqlstore

import "time"

// Hooks for the external tests (package sqlstore_test).
var Retryable = retryable

const MaxTxAttempts = maxTxAttempts

// SetCacheClock replaces the real clock that ages s's caches.
func SetCacheClock(s *Store, now func() time.Time) { s.tokens.now, s.merchants.now = now, now }

// ForgetMerchant is the hook that writes to a merchants row call.
func (s *Store) ForgetMerchant(id int64) { s.forgetMerchant(id) }
