package bureau_test

import (
	"context"
	"testing"
	"time"

	"github.com/medpay/medpay/bureau"
	"github.com/medpay/medpay/bureau/bureautest"
	"github.com/medpay/medpay/sqlstore/sqlstoretest"
)

// TestConformance runs the medpay.Bureau suite against the in-process simulator, on every engine.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, engine := range sqlstoretest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			bureautest.Run(t, func(t *testing.T) *bureautest.Harness {
				db := sqlstoretest.Open(t, engine)
				sim, err := bureau.Open(context.Background(), db, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := sim.Seed(context.Background()); err != nil {
					t.Fatal(err)
				}
				sim.BaseURL = "http://bureau.example"
				return &bureautest.Harness{Bureau: sim, Sandbox: sim, Impatient: sim, Now: time.Now,
					AuthCode: func(t *testing.T, idNo, scope string) string {
						p, err := sim.PersonByIDNo(context.Background(), idNo)
						if err != nil {
							t.Fatal(err)
						}
						code, err := sim.IssueAuthCode(context.Background(), p.PsnNo, scope)
						if err != nil {
							t.Fatal(err)
						}
						return code
					}}
			})
		})
	}
}
