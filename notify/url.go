package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrURLNotAllowed is wrapped by the errors of CheckURL and of a refused dial.
var ErrURLNotAllowed = errors.New("notify url not allowed")

// MaxURLLength bounds a notify_url.
const MaxURLLength = 512

// CheckURL checks that raw is an absolute http or https URL with a host and no user
// information. Unless allowPrivate, the host must also resolve, and only to public addresses:
// loopback, private, link-local, unspecified and multicast addresses are refused, so a merchant
// cannot aim the platform at its own network. (The worker checks the address again when it
// connects, against DNS rebinding.)
func CheckURL(ctx context.Context, raw string, allowPrivate bool) error {
	if len(raw) > MaxURLLength {
		return fmt.Errorf("%w: longer than %d bytes", ErrURLNotAllowed, MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrURLNotAllowed, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q is not http or https", ErrURLNotAllowed, u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return fmt.Errorf("%w: no host", ErrURLNotAllowed)
	}
	if u.User != nil {
		return fmt.Errorf("%w: user information in the URL", ErrURLNotAllowed)
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
			return fmt.Errorf("%w: host %s is local", ErrURLNotAllowed, host)
		}
		addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return fmt.Errorf("%w: resolve %s: %v", ErrURLNotAllowed, host, err)
		}
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%w: %s has no address", ErrURLNotAllowed, host)
	}
	for _, a := range addrs {
		if !publicAddr(a) {
			return fmt.Errorf("%w: %s resolves to the non-public address %s", ErrURLNotAllowed, host, a)
		}
	}
	return nil
}

// RedactURL is raw fit for logs and listings: its query string, where hospitals often put a
// token, is replaced by *** (and a fragment dropped).
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.Fragment, u.RawFragment, u.ForceQuery = nil, "", "", false
	if u.RawQuery != "" {
		u.RawQuery = "***"
	}
	return u.String()
}

// nonPublic are the IPv4 and IPv6 ranges a notification may never reach: this host, private
// and shared (CGNAT) space, link-local, benchmarking, documentation, multicast, reserved and
// broadcast. Addresses that embed an IPv4 address are judged by it (embedded).
var nonPublic = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", // 240/4 holds 255.255.255.255
		"::/96",                        // unspecified, loopback and the IPv4-compatible addresses
		"64:ff9b:1::/48",               // local-use NAT64
		"100::/64",                     // discard
		"2001:2::/48", "2001:db8::/32", // benchmarking, documentation
		"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	teredo    = netip.MustParsePrefix("2001::/32")
)

// publicAddr reports whether a may be the target of a notification. It is the one judgement
// used both when a notify_url is accepted (CheckURL) and when the worker dials (dialControl).
func publicAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.WithZone("").Unmap() // IPv4-mapped IPv6 is judged as the IPv4 address
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	if a.Is4() {
		return true
	}
	b := a.As16()
	switch {
	case nat64.Contains(a): // the IPv4 address in the last 32 bits
		return publicAddr(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a): // the IPv4 address after the prefix
		return publicAddr(netip.AddrFrom4([4]byte(b[2:6])))
	case teredo.Contains(a): // the server's IPv4 address, and the client's with its bits inverted
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return publicAddr(netip.AddrFrom4([4]byte(b[4:8]))) && publicAddr(netip.AddrFrom4(client))
	}
	return true
}

// dialControl is a net.Dialer Control function that refuses to connect to a non-public address.
// It runs after name resolution, on the address actually dialled.
func dialControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: dial %s: %v", ErrURLNotAllowed, address, err)
	}
	if !publicAddr(ap.Addr()) {
		return fmt.Errorf("%w: refusing to connect to the non-public address %s", ErrURLNotAllowed, ap.Addr())
	}
	return nil
}
