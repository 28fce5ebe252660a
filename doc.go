// Package medpay holds the domain of the medical-insurance mobile payment platform: merchants,
// orders and their states, the bureau and cash-channel interfaces, and the error codes of the open
// API. It imports nothing of the project; the adapters (wire, http, sqlstore, bureau, cash) depend
// on it.
package medpay
