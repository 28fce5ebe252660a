package notify

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestPublicAddrEveryForm checks the one judgement of a notification target, as CheckURL makes it
// when a notify_url is accepted and as the dialer makes it when the worker connects, for every
// form that reaches private space: plain, IPv4-mapped and -compatible, NAT64, 6to4 and Teredo.
func TestPublicAddrEveryForm(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		addr   string
		public bool
	}{
		// IPv4.
		{"8.8.8.8", true},
		{"223.255.255.255", true},
		{"100.128.0.1", true}, // just above CGNAT
		{"198.20.0.1", true},  // just above benchmarking
		{"127.0.0.1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},         // 0.0.0.0/8
		{"100.64.0.1", false},      // shared address space (CGNAT)
		{"100.127.255.254", false}, // its last address
		{"198.18.0.1", false},      // benchmarking
		{"198.19.255.255", false},
		{"192.0.0.8", false},
		{"224.0.0.1", false},
		{"240.0.0.1", false},       // reserved
		{"255.255.255.255", false}, // broadcast
		// IPv6.
		{"2001:4860:4860::8888", true},
		{"::1", false},
		{"::", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"fec0::1", false}, // site-local
		{"ff02::1", false},
		{"2001:db8::1", false},
		// IPv4-mapped: judged as the IPv4 address.
		{"::ffff:8.8.8.8", true},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"::ffff:100.64.0.1", false},
		// IPv4-compatible (deprecated): refused whatever it embeds.
		{"::127.0.0.1", false},
		{"::8.8.8.8", false},
		// NAT64: judged by the embedded address; local-use NAT64 refused.
		{"64:ff9b::808:808", true},
		{"64:ff9b::7f00:1", false},    // 127.0.0.1
		{"64:ff9b::a00:1", false},     // 10.0.0.1
		{"64:ff9b::6440:1", false},    // 100.64.0.1
		{"64:ff9b::a9fe:a9fe", false}, // 169.254.169.254
		{"64:ff9b:1::808:808", false},
		// 6to4: judged by the embedded address.
		{"2002:808:808::1", true},
		{"2002:7f00:1::1", false},   // 127.0.0.1
		{"2002:c0a8:101::1", false}, // 192.168.1.1
		{"2002:a9fe:a9fe::1", false},
		// Teredo: the server (bits 32–63) and the client (last 32 bits, inverted).
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", true},  // server 65.54.227.120, client 8.8.8.8
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", false}, // client 10.0.0.1
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", false}, // client 127.0.0.1
		{"2001:0:a00:1::f7f7:f7f7", false},              // server 10.0.0.1
	} {
		a, err := netip.ParseAddr(c.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := publicAddr(a); got != c.public {
			t.Errorf("publicAddr(%s) = %v, want %v", c.addr, got, c.public)
		}
		// At dial time.
		err = dialControl("tcp", netip.AddrPortFrom(a, 443).String(), nil)
		if (err == nil) != c.public || (err != nil && !errors.Is(err, ErrURLNotAllowed)) {
			t.Errorf("dial %s: %v, want public=%v", c.addr, err, c.public)
		}
		// At order time (an address literal needs no resolver).
		if strings.Contains(c.addr, "%") {
			continue
		}
		host := c.addr
		if a.Is6() {
			host = "[" + host + "]"
		}
		err = CheckURL(context.Background(), "https://"+host+"/notify?x=1", false)
		if (err == nil) != c.public || (err != nil && !errors.Is(err, ErrURLNotAllowed)) {
			t.Errorf("CheckURL(%s): %v, want public=%v", c.addr, err, c.public)
		}
	}
}
