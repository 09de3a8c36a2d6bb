package discovery

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dropmesh/dropmesh/node/pki"
)

// fakeNetworks is an engine whose networks are loopback ranges: on Linux
// every 127.0.0.0/8 address is local, so the servers bind them as they
// bind a bridge's addresses.
type fakeNetworks struct {
	mu   sync.Mutex
	nets map[string]NetworkInfo
	// taken subnets refuse a create, as Docker refuses an overlap.
	taken map[netip.Prefix]bool
	// inUse networks refuse a remove, as Docker does with containers on them.
	inUse map[string]bool
}

func (f *fakeNetworks) NetworkByName(_ context.Context, name string) (NetworkInfo, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nets[name]
	return n, ok, nil
}

func (f *fakeNetworks) CreateNetwork(_ context.Context, s NetworkSpec) (NetworkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.taken[s.Subnet] {
		return NetworkInfo{}, ErrSubnetTaken
	}
	if f.nets == nil {
		f.nets = map[string]NetworkInfo{}
	}
	n := NetworkInfo{Name: s.Name, Subnet: s.Subnet, Bridge: "lo"}
	f.nets[s.Name] = n
	return n, nil
}

func (f *fakeNetworks) RemoveNetwork(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inUse[name] {
		return errors.New("network " + name + " has active endpoints")
	}
	delete(f.nets, name)
	return nil
}

// testCluster is a cluster CA and the revocations its verifiers consult.
type testCluster struct {
	ca      *pki.CA
	mu      sync.Mutex
	revoked map[string]bool
}

func newTestCluster(t testing.TB) *testCluster {
	t.Helper()
	ca, _, err := pki.NewCA("test-cluster", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return &testCluster{ca: ca, revoked: map[string]bool{}}
}

func (tc *testCluster) revoke(serial string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.revoked[serial] = true
}

// creds are node nodeID's credentials on 127.0.0.1, signed by tc's CA.
func (tc *testCluster) creds(t testing.TB, nodeID string) *pki.Credentials {
	t.Helper()
	id := pki.Identity{NodeID: nodeID, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(id)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, _, err := tc.ca.Sign(csrPEM, id, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.NewCredentials(certPEM, keyPEM, tc.ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// meshTLS is what the agent builds for discovery from its credentials
// (node/discovery.go): pki's own server and client configurations.
func (tc *testCluster) meshTLS(creds *pki.Credentials) *MeshTLS {
	v := &pki.Verifier{Roots: creds.Pool(), ClusterID: "test-cluster", Revoked: func(serial string) bool {
		tc.mu.Lock()
		defer tc.mu.Unlock()
		return tc.revoked[serial]
	}}
	return &MeshTLS{
		Server: pki.ServerConfig(creds, v, tls.RequireAndVerifyClientCert),
		Client: func(nodeID string) *tls.Config { return pki.ClientConfig(creds, v, nodeID) },
		PeerID: v.VerifyPeerFrom,
		Serial: creds.Serial,
	}
}

// renew swaps creds for a new certificate of the same node (what the
// agent's renewal does).
func (tc *testCluster) renew(t testing.TB, creds *pki.Credentials) {
	t.Helper()
	id := creds.Identity()
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(id)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, _, err := tc.ca.Sign(csrPEM, id, time.Now().Add(time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := creds.Swap(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
}

// newTestManager is node nodeID's Manager on loopback: networks from pool,
// DNS on ephemeral ports, a gateway on 127.0.0.1 with a certificate of
// tc's CA.
func newTestManager(t testing.TB, tc *testCluster, nodeID, pool string) *Manager {
	t.Helper()
	return managerWith(t, tc, tc.creds(t, nodeID), pool)
}

// managerWith is newTestManager with the given credentials.
func managerWith(t testing.TB, tc *testCluster, creds *pki.Credentials, pool string) *Manager {
	t.Helper()
	m, err := New(Config{Pool: netip.MustParsePrefix(pool), MeshAddr: "127.0.0.1:0", MeshTLS: tc.meshTLS(creds), DNSPort: -1, Upstream: []string{},
		DialTimeout: 2 * time.Second, PrepareBridge: func(context.Context, string, netip.Prefix) error { return nil }}, &fakeNetworks{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// backend is a TCP server that greets with its name and then echoes.
func backend(t testing.TB, ip, name string, port int) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
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
				io.WriteString(c, name+"\n")
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// dialFrom connects from a local address (a stand-in container) to addr.
func dialFrom(from string, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return d.Dial("tcp", addr)
}

// greet connects from `from` to addr and returns the backend's name, after
// checking that the connection echoes.
func greet(from, addr string) (string, error) {
	c, err := dialFrom(from, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return "", err
	}
	if echo, err := r.ReadString('\n'); err != nil || echo != "ping\n" {
		return "", errors.New("no echo: " + echo)
	}
	return strings.TrimSpace(name), nil
}

// ask sends one DNS query from `from` to server.
func ask(t testing.TB, from, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	resp, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s from %s: %v", name, from, err)
	}
	return resp
}

func answerA(m *dns.Msg) string {
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// inSubnet is the address i of a network's container range.
func inSubnet(p Plan, i int) string {
	b := p.Containers.Addr().As4()
	b[3] = byte(i)
	return netip.AddrFrom4(b).String()
}

func deadline(seconds int) time.Time { return time.Now().Add(time.Duration(seconds) * time.Second) }
