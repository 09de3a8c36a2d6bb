//go:build linux

package scripts

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The workspace part of netnsWorld: two workspace bridges as Docker makes
// them for node/discovery, each a /23 of 10.213.0.0/16 with its gateway on
// the bridge and its upper /24 (the services' virtual addresses) local to
// the host: br-wa (10.213.0.0/23) with containers "wa" and "wa2", br-wb
// (10.213.2.0/23) with container "wb". wb's 8080 is published on the
// host's private address twice over, the two ways Docker does it: a DNAT
// of hostVPC:18080 (iptables nat: what another droplet's connection meets,
// and a container's with userland-proxy off) and a listener on
// hostVPC:18081 standing in for docker-proxy (what a container's own
// connection meets with the proxy on: Docker skips the DNAT for traffic
// from its bridges). Docker's own
// isolation rules between bridges are left out on purpose: what keeps the
// workspaces apart here is the guard alone.
const (
	wsAGW, wsA, wsA2, wsAVIP = "10.213.0.1", "10.213.0.2", "10.213.0.3", "10.213.1.5"
	wsBGW, wsB               = "10.213.2.1", "10.213.2.2"
	natPort, proxyPort       = "18080", "18081"
)

func (w *netnsWorld) addWorkspaces() {
	w.t.Helper()
	for _, n := range []string{"wa", "wa2", "wb"} {
		w.run("ip", "netns", "add", w.ns(n))
		n := n
		w.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", w.ns(n)).Run() })
		w.in(n, "ip", "link", "set", "lo", "up")
	}
	for _, b := range []struct {
		bridge, gw, services string
		ctrs                 [][2]string
	}{
		{"br-wa", wsAGW, "10.213.1.0/24", [][2]string{{"wa", wsA}, {"wa2", wsA2}}},
		{"br-wb", wsBGW, "10.213.3.0/24", [][2]string{{"wb", wsB}}},
	} {
		w.in("host", "ip", "link", "add", b.bridge, "type", "bridge")
		w.in("host", "ip", "addr", "add", b.gw+"/23", "dev", b.bridge)
		w.in("host", "ip", "link", "set", b.bridge, "up")
		w.in("host", "ip", "route", "replace", "local", b.services, "dev", b.bridge, "table", "local")
		for _, c := range b.ctrs {
			veth := "v" + c[0]
			w.in("host", "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", w.ns(c[0]))
			w.in("host", "ip", "link", "set", veth, "master", b.bridge, "up")
			w.in(c[0], "ip", "addr", "add", c[1]+"/23", "dev", "eth0")
			w.in(c[0], "ip", "link", "set", "eth0", "up")
			w.in(c[0], "ip", "route", "add", "default", "via", b.gw)
		}
		w.in("host", "iptables", "-w", "-A", "FORWARD", "-i", b.bridge, "-j", "ACCEPT")
		w.in("host", "iptables", "-w", "-A", "FORWARD", "-o", b.bridge, "-j", "ACCEPT")
	}
	w.in("host", "iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-d", hostVPC, "-p", "tcp", "--dport", natPort,
		"-j", "DNAT", "--to-destination", net.JoinHostPort(wsB, "8080"))
}

type target struct{ proto, addr string }

// reachAll is reach for many targets at once (a dropped one costs a
// second's timeout).
func (w *netnsWorld) reachAll(name string, ts []target) map[target]bool {
	var mu sync.Mutex
	var wg sync.WaitGroup
	got := map[target]bool{}
	for _, tg := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := w.reach(name, tg.proto, tg.addr)
			mu.Lock()
			got[tg] = ok
			mu.Unlock()
		}()
	}
	wg.Wait()
	return got
}

// expect checks what a client in namespace name reaches.
func (w *netnsWorld) expect(when, name string, blocked, allowed []target) {
	w.t.Helper()
	got := w.reachAll(name, append(append([]target(nil), blocked...), allowed...))
	for _, tg := range blocked {
		if got[tg] {
			w.t.Errorf("%s, %s reaches %s %s", when, name, tg.proto, tg.addr)
		}
	}
	for _, tg := range allowed {
		if !got[tg] {
			w.t.Errorf("%s, %s cannot reach %s %s", when, name, tg.proto, tg.addr)
		}
	}
}

func tcp(host, port string) target { return target{"tcp", net.JoinHostPort(host, port)} }
func udp(host, port string) target { return target{"udp", net.JoinHostPort(host, port)} }

