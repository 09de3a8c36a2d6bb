package discovery

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

const (
	wsA = "aaaaaa"
	wsB = "bbbbbb"
)

var shop = Scope{Workspace: wsA, Project: "shop", Env: "prod"}

// TestNamesResolveWithinTheirWorkspace: "<service>" answers for the
// caller's own project/env, "<service>.<project>.<env>.internal" across the
// workspace, unknown .internal names are NXDOMAIN, and another workspace's
// network (and any address outside a network) learns nothing.
func TestNamesResolveWithinTheirWorkspace(t *testing.T) {
	m := newTestManager(t, "127.42.0.0/16")
	ctx := context.Background()
	a, err := m.Network(ctx, wsA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Network(ctx, wsB)
	if err != nil {
		t.Fatal(err)
	}
	if a.Plan.Subnet.Overlaps(b.Plan.Subnet) || a.Network == b.Network {
		t.Fatalf("two workspaces share a network: %+v %+v", a, b)
	}
	if again, err := m.Network(ctx, wsA); err != nil || again != a {
		t.Fatalf("second Network = %+v, %v; want the same", again, err)
	}
	caller := inSubnet(a.Plan, 5)
	other := Scope{Workspace: wsA, Project: "blog", Env: "prod"}
	m.Update(Catalog{
		Services: []Service{
			{Scope: shop, Name: "redis", Ports: []int{6379}},
			{Scope: other, Name: "web", Ports: []int{80}},
			{Scope: Scope{Workspace: wsB, Project: "shop", Env: "prod"}, Name: "redis", Ports: []int{6379}},
		},
		Callers: map[netip.Addr]Scope{netip.MustParseAddr(caller): shop, netip.MustParseAddr(inSubnet(b.Plan, 5)): {Workspace: wsB, Project: "shop", Env: "prod"}},
	})
	redisA, _ := m.ServiceAddr(wsA, "shop/prod/redis")
	webA, _ := m.ServiceAddr(wsA, "blog/prod/web")
	redisB, _ := m.ServiceAddr(wsB, "shop/prod/redis")
	if !a.Plan.Services.Contains(redisA) || !a.Plan.Services.Contains(webA) || !b.Plan.Services.Contains(redisB) || redisA == webA {
		t.Fatalf("virtual addresses %s %s %s outside their ranges %s %s", redisA, webA, redisB, a.Plan.Services, b.Plan.Services)
	}
	for _, tc := range []struct {
		name, from, server string
		rcode              int
		want               string
	}{
		{"redis", caller, a.DNSAddr, dns.RcodeSuccess, redisA.String()},
		{"REDIS", caller, a.DNSAddr, dns.RcodeSuccess, redisA.String()},
		{"redis.shop.prod.internal", caller, a.DNSAddr, dns.RcodeSuccess, redisA.String()},
		{"web.blog.prod.internal", caller, a.DNSAddr, dns.RcodeSuccess, webA.String()},
		{"nope.shop.prod.internal", caller, a.DNSAddr, dns.RcodeNameError, ""},
		{"redis.shop.staging.internal", caller, a.DNSAddr, dns.RcodeNameError, ""},
		// An unknown address of the network has no project/env of its own.
		{"redis.shop.prod.internal", inSubnet(a.Plan, 9), a.DNSAddr, dns.RcodeSuccess, redisA.String()},
		// Workspace B's own redis, never A's.
		{"redis", inSubnet(b.Plan, 5), b.DNSAddr, dns.RcodeSuccess, redisB.String()},
		{"web.blog.prod.internal", inSubnet(b.Plan, 5), b.DNSAddr, dns.RcodeNameError, ""},
		// A's resolver does not answer B's containers, nor the host.
		{"redis.shop.prod.internal", inSubnet(b.Plan, 5), a.DNSAddr, dns.RcodeRefused, ""},
		{"redis.shop.prod.internal", "127.0.0.1", a.DNSAddr, dns.RcodeRefused, ""},
	} {
		r := ask(t, tc.from, tc.server, tc.name, dns.TypeA)
		if r.Rcode != tc.rcode || answerA(r) != tc.want {
			t.Errorf("%s from %s at %s = %s %q; want %s %q", tc.name, tc.from, tc.server, dns.RcodeToString[r.Rcode], answerA(r),
				dns.RcodeToString[tc.rcode], tc.want)
		}
	}
	if r := ask(t, caller, a.DNSAddr, "redis", dns.TypeAAAA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("AAAA redis = %s %v; want no data", dns.RcodeToString[r.Rcode], r.Answer)
	}
}

// TestForwardingFollowsTheCatalog: a connection to a service's virtual
// address reaches its instances, local and on another node through that
// node's gateway, balanced over them; when the instances move the address
// stays and new connections follow; a caller outside the workspace's
// network is refused, and so is a gateway header not signed with the key.
func TestForwardingFollowsTheCatalog(t *testing.T) {
	ctx := context.Background()
	node1 := newTestManager(t, "127.42.0.0/16")
	node2 := newTestManager(t, "127.43.0.0/16")
	if _, err := node1.Network(ctx, wsA); err != nil {
		t.Fatal(err)
	}
	n2, err := node2.Network(ctx, wsA)
	if err != nil {
		t.Fatal(err)
	}
	// Instances: one on each node ("container" addresses outside both
	// networks' service ranges), on the same port.
	port := backend(t, "127.44.0.1", "api-on-node-1", 0)
	backend(t, "127.44.0.2", "api-on-node-2", port)
	ip1, ip2 := netip.MustParseAddr("127.44.0.1"), netip.MustParseAddr("127.44.0.2")
	api := func(eps ...Endpoint) Catalog {
		return Catalog{Services: []Service{{Scope: shop, Name: "api", Ports: []int{port}, Endpoints: eps}}}
	}
	// Both nodes know both instances; each sees its own as local.
	node1.Update(api(Endpoint{Node: "node-1", Local: true, IP: ip1}, Endpoint{Node: "node-2", Peer: node2.GatewayAddr()}))
	node2.Update(api(Endpoint{Node: "node-1", Peer: node1.GatewayAddr()}, Endpoint{Node: "node-2", Local: true, IP: ip2}))

	vip2, ok := node2.ServiceAddr(wsA, "shop/prod/api")
	if !ok {
		t.Fatal("no address for api on node-2")
	}
	addr2 := net.JoinHostPort(vip2.String(), strconv.Itoa(port))
	seen := map[string]int{}
	for range 8 {
		name, err := greet(inSubnet(n2.Plan, 7), addr2)
		if err != nil {
			t.Fatalf("through node-2's forwarder: %v", err)
		}
		seen[name]++
	}
	if seen["api-on-node-1"] == 0 || seen["api-on-node-2"] == 0 {
		t.Fatalf("connections went to %v; want both instances (one across nodes)", seen)
	}

	// node-2's instance goes: only node-1's is left, reached through the
	// same address without anyone resolving again.
	node2.Update(api(Endpoint{Node: "node-1", Peer: node1.GatewayAddr()}))
	for range 4 {
		if name, err := greet(inSubnet(n2.Plan, 7), addr2); err != nil || name != "api-on-node-1" {
			t.Fatalf("after the move: %q, %v; want api-on-node-1", name, err)
		}
	}
	if vip, _ := node2.ServiceAddr(wsA, "shop/prod/api"); vip != vip2 {
		t.Fatalf("the address moved from %s to %s", vip2, vip)
	}

	// Outside the network: closed at once, nothing forwarded.
	if name, err := greet("127.0.0.1", addr2); err == nil {
		t.Fatalf("a caller outside the workspace's network reached %s", name)
	}
	// A forged header (wrong key) is refused by the gateway.
	forged := &dialer{meshKey: []byte("not-the-cluster-key-not-the-key!"), timeout: 2e9, now: node1.cfg.Now}
	up := &upstream{ws: wsA, key: "shop/prod/api"}
	eps := []Endpoint{{Peer: node1.GatewayAddr()}}
	up.endpoints.Store(&eps)
	c, err := forged.dial(ctx, up, port)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = c.SetReadDeadline(deadline(2))
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("a forged header got an answer: %q", buf[:n])
	}
	c.Close()
	// A correctly signed header for a port the service does not declare.
	good := &dialer{meshKey: testKey, timeout: 2e9, now: node1.cfg.Now}
	c, err = good.dial(ctx, up, port+1)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(deadline(2))
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("an undeclared port was forwarded: %q", buf[:n])
	}
	c.Close()
}

