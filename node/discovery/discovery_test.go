package discovery

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/miekg/dns"

	"github.com/dropmesh/dropmesh/node/testkit"
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
	m := newTestManager(t, newTestCluster(t), "node-1", "127.42.0.0/16")
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
// network is refused.
func TestForwardingFollowsTheCatalog(t *testing.T) {
	ctx := context.Background()
	cluster := newTestCluster(t)
	node1 := newTestManager(t, cluster, "node-1", "127.42.0.0/16")
	node2 := newTestManager(t, cluster, "node-2", "127.43.0.0/16")
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

// TestGatewayRequiresNodeCertificates: the hop between nodes is mutual
// TLS with node certificates. The gateway refuses a caller that speaks
// plain TCP, one without a certificate, one with another cluster's
// certificate and one whose certificate is revoked (also on connections
// that were already open); the forwarder refuses a gateway whose
// certificate names another node than the instance's; a valid caller
// asking for a port the service does not declare gets no connection.
func TestGatewayRequiresNodeCertificates(t *testing.T) {
	ctx := context.Background()
	cluster := newTestCluster(t)
	node1 := newTestManager(t, cluster, "node-1", "127.42.0.0/16")
	port := backend(t, "127.44.0.1", "api-on-node-1", 0)
	api := Service{Scope: shop, Name: "api", Ports: []int{port}, Endpoints: []Endpoint{{Node: "node-1", Local: true, IP: netip.MustParseAddr("127.44.0.1")}}}
	node1.Update(Catalog{Services: []Service{api}})
	gw := node1.GatewayAddr()
	apiT := target{Workspace: wsA, Key: "shop/prod/api", Port: port}

	// try reaches tg through the gateway as a caller with cfg (nil: plain
	// TCP) and returns the instance's greeting.
	try := func(cfg *tls.Config, tg target) (string, error) {
		var c net.Conn
		var err error
		if cfg == nil {
			c, err = net.Dial("tcp", gw)
		} else {
			c, err = tls.Dial("tcp", gw, cfg)
		}
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(deadline(3))
		sess, err := yamux.Client(c, muxConfig(slog.New(slog.DiscardHandler)))
		if err != nil {
			return "", err
		}
		defer sess.Close()
		st, err := sess.OpenStream()
		if err != nil {
			return "", err
		}
		if err := request(ctx, st, tg, 2*time.Second); err != nil {
			return "", err
		}
		return bufio.NewReader(st).ReadString('\n')
	}
	anyServer := func(cfg *tls.Config) *tls.Config {
		cfg.InsecureSkipVerify, cfg.MinVersion = true, tls.VersionTLS13
		return cfg
	}
	stranger := newTestCluster(t).creds(t, "node-2")
	for name, cfg := range map[string]*tls.Config{
		"plain TCP":              nil,
		"no certificate":         anyServer(&tls.Config{}),
		"another cluster's node": anyServer(&tls.Config{GetClientCertificate: stranger.GetClientCertificate}),
	} {
		if got, err := try(cfg, apiT); err == nil {
			t.Errorf("a caller with %s reached an instance: %q", name, got)
		}
	}

	// A valid caller: node-2 of the same cluster.
	node2creds := cluster.creds(t, "node-2")
	mesh2 := cluster.meshTLS(node2creds)
	if got, err := try(mesh2.Client("node-1"), apiT); err != nil || got != "api-on-node-1\n" {
		t.Fatalf("node-2 through node-1's gateway: %q, %v", got, err)
	}
	// An undeclared port, another workspace: refused.
	for _, tg := range []target{{Workspace: wsA, Key: "shop/prod/api", Port: port + 1}, {Workspace: wsB, Key: "shop/prod/api", Port: port}} {
		if _, err := try(mesh2.Client("node-1"), tg); !errors.Is(err, errRefused) {
			t.Errorf("request %+v: %v; want refused", tg, err)
		}
	}
	dial2 := func(expect string) (*tls.Conn, error) { return tls.Dial("tcp", gw, mesh2.Client(expect)) }
	// The caller checks whom it reached: node-1's gateway is not node-3's.
	if c, err := dial2("node-3"); err == nil {
		c.Close()
		t.Error("a gateway was accepted with another node's certificate")
	}

	// Through a second node's forwarder (over its one connection to node-1's
	// gateway), then node-2 is revoked: its open connection is dropped
	// within recheckAfter, and new ones are refused.
	node2 := managerWith(t, cluster, node2creds, "127.43.0.0/16")
	n2, err := node2.Network(ctx, wsA)
	if err != nil {
		t.Fatal(err)
	}
	remote := api
	remote.Endpoints = []Endpoint{{Node: "node-1", Peer: gw}}
	node2.Update(Catalog{Services: []Service{remote}})
	vip, _ := node2.ServiceAddr(wsA, "shop/prod/api")
	addr := net.JoinHostPort(vip.String(), strconv.Itoa(port))
	if name, err := greet(inSubnet(n2.Plan, 7), addr); err != nil || name != "api-on-node-1" {
		t.Fatalf("through node-2's forwarder: %q, %v", name, err)
	}
	cluster.revoke(node2creds.Serial())
	testkit.WaitFor(t, 5*time.Second, "the revoked node-2 to be refused", func() bool {
		_, err := greet(inSubnet(n2.Plan, 7), addr)
		return err != nil
	})
	for range 3 {
		if name, err := greet(inSubnet(n2.Plan, 7), addr); err == nil {
			t.Fatalf("the revoked node-2 reached %s", name)
		}
	}
}

// TestBrokenMeshConnectionIsReplaced: when a gateway drops a node's
// connection (it restarted), the next forwarded connection still gets
// through, over a new one.
func TestBrokenMeshConnectionIsReplaced(t *testing.T) {
	ctx := context.Background()
	cluster := newTestCluster(t)
	node1 := newTestManager(t, cluster, "node-1", "127.42.0.0/16")
	node2 := newTestManager(t, cluster, "node-2", "127.43.0.0/16")
	n2, err := node2.Network(ctx, wsA)
	if err != nil {
		t.Fatal(err)
	}
	port := backend(t, "127.44.0.1", "api-on-node-1", 0)
	svc := Service{Scope: shop, Name: "api", Ports: []int{port}}
	local, remote := svc, svc
	local.Endpoints = []Endpoint{{Node: "node-1", Local: true, IP: netip.MustParseAddr("127.44.0.1")}}
	remote.Endpoints = []Endpoint{{Node: "node-1", Peer: node1.GatewayAddr()}}
	node1.Update(Catalog{Services: []Service{local}})
	node2.Update(Catalog{Services: []Service{remote}})
	vip, _ := node2.ServiceAddr(wsA, "shop/prod/api")
	addr := net.JoinHostPort(vip.String(), strconv.Itoa(port))
	for round := range 3 {
		if name, err := greet(inSubnet(n2.Plan, 7), addr); err != nil || name != "api-on-node-1" {
			t.Fatalf("round %d: %q, %v", round, name, err)
		}
		// The gateway drops every caller's connection, as a restart does.
		g := node1.gateway
		g.mu.Lock()
		n := 0
		for s := range g.sessions {
			if !s.IsClosed() {
				n++
			}
			s.Close()
		}
		g.mu.Unlock()
		if n != 1 {
			t.Fatalf("round %d: the gateway had %d connections from node-2, want 1 (streams share it)", round, n)
		}
	}
}

// TestRenewalMovesToANewConnection: after a node's certificate is renewed,
// its next forwarded connection goes over a new connection to the gateway,
// made with the new certificate, and the old one is closed.
func TestRenewalMovesToANewConnection(t *testing.T) {
	ctx := context.Background()
	cluster := newTestCluster(t)
	node1 := newTestManager(t, cluster, "node-1", "127.42.0.0/16")
	creds2 := cluster.creds(t, "node-2")
	node2 := managerWith(t, cluster, creds2, "127.43.0.0/16")
	n2, err := node2.Network(ctx, wsA)
	if err != nil {
		t.Fatal(err)
	}
	port := backend(t, "127.44.0.1", "api-on-node-1", 0)
	svc := Service{Scope: shop, Name: "api", Ports: []int{port}}
	local, remote := svc, svc
	local.Endpoints = []Endpoint{{Node: "node-1", Local: true, IP: netip.MustParseAddr("127.44.0.1")}}
	remote.Endpoints = []Endpoint{{Node: "node-1", Peer: node1.GatewayAddr()}}
	node1.Update(Catalog{Services: []Service{local}})
	node2.Update(Catalog{Services: []Service{remote}})
	vip, _ := node2.ServiceAddr(wsA, "shop/prod/api")
	addr := net.JoinHostPort(vip.String(), strconv.Itoa(port))

	// openSerials are the certificate serials of the gateway's open connections.
	openSerials := func() []string {
		g := node1.gateway
		g.mu.Lock()
		defer g.mu.Unlock()
		var out []string
		for s, serial := range g.sessions {
			if !s.IsClosed() {
				out = append(out, serial)
			}
		}
		return out
	}
	if name, err := greet(inSubnet(n2.Plan, 7), addr); err != nil || name != "api-on-node-1" {
		t.Fatalf("before the renewal: %q, %v", name, err)
	}
	old := creds2.Serial()
	cluster.renew(t, creds2)
	if name, err := greet(inSubnet(n2.Plan, 7), addr); err != nil || name != "api-on-node-1" {
		t.Fatalf("after the renewal: %q, %v", name, err)
	}
	if creds2.Serial() == old {
		t.Fatal("the renewal kept the serial")
	}
	testkit.WaitFor(t, 5*time.Second, "the gateway to hold only a connection with the new certificate", func() bool {
		s := openSerials()
		return len(s) == 1 && s[0] == creds2.Serial()
	})
}
