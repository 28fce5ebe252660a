// Package bureau is the simulated social-insurance bureau (人社局/医保局) of docs/api/bureau.md: the
// "bank" of the product's analogy, implementing medpay.Bureau.
//
// It has three layers:
//
//   - the policy engine (calc.go), pure: ParseBill turns request_content into a Bill with
//     precise errors (*BillError names item and field), Calculate computes the split of
//     docs/api/bureau.md (计算) in integer fen and checks medfee_sumamt = hifp_pay + acct_pay + psn_cash_pay;
//   - the city presets (presets.json, embedded; presets.go): one entry per city of the coverage
//     list, versioned by effective date (China Standard Time), PolicyFor picks the version in
//     force;
//   - the simulator (simulator.go): persons, personal accounts, annual accumulators, settlements
//     and refunds in its own bureau_* tables, so it can be reconciled against the platform
//     (Statement) like a real bureau.
//
// # Sandbox persons
//
// SandboxPersons holds, for every preset city, one person of every scenario (Scenarios), all
// with PIN 123456. They are deterministic: psn_no is the city code, the 2-digit scenario number
// (1-based, in the order of Scenarios) and 0001 (440300010001 is 深圳's employee); card_no is "C",
// the first four digits of the city code, the scenario number and 01 (C44030101); the ID number
// is a valid 18-digit number whose address code is the city code (the capital's, xx0100, for the
// province-wide 广西 450000 and 甘肃 620000). FindPerson(city, scenario) returns one; Seed puts
// them in the database.
//
// # Scenarios
//
//   - employee, retiree, resident, acct_empty: ordinary persons (accounts 2 000 元, 5 000 元,
//     none, 0).
//   - suspended: VerifyIdentity succeeds (Status "suspended"); PreSettle and Settle are refused
//     with medpay.ErrBureauRejected (506).
//   - bureau_timeout: Settle is carried out when valid but always answers
//     medpay.ErrOutcomeUnknown, and QuerySettlement of the person's settlements answers
//     medpay.ErrOutcomeUnknown too; Reverse works. The platform must reverse, and then nothing
//     is taken.
//   - settle_lost: the Settle call that makes a settlement answers medpay.ErrOutcomeUnknown;
//     QuerySettlement and later Settle calls with that serial return the settlement.
//   - refund_unknown: the Refund call that makes a refund answers medpay.ErrOutcomeUnknown;
//     QueryRefund and later Refund calls with that serial return the refund.
//   - cash_declined: the cash channel's business; the bureau treats the person as an employee.
//
// "The first call" is the call whose transaction created the row, so the state survives a
// restart.
//
// # Reversal
//
// Reverse restores the account and the accumulators exactly and is idempotent. Reversing a
// serial under which nothing was settled records a tombstone that claims the serial, so that a
// settle arriving late is refused (a real bureau's 冲正 semantics). A reversed serial can never be
// settled again; a refunded settlement cannot be reversed.
package bureau
