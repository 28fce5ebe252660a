package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/medpay/medpay/client"
)

// exampleClient is the client of the examples: a hospital in independent mode.
func exampleClient() *client.Client {
	c, err := client.New(client.Config{
		BaseURL: "http://127.0.0.1:8080",
		AppID:   "wx0123456789abcdef",
		MchID:   "1900000001",
		APIKey:  "0123456789abcdef0123456789abcdef",
		Secret:  "the app secret",
	})
	if err != nil {
		log.Fatal(err)
	}
	return c
}

func ExampleNew() {
	c, err := client.New(client.Config{
		BaseURL:  "https://medpay.example.com",
		AppID:    "wx0123456789abcdef", // the hospital
		MchID:    "1900000001",
		APIKey:   "0123456789abcdef0123456789abcdef",
		Secret:   "the app secret",
		SignType: "HMAC-SHA256",
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = c
}

// A service provider acts for a hospital that authorised it: its own credentials, the hospital
// in SubAppID and SubMchID, the payer as SubOpenID.
func ExampleNew_serviceProvider() {
	c, err := client.New(client.Config{
		BaseURL:  "https://medpay.example.com",
		AppID:    "wxprovider00000001", // the service provider
		MchID:    "1900000009",
		APIKey:   "fedcba9876543210fedcba9876543210",
		Secret:   "the provider's app secret",
		SubAppID: "wx0123456789abcdef", // the hospital
		SubMchID: "1900000001",
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.QueryOrder(context.Background(), &client.QueryOrderRequest{HospOutTradeNo: "H20260302001"})
	if client.IsCode(err, "402") {
		log.Print("the hospital has not authorised this service provider")
	}
}

func ExampleClient_UnifiedOrder() {
	c := exampleClient()
	resp, err := c.UnifiedOrder(context.Background(), &client.UnifiedOrderRequest{
		OrderFields: client.OrderFields{
			OpenID:         "o-payer-openid",
			OrderType:      client.DiagPay,
			HospOutTradeNo: "H20260302001",
			HospitalName:   "深圳市人民医院",
			Body:           "门诊缴费",
			TotalFee:       6500, // fen
			CashFee:        1000,
			InsuranceFee:   5500,
			AllowFeeChange: 1, // take the bureau's split
			PayType:        client.PayCashInsurance,
			SpbillCreateIP: "203.0.113.7",
			CityID:         "440300",
			SerialNo:       "S20260302001",
			OrgNo:          "H44030000001",
			GmtOutCreate:   time.Now(),
		},
		NotifyURL: "https://his.example.com/medpay/notify",
		ReturnURL: "https://his.example.com/medpay/return",
	})
	switch {
	case client.IsCode(err, "511"):
		log.Print("the payer has no bound card: send them to GetBindURL")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("send the payer to", resp.PayURL, "to pay", resp.CashFee, "fen in cash")
	}
}

func ExampleClient_QueryOrder() {
	c := exampleClient()
	o, err := c.QueryOrder(context.Background(), &client.QueryOrderRequest{HospOutTradeNo: "H20260302001"})
	if err != nil {
		log.Fatal(err)
	}
	if o.Paid() {
		fmt.Println("paid at", o.TimeEnd, "cash", o.CashFee, "insurance", o.InsuranceFee)
	}
}

func ExampleClient_CloseOrder() {
	c := exampleClient()
	_, err := c.CloseOrder(context.Background(), &client.CloseOrderRequest{HospOutTradeNo: "H20260302001"})
	switch {
	case client.IsCode(err, "503"):
		fmt.Println("already paid: refund it instead")
	case client.IsCode(err, "505"):
		fmt.Println("the payer is confirming: try again shortly")
	case err != nil:
		log.Fatal(err)
	}
}

func ExampleClient_Refund() {
	c := exampleClient()
	req := &client.RefundRequest{
		HospOutTradeNo:  "H20260302001",
		HospOutRefundNo: "R20260302001",
		PartRefundType:  client.RefundCashOnly,
		CashRefundFee:   500,
		RefundReason:    "退药",
	}
	r, err := c.Refund(context.Background(), req)
	for attempt := 0; client.Retryable(err) && attempt < 3; attempt++ {
		// 553/556/599 or a timeout: the same refund number never pays out twice.
		time.Sleep(time.Second)
		r, err = c.Refund(context.Background(), req)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.MedRefundID, r.MedRefundState)
}

func ExampleClient_QueryRefund() {
	c := exampleClient()
	r, err := c.QueryRefund(context.Background(), &client.QueryRefundRequest{HospOutRefundNo: "R20260302001"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.MedRefundState, r.CashRefundFee, r.InsuranceRefundFee)
}

func ExampleClient_MicroPay() {
	c := exampleClient()
	o, err := c.MicroPay(context.Background(), &client.MicroPayRequest{
		AuthCode: "the scanned payment code",
		OrderFields: client.OrderFields{
			OpenID:         "o-payer-openid",
			OrderType:      client.RegPay,
			HospOutTradeNo: "H20260302002",
			HospitalName:   "深圳市人民医院",
			Body:           "挂号费",
			TotalFee:       2500,
			CashFee:        500,
			InsuranceFee:   2000,
			AllowFeeChange: 1,
			PayType:        client.PayCashInsurance,
			SpbillCreateIP: "203.0.113.7",
			SerialNo:       "S20260302002",
			OrgNo:          "H44030000001",
			GmtOutCreate:   time.Now(),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if o.MedTradeState == client.StateUserPaying {
		fmt.Println("the payer confirms on the phone: poll QueryOrder")
	}
}

func ExampleClient_GetMedInfo() {
	c := exampleClient()
	info, err := c.GetMedInfo(context.Background(), &client.GetMedInfoRequest{OpenID: "o-payer-openid"})
	if client.IsCode(err, "511") {
		fmt.Println("no card bound")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.UserName, info.MedicalCardNo, info.CityID)
}

func ExampleClient_GetBindURL() {
	c := exampleClient()
	u, err := c.GetBindURL(context.Background(), &client.GetBindURLRequest{
		OpenID: "o-payer-openid",
		URL:    "https://his.example.com/after-binding",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("redirect the payer to", u.BindURL)
}

func ExampleClient_BillDownload() {
	c := exampleClient()
	bill, err := c.BillDownload(context.Background(), &client.BillDownloadRequest{BillDate: "20260301", BillType: "ALL"})
	if client.IsCode(err, "520") {
		fmt.Println("no bill for that day")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", bill)
}

func ExampleClient_AccessToken() {
	c := exampleClient()
	tok, expires, err := c.AccessToken(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(tok) > 0, time.Until(expires) > 0)
}

func ExampleNotificationHandler() {
	const apiKey = "0123456789abcdef0123456789abcdef"
	seen := map[string]bool{} // a table keyed by notify_id in a real system
	http.Handle("/medpay/notify", client.NotificationHandler(apiKey, func(ctx context.Context, n *client.Notification) error {
		if seen[n.NotifyID] {
			return nil // a repeat: already done, answer SUCCESS again
		}
		switch n.NotifyType {
		case client.NotifyPay:
			fmt.Println("order", n.Order.HospOutTradeNo, "is", n.Order.MedTradeState)
		case client.NotifyRefund:
			fmt.Println("refund", n.Refund.HospOutRefundNo, "is", n.Refund.MedRefundState)
		}
		seen[n.NotifyID] = true
		return nil // returning an error makes the platform send it again later
	}))
}

func ExampleIsCode() {
	c := exampleClient()
	_, err := c.QueryOrder(context.Background(), &client.QueryOrderRequest{HospOutTradeNo: "H-unknown"})
	var apiErr *client.APIError
	var protoErr *client.ProtocolError
	switch {
	case client.IsCode(err, "502"):
		fmt.Println("no such order")
	case errors.As(err, &apiErr):
		fmt.Println("business error", apiErr.Code, apiErr.Description)
	case errors.As(err, &protoErr):
		fmt.Println("request refused:", protoErr.ReturnMsg, "rid", protoErr.RequestID)
	}
}
