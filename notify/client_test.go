package notify_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/medpay/medpay/notify"
)

func TestClientRefusesPrivateAddressesAtDial(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	if _, err := notify.Client(2*time.Second, false).Get(srv.URL); !errors.Is(err, notify.ErrURLNotAllowed) {
		t.Fatalf("loopback dialled: %v", err)
	}
	resp, err := notify.Client(2*time.Second, true).Get(srv.URL + "/redirect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect followed: %d", resp.StatusCode)
	}
}
