package http

import (
	"net/netip"
	"strings"
)

// clientAddr is the address a request comes from: the connection's peer, unless that is a
// trusted proxy. Then the X-Forwarded-For header lines (every line, in order, each a list) are
// walked from the right past trusted proxies, and the first untrusted hop is the client: hops
// further left were written by the client itself and prove nothing. A hop that is not an
// address is untrusted, so it is answered as is and matches no allow-list. When every hop is a
// trusted proxy, the leftmost is the client.
func clientAddr(remoteAddr string, xff []string, trusted []string) string {
	host := hostOnly(remoteAddr)
	if !ipAllowed(host, trusted) {
		return host
	}
	var hops []string
	for _, line := range xff {
		for _, h := range strings.Split(line, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, hostOnly(h))
			}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		if !ipAllowed(hops[i], trusted) {
			return hops[i]
		}
	}
	if len(hops) > 0 {
		return hops[0]
	}
	return host
}

// hostOnly drops a port from an address ("1.2.3.4:80", "[::1]:80"); anything else is kept.
func hostOnly(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().String()
	}
	return strings.Trim(s, "[]")
}

// ipAllowed reports whether ip is one of list's addresses or inside one of its CIDR prefixes.
func ipAllowed(ip string, list []string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, entry := range list {
		if p, err := netip.ParsePrefix(entry); err == nil {
			if p.Contains(addr) {
				return true
			}
			continue
		}
		if a, err := netip.ParseAddr(entry); err == nil && a.Unmap() == addr {
			return true
		}
	}
	return false
}
