package http_test

import (
	"strconv"
	"strings"

	"github.com/medpay/medpay/sqlstore"
)

func sqlstoreChange() sqlstore.OrderChange { return sqlstore.OrderChange{} }

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
