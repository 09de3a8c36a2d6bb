package discovery

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkPaths measures, side by side on loopback, one request and its
// answer over a new connection: directly to the instance, through this
// node's forwarder to a local instance, and through the forwarder and the
// other node's gateway (the cross-node path); and one DNS answer from a
// network's resolver. The instance greets first, then echoes a line (as
// SMTP or MySQL servers speak first); the "-cf" paths are the same with
// the caller speaking first (HTTP, Redis, Postgres), whose first bytes go
// along with the cross-node request. It reports p50 and p99 of each in
// microseconds and the cross-node path's p50 over the direct one (goal:
// under 300 µs).
func BenchmarkPaths(b *testing.B) {
	ctx := context.Background()
	cluster := newTestCluster(b)
	node1 := newTestManager(b, cluster, "node-1", "127.42.0.0/16")
	node2 := newTestManager(b, cluster, "node-2", "127.43.0.0/16")
	if _, err := node1.Network(ctx, wsA); err != nil {
		b.Fatal(err)
	}
	n2, err := node2.Network(ctx, wsA)
	if err != nil {
		b.Fatal(err)
	}
	port := backend(b, "127.44.0.1", "api", 0)
	echoPort := echoBackend(b, "127.44.0.1")
	ip := netip.MustParseAddr("127.44.0.1")
	local := Catalog{Services: []Service{{Scope: shop, Name: "api", Ports: []int{port, echoPort}, Endpoints: []Endpoint{{Local: true, IP: ip}}}}}
	node1.Update(local)
	vip1, _ := node1.ServiceAddr(wsA, "shop/prod/api")
	// node-2 has no instance: its forwarder goes through node-1's gateway.
	node2.Update(Catalog{Services: []Service{{Scope: shop, Name: "api", Ports: []int{port, echoPort}, Endpoints: []Endpoint{{Node: "node-1", Peer: node1.GatewayAddr()}}}},
		Callers: map[netip.Addr]Scope{netip.MustParseAddr(inSubnet(n2.Plan, 7)): shop}})
	vip2, _ := node2.ServiceAddr(wsA, "shop/prod/api")
	n1, _ := node1.Network(ctx, wsA)

	paths := []struct {
		name, from, to string
		callerFirst    bool
	}{
		{"direct", "127.0.0.1", net.JoinHostPort(ip.String(), strconv.Itoa(port)), false},
		{"forwarder", inSubnet(n1.Plan, 7), net.JoinHostPort(vip1.String(), strconv.Itoa(port)), false},
		{"crossnode", inSubnet(n2.Plan, 7), net.JoinHostPort(vip2.String(), strconv.Itoa(port)), false},
		{"direct-cf", "127.0.0.1", net.JoinHostPort(ip.String(), strconv.Itoa(echoPort)), true},
		{"crossnode-cf", inSubnet(n2.Plan, 7), net.JoinHostPort(vip2.String(), strconv.Itoa(echoPort)), true},
	}
	took := make([][]time.Duration, len(paths))
	var dnsTook []time.Duration
	client := &dns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(inSubnet(n2.Plan, 7))}}}
	q := new(dns.Msg)
	q.SetQuestion("api.", dns.TypeA)
	b.ResetTimer()
	for b.Loop() {
		for i, p := range paths {
			start := time.Now()
			rt := roundTrip
			if p.callerFirst {
				rt = echoTrip
			}
			if err := rt(p.from, p.to); err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			took[i] = append(took[i], time.Since(start))
		}
		start := time.Now()
		if r, _, err := client.Exchange(q, n2.DNSAddr); err != nil || len(r.Answer) != 1 {
			b.Fatalf("dns: %v %v", r, err)
		}
		dnsTook = append(dnsTook, time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	for i, p := range paths {
		reportUs(b, p.name, took[i])
	}
	reportUs(b, "dns", dnsTook)
	b.ReportMetric(float64(pct(took[2], 50)-pct(took[0], 50))/1e3, "crossnode-added-p50-us")
	b.ReportMetric(float64(pct(took[4], 50)-pct(took[3], 50))/1e3, "crossnode-cf-added-p50-us")
}

// echoTrip connects from `from` to an echoing addr, sends a line and reads
// its echo.
func echoTrip(from, addr string) error {
	c, err := dialFrom(from, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "x\n"); err != nil {
		return err
	}
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

// echoBackend is a TCP server on ip that echoes without greeting.
func echoBackend(t testing.TB, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// roundTrip connects from `from` to addr, reads the greeting, sends a line
// and reads its echo.
func roundTrip(from, addr string) error {
	c, err := dialFrom(from, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		return err
	}
	if _, err := io.WriteString(c, "x\n"); err != nil {
		return err
	}
	_, err = r.ReadString('\n')
	return err
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func reportUs(b *testing.B, name string, d []time.Duration) {
	b.ReportMetric(float64(pct(d, 50))/1e3, name+"-p50-us")
	b.ReportMetric(float64(pct(d, 99))/1e3, name+"-p99-us")
}
