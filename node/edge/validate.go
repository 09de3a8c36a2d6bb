package edge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// invalidf builds a validation error that wraps raftfsm.ErrInvalid, the one
// sentinel the API, the CLI and the UI map to a 400.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", raftfsm.ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks a whole Config before anything reaches nginx or the route
// table: every host name (raftfsm.ValidateHostname, wildcards allowed for
// routes), every service name, every upstream address (an IP literal and a
// port, no host names: nothing is resolved at reload time), certificates
// and zones, and that no host is claimed twice. It reports every problem,
// each wrapping raftfsm.ErrInvalid.
func Validate(cfg Config) error {
	var errs []error
	owner := map[string]string{} // host -> what claimed it first
	claim := func(host, by string) {
		if prev, ok := owner[host]; ok {
			errs = append(errs, invalidf("duplicate host %q: claimed by %s and by %s", host, prev, by))
			return
		}
		owner[host] = by
	}
	for i, r := range cfg.Routes {
		what := routeName{i, r.Host}
		if err := raftfsm.ValidateHostname(r.Host, true); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		} else {
			claim(r.Host, "service "+strconv.Quote(r.Service))
		}
		if _, err := raftfsm.ParseServiceName(r.Service); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
		if len(r.Upstreams) == 0 {
			errs = append(errs, invalidf("%s: no upstreams: a route needs at least one container address", what))
		}
		seen := map[string]bool{}
		for _, u := range r.Upstreams {
			if err := validateUpstream(u); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", what, err))
				continue
			}
			if seen[u] {
				errs = append(errs, invalidf("%s: upstream %q listed twice", what, u))
			}
			seen[u] = true
		}
	}
	if cfg.UIHost != "" || cfg.UIUpstream != "" {
		if err := raftfsm.ValidateHostname(cfg.UIHost, false); err != nil {
			errs = append(errs, fmt.Errorf("UI host: %w", err))
		} else {
			claim(cfg.UIHost, "the UI")
		}
		if err := validateUpstream(cfg.UIUpstream); err != nil {
			errs = append(errs, fmt.Errorf("UI upstream: %w", err))
		}
	}
	zones := map[string]bool{}
	for i, c := range cfg.Certs {
		if err := raftfsm.ValidateHostname(c.Zone, false); err != nil {
			errs = append(errs, fmt.Errorf("certificate %d: zone: %w", i, err))
			continue
		}
		if zones[c.Zone] {
			errs = append(errs, invalidf("certificate %d: zone %q has two certificates", i, c.Zone))
		}
		zones[c.Zone] = true
		if _, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
			errs = append(errs, invalidf("certificate for zone %q: %v", c.Zone, err))
		}
	}
	return errors.Join(errs...)
}

// routeName names a route in errors; formatted only when there is one.
type routeName struct {
	index int
	host  string
}

func (r routeName) String() string { return fmt.Sprintf("route %d (%q)", r.index, r.host) }

// validateUpstream checks one "ip:port" container address.
func validateUpstream(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return invalidf("upstream %q: want ip:port: %v", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return invalidf("upstream %q: %q is not an IP address (host names are not resolved)", addr, host)
	}
	if ip.IsUnspecified() || ip.IsMulticast() {
		return invalidf("upstream %q: %s cannot be connected to", addr, host)
	}
	if err := validatePort(port); err != nil {
		return invalidf("upstream %q: %v", addr, err)
	}
	return nil
}

// validatePort accepts a decimal port 1-65535 without sign or leading zero.
func validatePort(port string) error {
	if port == "" || len(port) > 5 || port[0] == '0' {
		return fmt.Errorf("port %q: want 1-65535", port)
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return fmt.Errorf("port %q: want 1-65535", port)
		}
	}
	if n, _ := strconv.Atoi(port); n > 65535 {
		return fmt.Errorf("port %q: want 1-65535", port)
	}
	return nil
}

// validateListen checks a listen address for nginx: "ip:port" or ":port"
// (every address).
func validateListen(what, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: want ip:port: %w", what, addr, err)
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("%s %q: %q is not an IP address", what, addr, host)
	}
	if err := validatePort(port); err != nil {
		return fmt.Errorf("%s %q: %w", what, addr, err)
	}
	return nil
}
