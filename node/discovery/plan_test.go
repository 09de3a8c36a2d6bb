package discovery

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestPlanLayout(t *testing.T) {
	pool := netip.MustParsePrefix("10.213.0.0/16")
	p, err := planAt(pool, 3)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subnet.String() != "10.213.6.0/23" || p.Gateway.String() != "10.213.6.1" || p.Containers.String() != "10.213.6.0/24" || p.Services.String() != "10.213.7.0/24" {
		t.Fatalf("plan 3 = %+v", p)
	}
	if planCount(pool) != 128 {
		t.Fatalf("a /16 holds %d networks, want 128", planCount(pool))
	}
	if _, err := planAt(pool, 128); err == nil {
		t.Fatal("plan past the pool accepted")
	}
	if _, err := planAt(netip.MustParsePrefix("10.0.0.0/24"), 0); err == nil {
		t.Fatal("a pool too small for one network accepted")
	}
}

// TestVirtualAddresses: every service gets its own address in the range,
// the same one on every ask, until the range is full; a forgotten one is
// given again.
func TestVirtualAddresses(t *testing.T) {
	p, _ := planAt(DefaultPool, 0)
	v := newVIPTable(p)
	seen := map[netip.Addr]string{}
	for i := range vipSlots {
		key := fmt.Sprintf("shop/prod/svc-%d", i)
		a, ok := v.addr(key)
		if !ok || !p.Services.Contains(a) || a == p.Services.Addr() || a.As4()[3] == 255 {
			t.Fatalf("%s = %s, %v", key, a, ok)
		}
		if other, dup := seen[a]; dup {
			t.Fatalf("%s and %s share %s", key, other, a)
		}
		seen[a] = key
		if again, _ := v.addr(key); again != a {
			t.Fatalf("%s moved from %s to %s", key, a, again)
		}
	}
	if _, ok := v.addr("one/too/many"); ok {
		t.Fatal("an address past the range's end was given")
	}
	v.keep(map[string]bool{"shop/prod/svc-0": true})
	if _, ok := v.addr("one/too/many"); !ok {
		t.Fatal("no address after the others were forgotten")
	}
}

func TestMeshHeader(t *testing.T) {
	tg := target{Workspace: "aaaaaa", Key: "shop/prod/api", Port: 8000}
	h := encodeHeader(tg)
	read := func(h string) (target, error) {
		return readHeader(bufio.NewReader(strings.NewReader(h + "payload")))
	}
	if got, err := read(h); err != nil || got != tg {
		t.Fatalf("read back %+v, %v", got, err)
	}
	for name, h := range map[string]string{
		"port zero":  strings.Replace(h, " 8000", " 0", 1),
		"port big":   strings.Replace(h, " 8000", " 70000", 1),
		"bad key":    strings.Replace(h, "shop/prod/api", "shop-prod-api", 1),
		"no ws":      strings.Replace(h, " aaaaaa ", "  ", 1),
		"old magic":  strings.Replace(h, "DM2", "DM1", 1),
		"no newline": strings.TrimSuffix(h, "\n"),
		"too long":   strings.Repeat("x", 600) + "\n",
		"garbage":    "GET / HTTP/1.1\r\n",
	} {
		if _, err := read(h); !errors.Is(err, ErrBadHeader) {
			t.Errorf("%s: %v; want ErrBadHeader", name, err)
		}
	}
}
