package node

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestControlPortsBindThePrivateAddress(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.AdvertiseIP = t.TempDir(), "10.110.0.5"
	if err := cfg.complete(); err != nil {
		t.Fatal(err)
	}
	if cfg.BindIP != "10.110.0.5" || cfg.EdgeBindIP != "0.0.0.0" {
		t.Fatalf("defaults: control on %q, edge on %q; want the advertise address and every address", cfg.BindIP, cfg.EdgeBindIP)
	}
	if got := cfg.bind(cfg.RaftPort); got != "10.110.0.5:7947" {
		t.Fatalf("raft binds %s", got)
	}

	// Local mode gives every node its own loopback address: the edge too.
	cfg = DefaultConfig()
	cfg.DataDir, cfg.BindIP = t.TempDir(), "127.0.0.3"
	if err := cfg.complete(); err != nil {
		t.Fatal(err)
	}
	if cfg.BindIP != "127.0.0.3" || cfg.AdvertiseIP != "127.0.0.3" || cfg.EdgeBindIP != "127.0.0.3" {
		t.Fatalf("--bind 127.0.0.3: bind %q, advertise %q, edge %q", cfg.BindIP, cfg.AdvertiseIP, cfg.EdgeBindIP)
	}

	for _, any := range []string{"0.0.0.0", "::"} {
		cfg = DefaultConfig()
		cfg.DataDir, cfg.AdvertiseIP, cfg.BindIP = t.TempDir(), "10.110.0.5", any
		err := cfg.complete()
		if !errors.Is(err, ErrBindAnyAddress) || !strings.Contains(err.Error(), "--bind-any-address") {
			t.Fatalf("--bind %s: %v; want a refusal naming --bind-any-address", any, err)
		}
		cfg.BindAnyAddress = true
		if err := cfg.complete(); err != nil || cfg.BindIP != any {
			t.Fatalf("--bind %s --bind-any-address: %v (bind %q)", any, err, cfg.BindIP)
		}
	}
	cfg = DefaultConfig()
	cfg.DataDir, cfg.AdvertiseIP, cfg.BindIP = t.TempDir(), "10.110.0.5", "not-an-ip"
	if err := cfg.complete(); err == nil || !strings.Contains(err.Error(), "not an IP") {
		t.Fatalf("--bind not-an-ip: %v", err)
	}

	// The flag exists, is documented, and reads its environment variable.
	f := AgentCommand("test", Options{})[0].Flags()
	fl := f.Lookup("bind-any-address")
	if fl == nil || fl.DefValue != "false" || !strings.Contains(fl.Usage, "every interface") {
		t.Fatalf("--bind-any-address flag: %+v", fl)
	}
	env := map[string]string{"DROPMESH_BIND_ANY_ADDRESS": "true"}
	if err := applyEnv(f, func(k string) string { return env[k] }); err != nil || fl.Value.String() != "true" {
		t.Fatalf("DROPMESH_BIND_ANY_ADDRESS: %v, %s", err, fl.Value)
	}
}

// A running agent given only its advertise address listens on it alone:
// the test process's own sockets, read from /proc, hold the API, raft and
// gossip (TCP and UDP) listeners on that address and no control port on
// every address. (Test agents run no UI; it binds the same BindIP.)
func TestAgentListensOnTheAdvertiseAddressOnly(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skip("no /proc/net")
	}
	c := startCluster(t, 1, func(_ int, cfg *Config) {
		cfg.BindIP, cfg.EdgeBindIP = "", cfg.AdvertiseIP
	})
	cfg := c.nodes[0].cfg
	ip := net.ParseIP(cfg.AdvertiseIP)
	want := map[string]bool{
		fmt.Sprintf("tcp %s:%d", ip, cfg.APIPort):    false,
		fmt.Sprintf("tcp %s:%d", ip, cfg.RaftPort):   false,
		fmt.Sprintf("tcp %s:%d", ip, cfg.GossipPort): false,
		fmt.Sprintf("udp %s:%d", ip, cfg.GossipPort): false,
	}
	control := map[int]bool{cfg.APIPort: true, cfg.RaftPort: true, cfg.GossipPort: true, cfg.UIPort: true}
	for _, l := range ownListeners(t) {
		if _, ok := want[l.String()]; ok {
			want[l.String()] = true
		}
		if control[l.port] && l.ip.IsUnspecified() {
			t.Errorf("a control port listens on every address: %s", l)
		}
	}
	for l, seen := range want {
		if !seen {
			t.Errorf("no listener %s", l)
		}
	}
}

// listener is one listening socket of this process.
type listener struct {
	proto string
	ip    net.IP
	port  int
}

func (l listener) String() string { return fmt.Sprintf("%s %s:%d", l.proto, l.ip, l.port) }

// ownListeners lists this process's listening TCP and bound UDP sockets:
// the socket inodes of /proc/self/fd matched against /proc/self/net.
func ownListeners(t *testing.T) []listener {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	var out []listener
	for _, table := range []struct{ file, proto, state string }{
		{"tcp", "tcp", "0A"}, {"tcp6", "tcp", "0A"}, {"udp", "udp", "07"}, {"udp6", "udp", "07"},
	} {
		f, err := os.Open("/proc/self/net/" + table.file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != table.state || !inodes[fields[9]] {
				continue
			}
			hexIP, hexPort, _ := strings.Cut(fields[1], ":")
			raw, err := hex.DecodeString(hexIP)
			port, perr := strconv.ParseUint(hexPort, 16, 16)
			if err != nil || perr != nil {
				continue
			}
			// /proc prints each 32-bit word of the address in host (little
			// endian) order.
			for i := 0; i+4 <= len(raw); i += 4 {
				raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			ip := net.IP(raw)
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			out = append(out, listener{proto: table.proto, ip: ip, port: int(port)})
		}
		f.Close()
	}
	return out
}
