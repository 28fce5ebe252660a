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

// publicAddr reports whether a may be the target of a notification.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() &&
		!a.IsLinkLocalMulticast() && !a.IsInterfaceLocalMulticast() && !a.IsMulticast() &&
		!a.IsUnspecified()
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
