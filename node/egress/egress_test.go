package egress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	var p Policy
	for _, a := range []string{"169.254.169.254", "127.0.0.1", "127.1.2.3", "::1", "fe80::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "fd00::1", "0.0.0.0", "::", "224.0.0.1", "::ffff:169.254.169.254", "::ffff:127.0.0.1"} {
		if err := p.Check(netip.MustParseAddr(a)); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: err = %v, want refused", a, err)
		}
	}
	for _, a := range []string{"1.1.1.1", "93.184.216.34", "2606:4700::1111"} {
		if err := p.Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
	// The admin's ranges allow exactly what they name, read at each check.
	var ranges []netip.Prefix
	p = Policy{AllowFrom: func() []netip.Prefix { return ranges }}
	if p.Check(netip.MustParseAddr("10.10.0.5")) == nil {
		t.Fatal("10.10.0.5 allowed before any range")
	}
	ranges = []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16")}
	if err := p.Check(netip.MustParseAddr("10.10.0.5")); err != nil {
		t.Fatalf("10.10.0.5 with 10.10/16 allowed: %v", err)
	}
	if p.Check(netip.MustParseAddr("10.11.0.5")) == nil || p.Check(netip.MustParseAddr("169.254.169.254")) == nil {
		t.Fatal("an allowed range widened to others")
	}
}

func TestParseAllowed(t *testing.T) {
	if got, err := ParseAllowed([]string{"10.10.0.0/16", "192.168.5.0/24", "fd12::/16"}); err != nil || len(got) != 3 {
		t.Fatalf("private ranges: %v %v", got, err)
	}
	for _, bad := range []string{"127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/0", "8.8.8.0/24", "10.0.0.0/7", "fe80::/10", "nonsense"} {
		if _, err := ParseAllowed([]string{bad}); err == nil {
			t.Errorf("%s allowed", bad)
		}
	}
}

// TestClientRefusesAtDialTime: the check runs on the resolved address (a
// name that resolves to loopback is refused, the server sees nothing), a
// policy that allows loopback reaches it, and a redirect is not followed.
func TestClientRefusesAtDialTime(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/target", http.StatusFound)
		}
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	get := func(c *http.Client, url string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/"} {
		if _, err := get(Policy{}.Client(5*time.Second), u); !errors.Is(err, ErrRefused) {
			t.Fatalf("%s: err = %v, want refused", u, err)
		}
	}
	if hits != 0 {
		t.Fatalf("the server saw %d requests through a refusing client", hits)
	}
	lo := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}.Client(5 * time.Second)
	resp, err := get(lo, srv.URL+"/redirect")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusFound || hits != 1 {
		t.Fatalf("redirect: status %d after %d requests, want 302 after 1 (not followed)", resp.StatusCode, hits)
	}
}
