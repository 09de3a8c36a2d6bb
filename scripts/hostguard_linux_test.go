//go:build linux

package scripts

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netnsWorld is a small network of named network namespaces of the test's
// own: "host" with a docker0 bridge (172.30.0.1/24, Docker's FORWARD jumps
// and accepts stood in for) and a private "VPC" link to "other"
// (10.99.0.1 and 10.99.0.2, the other droplet, which also holds a stand-in
// metadata address 169.254.169.254); "ctr" and "ctr2"
// are containers on the bridge (172.30.0.2 and .3). Nothing outside these
// namespaces is touched; they are deleted when the test ends.
type netnsWorld struct {
	t      *testing.T
	prefix string
}

const (
	hostGW    = "172.30.0.1"
	hostVPC   = "10.99.0.1"
	otherVPC  = "10.99.0.2"
	ctrIP     = "172.30.0.2"
	ctr2IP    = "172.30.0.3"
	metadata  = "169.254.169.254"
	guardPort = "7946,7947,7948,9999,8080"
)

func (w *netnsWorld) ns(name string) string { return w.prefix + name }

// run runs a command, failing the test on an error.
func (w *netnsWorld) run(args ...string) {
	w.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		w.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// in runs a command inside namespace name.
func (w *netnsWorld) in(name string, args ...string) {
	w.t.Helper()
	w.run(append([]string{"ip", "netns", "exec", w.ns(name)}, args...)...)
}

func newNetnsWorld(t *testing.T) *netnsWorld {
	t.Helper()
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (apt-get install iproute2 iptables)", tool)
		}
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	w := &netnsWorld{t: t, prefix: "dmguard-" + hex.EncodeToString(b[:]) + "-"}
	if out, err := exec.Command("ip", "netns", "add", w.ns("host")).CombinedOutput(); err != nil {
		t.Skipf("cannot make network namespaces here: %v\n%s", err, out)
	}
	for _, n := range []string{"ctr", "ctr2", "other"} {
		w.run("ip", "netns", "add", w.ns(n))
	}
	t.Cleanup(func() {
		for _, n := range []string{"host", "ctr", "ctr2", "other"} {
			_ = exec.Command("ip", "netns", "del", w.ns(n)).Run()
		}
	})
	for _, n := range []string{"host", "ctr", "ctr2", "other"} {
		w.in(n, "ip", "link", "set", "lo", "up")
	}
	w.in("host", "sysctl", "-qw", "net.ipv4.ip_forward=1")
	w.in("host", "ip", "link", "add", "docker0", "type", "bridge")
	w.in("host", "ip", "addr", "add", hostGW+"/24", "dev", "docker0")
	w.in("host", "ip", "link", "set", "docker0", "up")
	for i, c := range []struct{ name, ip string }{{"ctr", ctrIP}, {"ctr2", ctr2IP}} {
		veth := fmt.Sprintf("vc%d", i)
		w.in("host", "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", w.ns(c.name))
		w.in("host", "ip", "link", "set", veth, "master", "docker0", "up")
		w.in(c.name, "ip", "addr", "add", c.ip+"/24", "dev", "eth0")
		w.in(c.name, "ip", "link", "set", "eth0", "up")
		w.in(c.name, "ip", "route", "add", "default", "via", hostGW)
	}
	w.in("host", "ip", "link", "add", "vpc0", "type", "veth", "peer", "name", "vpc0", "netns", w.ns("other"))
	w.in("host", "ip", "addr", "add", hostVPC+"/24", "dev", "vpc0")
	w.in("host", "ip", "link", "set", "vpc0", "up")
	w.in("host", "ip", "route", "add", metadata+"/32", "via", otherVPC)
	w.in("other", "ip", "addr", "add", otherVPC+"/24", "dev", "vpc0")
	w.in("other", "ip", "link", "set", "vpc0", "up")
	// The stand-in metadata address: on a dummy interface where the kernel
	// has the module, else on the namespace's loopback (same routing).
	if exec.Command("ip", "netns", "exec", w.ns("other"), "ip", "link", "add", "meta0", "type", "dummy").Run() == nil {
		w.in("other", "ip", "addr", "add", metadata+"/32", "dev", "meta0")
		w.in("other", "ip", "link", "set", "meta0", "up")
	} else {
		w.in("other", "ip", "addr", "add", metadata+"/32", "dev", "lo")
	}
	w.in("other", "ip", "route", "add", "default", "via", hostVPC)
	// What Docker does at start: FORWARD goes through DOCKER-USER first,
	// then accepts the bridge's traffic.
	w.in("host", "iptables", "-w", "-N", "DOCKER-USER")
	w.in("host", "iptables", "-w", "-A", "FORWARD", "-j", "DOCKER-USER")
	w.in("host", "iptables", "-w", "-A", "FORWARD", "-i", "docker0", "-j", "ACCEPT")
	w.in("host", "iptables", "-w", "-A", "FORWARD", "-o", "docker0", "-j", "ACCEPT")
	w.in("host", "iptables", "-w", "-A", "DOCKER-USER", "-j", "RETURN")
	return w
}