// The workspace rules, for real: a container of workspace A reaches its
// neighbour, the discovery DNS server and forwarder on its network, the
// edges of this host and of the other droplet and what the operator
// allows, and nothing of workspace B: not its container's address, nor its
// port published on the host's private address (DNAT or proxy), nor
// another droplet's published port, nor a wildcard listener of the host
// (sshd) through the gateway or a virtual address. The droplets' own
// traffic to the published port and the host's connections into the
// containers still work; with DROPMESH_DISCOVERY=off docker0 keeps the
// shared rules (published ports reachable), and back on it is strict.
func TestHostGuardKeepsWorkspacesApartForReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	w := newNetnsWorld(t)
	w.addWorkspaces()
	var ctrl []target
	for _, p := range strings.Split(guardPort, ",") {
		ctrl = append(ctrl, tcp(hostVPC, p), tcp(otherVPC, p))
	}
	// The host's control ports listen on its private address, as the
	// agent binds them (a wildcard listener stands in for sshd below).
	var hostTCP []string
	for _, p := range strings.Split(guardPort, ",") {
		hostTCP = append(hostTCP, net.JoinHostPort(hostVPC, p))
	}
	// The host: its control ports, the edge and a stand-in sshd on every
	// address, two forwarders on a virtual address (6379, and 8080, which
	// is also the UI's port), the DNS server on the gateway, and
	// docker-proxy's listener for wb's published port.
	w.serve("host", append(hostTCP, ":80", ":2222", net.JoinHostPort(wsAVIP, "6379"), net.JoinHostPort(wsAVIP, "8080"),
		net.JoinHostPort(hostVPC, proxyPort)),
		[]string{net.JoinHostPort(wsAGW, "53")})
	var otherTCP []string
	for _, p := range append(strings.Split(guardPort, ","), "80", "5432", natPort) {
		otherTCP = append(otherTCP, net.JoinHostPort(otherVPC, p))
	}
	w.serve("other", append(otherTCP, metadata+":80"), []string{net.JoinHostPort(otherVPC, "53")})
	w.serve("wb", []string{":8080"}, nil)
	w.serve("wa2", []string{":8080"}, nil)
	w.serve("ctr2", []string{":8080"}, nil)

	apart := []target{tcp(wsB, "8080"), tcp(hostVPC, natPort), tcp(hostVPC, proxyPort), tcp(otherVPC, natPort),
		tcp(wsAGW, "2222"), tcp(wsAVIP, "2222"), tcp(hostVPC, "2222"), tcp(ctr2IP, "8080"), tcp(metadata, "80")}
	// A service's port may be a control port too (8080, the UI's): its
	// forwarder on the virtual address answers, the UI does not.
	needed := []target{tcp(wsA2, "8080"), udp(wsAGW, "53"), tcp(wsAVIP, "6379"), tcp(wsAVIP, "8080"), tcp(wsAGW, "80"), tcp(hostVPC, "80"),
		tcp(otherVPC, "80"), udp(otherVPC, "53")}
	allowedByOperator := tcp(otherVPC, "5432")

	// Without the rules every target answers: the test can fail.
	w.expect("before the rules", "wa", nil, append(append(append([]target(nil), apart...), needed...), append(ctrl, allowedByOperator)...))

	abs, err := filepath.Abs("metadata-guard.sh")
	if err != nil {
		t.Fatal(err)
	}
	guard := func(env ...string) {
		t.Helper()
		args := append([]string{"ip", "netns", "exec", w.ns("host"), "env"}, env...)
		w.run(append(args, "sh", abs, "firewall")...)
	}
	allow := "DROPMESH_GUARD_ALLOW=" + otherVPC + "/32:5432"
	guard(allow)
	guard(allow) // a second run changes nothing
	w.expect("with the rules", "wa", append(append([]target(nil), apart...), ctrl...), append(needed, allowedByOperator))
	// Without the operator's entry, that port is cut off too.
	guard()
	w.expect("without DROPMESH_GUARD_ALLOW", "wa", []target{allowedByOperator}, []target{tcp(otherVPC, "80")})
	// docker0 (build steps while discovery runs) is held as tightly.
	w.expect("with the rules", "ctr", []target{tcp(hostVPC, proxyPort), tcp(otherVPC, natPort), tcp(wsA, "8080"), tcp(hostVPC, "2222")},
		[]target{tcp(ctr2IP, "8080"), tcp(hostVPC, "80"), tcp(otherVPC, "80")})

	// The host and the other droplet still reach the containers: the host
	// dials them (the edge, health checks, the forwarders), the other
	// droplet's edge the published port.
	w.expect("with the rules", "host", nil, []target{tcp(wsB, "8080"), tcp(wsA2, "8080")})
	w.expect("with the rules", "other", nil, []target{tcp(hostVPC, natPort), tcp(hostVPC, proxyPort), tcp(hostVPC, "7947")})

	// Discovery off: docker0 is the containers' network, and they reach
	// each other through the nodes' published ports; the workspaces'
	// bridges stay strict.
	guard("DROPMESH_DISCOVERY=off")
	w.expect("with discovery off", "ctr", []target{tcp(hostVPC, "7947"), tcp(otherVPC, "9999"), tcp(metadata, "80")},
		[]target{tcp(hostVPC, proxyPort), tcp(otherVPC, natPort), tcp(ctr2IP, "8080")})
	w.expect("with discovery off", "wa", []target{tcp(hostVPC, proxyPort), tcp(wsB, "8080")}, []target{tcp(wsA2, "8080")})
	guard()
	w.expect("discovery on again", "ctr", []target{tcp(hostVPC, proxyPort), tcp(otherVPC, natPort)}, []target{tcp(ctr2IP, "8080")})

	out, err := exec.Command("ip", "netns", "exec", w.ns("host"), "iptables", "-w", "-S").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	rules := string(out)
	for _, r := range []string{"-A INPUT -i docker0 -j DROPMESH-INPUT", "-A INPUT -i br-+ -j DROPMESH-INPUT",
		"-A DOCKER-USER -i docker0 -j DROPMESH-FORWARD", "-A DOCKER-USER -i br-+ -j DROPMESH-FORWARD"} {
		if n := strings.Count(rules, r+"\n"); n != 1 {
			t.Errorf("%q appears %d times:\n%s", r, n, rules)
		}
	}
	if strings.Contains(rules, "-i docker0 -j DROPMESH-SHARED") {
		t.Errorf("the shared hooks outlived discovery off:\n%s", rules)
	}
}
