package medins

import api "github.com/medpay/medpay/client/medins"

// The wire types are the SDK's (package client/medins), so both sides speak one set.
type (
	Payer             = api.Payer
	CashAdd           = api.CashAdd
	CashReduce        = api.CashReduce
	OrderRequest      = api.OrderRequest
	Order             = api.Order
	RefundNotify      = api.RefundNotify
	PrepayRequest     = api.PrepayRequest
	PrepayState       = api.PrepayState
	CashRefundRequest = api.CashRefundRequest
	CashRefund        = api.CashRefund
)

// Paths, pay types and states, as the SDK names them.
const (
	PathOrders        = api.PathOrders
	PathByMixTradeNo  = api.PathByMixTradeNo
	PathByOutTradeNo  = api.PathByOutTradeNo
	PathRefundsNotify = api.PathRefundsNotify
	PathJSAPI         = api.PathJSAPI
	PathJSAPIByOutNo  = api.PathJSAPIByOutNo
	PathRefunds       = api.PathRefunds
	CashOnly          = api.CashOnly
	InsuranceOnly     = api.InsuranceOnly
	CashAndInsurance  = api.CashAndInsurance
	MixCreated        = api.MixCreated
	MixSuccess        = api.MixSuccess
	MixRefund         = api.MixRefund
	MixFail           = api.MixFail
	SelfCreated       = api.SelfCreated
	SelfSuccess       = api.SelfSuccess
	SelfRefund        = api.SelfRefund
	SelfFail          = api.SelfFail
	NoSelfPay         = api.NoSelfPay
	MedCreated        = api.MedCreated
	MedSuccess        = api.MedSuccess
	MedRefund         = api.MedRefund
	MedFail           = api.MedFail
	NoMedPay          = api.NoMedPay
)

// OrderTypes are the order_type values of v3.md §2.
var OrderTypes = api.OrderTypes
