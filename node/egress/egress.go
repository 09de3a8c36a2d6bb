// Package egress makes the HTTP clients that dropmesh uses to reach
// addresses a user gave it (webhooks, and any other user-named target):
// they refuse, at dial time on the resolved address, loopback, link-local
// (the cloud metadata service at 169.254.169.254 among them), unspecified,
// multicast and private addresses, so that a user cannot make a node call
// its own control ports, the metadata service or the cluster's private
// network (server-side request forgery). The check runs in the dialer's
// Control function, after DNS: a name that resolves (or re-resolves) to a
// refused address is refused too. The clients follow no redirects and use
// no proxy from the environment.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrRefused marks a connection the policy does not allow.
var ErrRefused = errors.New("egress refused")

// privateRanges are refused unless the policy allows them by name.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT (also cloud VPCs)
	netip.MustParsePrefix("fc00::/7"),      // unique local
}

// Policy says which destinations a client may dial. Its zero value allows
// only public unicast addresses.
type Policy struct {
	// Allow lists ranges dialed even though they are refused by default.
	// The cluster setting (ParseAllowed) admits private ranges only;
	// tests that run their receivers on loopback name 127.0.0.1/32 here.
	Allow []netip.Prefix
	// AllowFrom, if set, gives more allowed ranges at each dial (the
	// cluster's egress_allow setting, which an admin changes at run time).
	AllowFrom func() []netip.Prefix
}

// Check says why addr may not be dialed, or nil.
func (p Policy) Check(addr netip.Addr) error {
	addr = addr.Unmap()
	allow := p.Allow
	if p.AllowFrom != nil {
		allow = append(allow[:len(allow):len(allow)], p.AllowFrom()...)
	}
	for _, a := range allow {
		if a.Contains(addr) {
			return nil
		}
	}
	switch {
	case !addr.IsValid():
		return fmt.Errorf("%w: no address", ErrRefused)
	case addr.IsLoopback():
		return fmt.Errorf("%w: %s is a loopback address", ErrRefused, addr)
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return fmt.Errorf("%w: %s is a link-local address (the metadata service lives there)", ErrRefused, addr)
	case addr.IsUnspecified(), addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return fmt.Errorf("%w: %s is not a unicast address", ErrRefused, addr)
	}
	for _, r := range privateRanges {
		if r.Contains(addr) {
			return fmt.Errorf("%w: %s is a private address (an admin can allow its range: settings egress_allow)", ErrRefused, addr)
		}
	}
	return nil
}

// control is the dialer's Control function: it runs on the address about
// to be connected, after name resolution.
func (p Policy) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrRefused, address, err)
	}
	return p.Check(ap.Addr())
}

// Client is an HTTP client that dials only what p allows, follows no
// redirect (a 3xx answer is returned as is: callers treat it as a
// failure), uses no proxy, and gives up on one request after timeout.
func (p Policy) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: p.control}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the check
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// ParseAllowed reads the admin's list of allowed ranges (CIDR prefixes):
// only private ranges may be named (never loopback, link-local or public
// space, which needs no allowing).
func ParseAllowed(ranges []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ranges {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("egress range %q: %w", s, err)
		}
		pfx = pfx.Masked()
		inside := false
		for _, r := range privateRanges {
			if r.Bits() <= pfx.Bits() && r.Contains(pfx.Addr()) {
				inside = true
			}
		}
		if !inside {
			return nil, fmt.Errorf("egress range %q: only private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) can be allowed", s)
		}
		out = append(out, pfx)
	}
	return out, nil
}
