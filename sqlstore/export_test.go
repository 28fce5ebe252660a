package sqlstore

// Hooks for the external tests (package sqlstore_test).
var Retryable = retryable

const MaxTxAttempts = maxTxAttempts