// inNetns runs fn on an OS thread moved into namespace name; the thread is
// never handed back to the Go scheduler (it ends with its goroutine), so
// no other goroutine runs in the namespace. Sockets made in fn stay in the
// namespace.
func (w *netnsWorld) inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		f, err := os.Open(filepath.Join("/run/netns", w.ns(name)))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// serve listens in namespace name on every addr (tcp: accept and close;
// udp: echo), until the test ends.
func (w *netnsWorld) serve(name string, tcp, udp []string) {
	w.t.Helper()
	err := w.inNetns(name, func() error {
		for _, a := range tcp {
			l, err := net.Listen("tcp", a)
			if err != nil {
				return err
			}
			w.t.Cleanup(func() { l.Close() })
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.Write([]byte("hi"))
					c.Close()
				}
			}()
		}
		for _, a := range udp {
			pc, err := net.ListenPacket("udp", a)
			if err != nil {
				return err
			}
			w.t.Cleanup(func() { pc.Close() })
			go func() {
				buf := make([]byte, 64)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					pc.WriteTo(buf[:n], from)
				}
			}()
		}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

// reach reports whether a client in namespace name gets an answer from
// addr ("tcp" connects and reads the greeting, "udp" waits for the echo).
func (w *netnsWorld) reach(name, proto, addr string) bool {
	var ok bool
	err := w.inNetns(name, func() error {
		c, err := net.DialTimeout(proto, addr, time.Second)
		if err != nil {
			return nil
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		if proto == "udp" {
			if _, err := c.Write([]byte("ping")); err != nil {
				return nil
			}
		}
		buf := make([]byte, 4)
		n, err := c.Read(buf)
		ok = err == nil && n > 0
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return ok
}

// The host rules, for real: in namespaces of the test's own, a container
// on docker0 reaches every control port of its host (through the bridge
// gateway and the host's private address) and of the other droplet, and
// the stand-in metadata service, until metadata-guard firewall runs; then
// it reaches none of them, while port 80 everywhere, another container's
// 8080 and the droplets' own control traffic still work.
func TestHostGuardCutsContainersOffForReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	w := newNetnsWorld(t)
	var hostTCP, otherTCP []string
	for _, p := range strings.Split(guardPort, ",") {
		hostTCP = append(hostTCP, net.JoinHostPort(hostGW, p), net.JoinHostPort(hostVPC, p))
		otherTCP = append(otherTCP, net.JoinHostPort(otherVPC, p))
	}
	w.serve("host", append(hostTCP, hostGW+":80", hostVPC+":80"), []string{hostGW + ":7946", hostVPC + ":7946"})
	w.serve("other", append(otherTCP, otherVPC+":80", metadata+":80"), []string{otherVPC + ":7946"})
	w.serve("ctr2", []string{ctr2IP + ":8080"}, nil)

	type target struct{ proto, addr string }
	var blocked []target
	for _, a := range append(hostTCP, otherTCP...) {
		blocked = append(blocked, target{"tcp", a})
	}
	blocked = append(blocked, target{"udp", hostGW + ":7946"}, target{"udp", hostVPC + ":7946"}, target{"udp", otherVPC + ":7946"},
		target{"tcp", metadata + ":80"})
	allowed := []target{{"tcp", hostGW + ":80"}, {"tcp", hostVPC + ":80"}, {"tcp", otherVPC + ":80"}, {"tcp", ctr2IP + ":8080"}}

	// Without the rules every target answers: the test can fail.
	for _, tg := range append(blocked, allowed...) {
		if !w.reach("ctr", tg.proto, tg.addr) {
			t.Fatalf("before the rules, the container cannot reach %s %s: the test network is broken", tg.proto, tg.addr)
		}
	}

	abs, err := filepath.Abs("metadata-guard.sh")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second run changes nothing
		w.in("host", "sh", abs, "firewall")
	}
	for _, tg := range blocked {
		if w.reach("ctr", tg.proto, tg.addr) {
			t.Errorf("with the rules, the container reaches %s %s", tg.proto, tg.addr)
		}
	}
	for _, tg := range allowed {
		if !w.reach("ctr", tg.proto, tg.addr) {
			t.Errorf("with the rules, the container cannot reach %s %s", tg.proto, tg.addr)
		}
	}
	// The droplets themselves still talk over the control ports.
	for _, a := range []string{hostVPC + ":7947", hostVPC + ":9999"} {
		if !w.reach("other", "tcp", a) {
			t.Errorf("the other droplet cannot reach %s", a)
		}
	}
	if !w.reach("other", "udp", hostVPC+":7946") {
		t.Error("the other droplet's gossip (udp) does not reach the host")
	}

	// Each hook is there once, ahead of Docker's RETURN.
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
	if i, j := strings.Index(rules, "-A DOCKER-USER -i"), strings.Index(rules, "-A DOCKER-USER -j RETURN"); i < 0 || j < i {
		t.Errorf("the hooks are not ahead of Docker's RETURN:\n%s", rules)
	}
}
