package cloudops

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// The patterns below follow the providers' documented rules, a little
// stricter where that keeps names safe in URLs and shells.
var (
	dropletNameRe = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,253}[a-zA-Z0-9])?$`)
	regionRe      = regexp.MustCompile(`^[a-z]{3}[0-9]$`)
	slugRe        = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,63}$`)
	tagRe         = regexp.MustCompile(`^[a-zA-Z0-9_:-]{1,255}$`)
	uuidRe        = regexp.MustCompile(`^[0-9a-fA-F-]{1,64}$`)
	resNameRe     = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}$`)
	labelRe       = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	zoneIDRe      = regexp.MustCompile(`^[a-zA-Z0-9]{1,64}$`)
)

// invalid builds an error wrapping ErrInvalid.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func checkRegion(region string) error {
	if !regionRe.MatchString(region) {
		return invalid("region %q is not a region slug like nyc3", region)
	}
	return nil
}

func checkTag(tag string) error {
	if !tagRe.MatchString(tag) {
		return invalid("tag %q: use 1-255 letters, digits, '_', ':' or '-'", tag)
	}
	return nil
}

func checkID(what string, id int) error {
	if id < 1 {
		return invalid("%s id %d: must be positive", what, id)
	}
	return nil
}

// normalizeHost lowercases host, drops a trailing dot and checks it is a DNS
// name of at least two labels (a leading "*" label is allowed).
func normalizeHost(host string) (string, error) {
	h := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	if h == "" || len(h) > 253 {
		return "", invalid("host %q: not a DNS name", host)
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return "", invalid("host %q: needs at least two labels", host)
	}
	for i, l := range labels {
		if i == 0 && l == "*" {
			continue
		}
		if !labelRe.MatchString(l) {
			return "", invalid("host %q: label %q is not a DNS label", host, l)
		}
	}
	return h, nil
}

// normalizeIPv4s parses, de-duplicates and sorts a set of IPv4 addresses.
func normalizeIPv4s(ips []string) ([]string, error) {
	seen := make(map[netip.Addr]bool, len(ips))
	addrs := make([]netip.Addr, 0, len(ips))
	for _, s := range ips {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || !a.Is4() {
			return nil, invalid("%q is not an IPv4 address", s)
		}
		if !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	sortAddrs(addrs)
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out, nil
}

func sortAddrs(a []netip.Addr) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j].Less(a[j-1]); j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// checkPorts validates a firewall port spec: "all", "N" or "N-M".
func checkPorts(p string) error {
	if p == "all" || p == "0" {
		return nil
	}
	lo, hi, isRange := strings.Cut(p, "-")
	a, err1 := strconv.Atoi(lo)
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return invalid("ports %q: use \"all\", a port 1-65535 or a range N-M", p)
	}
	return nil
}

// checkAddress validates a firewall address: an IP or a CIDR prefix.
func checkAddress(s string) error {
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	return invalid("address %q is neither an IP nor a CIDR prefix", s)
}
