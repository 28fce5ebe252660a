// Package hsa speaks the envelope of the national medical-insurance mobile-payment protocol
// (医保移动支付, national.md §1–2) on both sides of the wire: the client a platform or hospital uses
// to call a bureau, and the handler a bureau uses to open requests and seal answers.
//
// Every request and answer is one JSON object, the envelope:
//
//	{"appId":"…","encType":"SM4","signType":"SM2","version":"2.0.1","timestamp":"yyyyMMddHHmmss",
//	 "encData":"<upper-case hex>","signData":"<base64 r‖s>"}
//
// An answer adds "code" (0 is success), "message" and "success". The business data is cleaned
// (null, "", {} and [] dropped), signed in plaintext with SM3withSM2 (user id 1234567812345678,
// raw 64-byte r‖s) over the sign string of SignString, then encrypted with SM4-ECB/PKCS#7 under a
// key derived from appId and appSecret (DeriveKey). The receiver decrypts, then verifies, and
// treats anything that does not verify as not received (fail closed).
//
// # Refusal codes
//
// The handler refuses a request that does not open with a signed envelope carrying success false,
// no encData and one of these codes (HTTP 200; the 1000–1999 range is the envelope's, business
// refusals of the operations use other numbers):
//
//	1001 CodeMalformed      not an envelope: bad JSON, missing field, wrong encType/signType, bad timestamp
//	1002 CodeUnknownApp     no institution has this appId
//	1003 CodeUndecryptable  encData is not hex, not SM4 under the institution's key, or not JSON
//	1004 CodeBadSignature   signData does not verify with the institution's public key
//	1005 CodeStaleTimestamp timestamp more than Handler.Window (5 min) away from the bureau's clock
//	1006 CodeReplay         the same (appId, signData) was received in the last 10 minutes
//	1007 CodeTooLarge       body over Handler.MaxBody (1 MiB)
//	1500 CodeInternal       the bureau failed (HTTP 500); the outcome is unknown to the caller
//
// These envelope refusals are signed by the bureau with an empty appSecret in the sign string
// ("…&key="): the request may not have come from the holder of the secret on file, and the
// caller must be able to read why it was refused even when its own secret is wrong. Business
// answers, including business refusals, are signed with the institution's appSecret.
//
// Client.Call reports a refusal as *Refusal, except CodeReplay and CodeInternal, which mean the
// request may have been acted on: those, like a timeout or an answer that does not verify, are
// errors wrapping ErrNoAnswer.
package hsa