// TestPruneGivesBackUnusedNetworks: a workspace with nothing on the node
// loses its network, DNS server and forwarders; one whose network still
// has containers (the engine refuses to remove it) keeps everything.
func TestPruneGivesBackUnusedNetworks(t *testing.T) {
	nets := &fakeNetworks{inUse: map[string]bool{}}
	m, err := New(Config{Pool: netip.MustParsePrefix("127.45.0.0/16"), DNSPort: -1, Upstream: []string{},
		PrepareBridge: func(context.Context, string, netip.Prefix) error { return nil }}, nets)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	a, _ := m.Network(ctx, wsA)
	b, _ := m.Network(ctx, wsB)
	nets.inUse[a.Network] = true
	m.Update(Catalog{Services: []Service{{Scope: shop, Name: "redis", Ports: []int{6379}}}})
	m.Prune(ctx, func(string) bool { return false })
	if r := ask(t, inSubnet(a.Plan, 5), a.DNSAddr, "redis.shop.prod.internal", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("the in-use network's DNS answers %s", dns.RcodeToString[r.Rcode])
	}
	if _, ok, _ := nets.NetworkByName(ctx, b.Network); ok {
		t.Fatal("the unused network was not removed")
	}
	c := &dns.Client{Timeout: 300e6, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(inSubnet(b.Plan, 5))}}}
	q := new(dns.Msg)
	q.SetQuestion("redis.shop.prod.internal.", dns.TypeA)
	if _, _, err := c.Exchange(q, b.DNSAddr); err == nil {
		t.Fatal("the removed network's DNS server still answers")
	}
	if again, err := m.Network(ctx, wsB); err != nil || again.DNSAddr == "" {
		t.Fatalf("the workspace cannot get a network again: %v", err)
	}
}
