package national_test

import (
	"testing"
	"time"

	"github.com/medpay/medpay/bureau/bureautest"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// TestConformance runs the medpay.Bureau suite against the network client talking to the
// served simulator over real HTTP, the national protocol in between.
func TestConformance(t *testing.T) {
	t.Parallel()
	bureautest.Run(t, func(t *testing.T) *bureautest.Harness {
		s := bureautest.Serve(t, sqlstoretest.Open(t, sqlstoretest.Engines()[0]), nil, 0)
		c := s.Client(t, 30*time.Second)
		return &bureautest.Harness{Bureau: c, Sandbox: c, Impatient: s.Client(t, time.Second), Now: time.Now,
			AuthCode: func(t *testing.T, idNo, scope string) string { return s.AuthCode(t, idNo, scope) }}
	})
}
