package http

import "testing"

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted := []string{"10.0.0.0/8", "192.0.2.1"}
	for _, c := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"203.0.113.5:4000", []string{"1.1.1.1"}, "203.0.113.5"}, // not a proxy: the header is ignored
		{"[2001:db8::5]:4000", nil, "2001:db8::5"},
		{"10.0.0.2:4000", nil, "10.0.0.2"},
		{"10.0.0.2:4000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"10.0.0.2:4000", []string{"198.51.100.7, 10.0.0.3"}, "198.51.100.7"},
		// The client's own line comes first; the proxy added the real address on a line of its own.
		{"10.0.0.2:4000", []string{"127.0.0.1", "198.51.100.7"}, "198.51.100.7"},
		{"10.0.0.2:4000", []string{"127.0.0.1, 10.0.0.9", "198.51.100.7, 192.0.2.1"}, "198.51.100.7"},
		// Spoofed hops left of the first untrusted one prove nothing.
		{"10.0.0.2:4000", []string{"10.0.0.5, 198.51.100.7"}, "198.51.100.7"},
		{"10.0.0.2:4000", []string{"198.51.100.7:5555"}, "198.51.100.7"},
		{"10.0.0.2:4000", []string{"[2001:db8::7]:5555"}, "2001:db8::7"},
		{"10.0.0.2:4000", []string{"unknown, 10.0.0.4"}, "unknown"},
		{"10.0.0.2:4000", []string{" , "}, "10.0.0.2"},
		// Every hop trusted: the leftmost is the client.
		{"10.0.0.2:4000", []string{"10.0.0.7, 10.0.0.8"}, "10.0.0.7"},
	} {
		if got := clientAddr(c.remote, c.xff, trusted); got != c.want {
			t.Errorf("clientAddr(%s, %q) = %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}
