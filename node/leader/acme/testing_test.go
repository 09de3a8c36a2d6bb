package acme

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/x509"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
	"github.com/dropmesh/dropmesh/node/pebble"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

const testWS = "9fe5e6"

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func testAEAD(t testing.TB) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

// cluster is a real FSM driven with commands: the duty's Source.
type cluster struct {
	t     testing.TB
	fsm   *raftfsm.FSM
	mu    sync.Mutex
	index uint64
	// refuse, when set, makes Apply fail for commands it returns true for
	// (a leader that lost its quorum).
	refuse func(raftfsm.Command) bool
	// refused counts the commands refused so.
	refused int
}

func newCluster(t testing.TB) *cluster {
	c := &cluster{t: t, fsm: raftfsm.NewFSM(nil)}
	c.must(&raftfsm.InitCluster{At: t0, ClusterID: "c0ffee", ClusterName: "prod", AdminName: "admin",
		AdminPasswordHash: "$2a$10$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyz12", DefaultWorkspaceID: testWS})
	c.must(&raftfsm.UpsertNode{At: t0, Node: raftfsm.Node{ID: "node-1", Region: "nyc3", PrivateIP: "127.0.0.2", API: "127.0.0.2:9999"}})
	return c
}

func (c *cluster) View(fn func(s *raftfsm.State)) { c.fsm.View(fn) }
func (c *cluster) Changed() <-chan struct{}       { return c.fsm.Changed() }

func (c *cluster) Apply(ctx context.Context, cmd raftfsm.Command) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse != nil && c.refuse(cmd) {
		c.refused++
		return nil, errors.New("not the leader (test)")
	}
	c.index++
	return c.fsm.ApplyCommand(c.index, cmd)
}

func (c *cluster) setRefuse(f func(raftfsm.Command) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuse = f
}

func (c *cluster) refusals() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused
}

func (c *cluster) must(cmd raftfsm.Command) {
	c.t.Helper()
	if _, err := c.Apply(context.Background(), cmd); err != nil {
		c.t.Fatalf("apply %s: %v", cmd.Type(), err)
	}
}

func (c *cluster) deploy(service string, hosts ...string) string {
	c.t.Helper()
	spec := raftfsm.ServiceSpec{Workspace: testWS, Project: "shop", Env: "prod", Service: service, Image: "127.0.0.1:5000/shop/web:1",
		Port: 8080, Hosts: hosts, Replicas: 1}
	spec.Normalize()
	c.must(&raftfsm.DeployService{At: t0, DeployID: "dep-" + service, WorkspaceID: testWS, Spec: spec,
		Placement: []raftfsm.Assignment{{Slot: 0, Node: "node-1"}}})
	return raftfsm.ServiceKey(testWS, "shop", "prod", service)
}

func (c *cluster) cert(name string) (raftfsm.IssuedCert, bool) {
	var out raftfsm.IssuedCert
	var ok bool
	c.View(func(s *raftfsm.State) {
		if p := s.ACME.Certs[name]; p != nil {
			out, ok = *p, true
		}
	})
	return out, ok
}

// env is a fake cloud with its DNS server, a Pebble validating against
// it, and a cluster configured to use them.
type env struct {
	t    *testing.T
	fake *fakeapi.Server
	dns  *fakeapi.DNSServer
	ca   *pebble.CA
	cf   *cloudops.Cloudflare
	c    *cluster
	aead cipher.AEAD
}

func newEnv(t *testing.T, validity time.Duration) *env {
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	fake, url := fakeapitest.Start(t, fakeapi.Options{Zones: []string{"example.test"}})
	d, err := fake.ServeDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	ca, err := pebble.Start(pebble.Config{Resolver: d.Addr(), Validity: validity})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ca.Close() })
	e := &env{t: t, fake: fake, dns: d, ca: ca, c: newCluster(t), aead: testAEAD(t),
		cf: cloudops.NewCloudflare(cloudops.CFConfig{Token: fakeapi.DefaultToken, BaseURL: url + fakeapi.CloudflarePath})}
	e.c.must(&raftfsm.SetACMEConfig{At: t0, Config: raftfsm.ACMEConfig{Enabled: true, Directory: ca.DirectoryURL(),
		DirectoryCA: string(ca.DirectoryCA()), Email: "ops@example.test"}})
	return e
}

func (e *env) config() Config {
	return Config{NodeID: "node-1", Logger: slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})), Sealer: e.aead,
		DNS:                func() (cloudops.ChallengeDNS, error) { return e.cf, nil },
		Resolvers:          []string{e.dns.Addr()},
		PropagationTimeout: 10 * time.Second, PropagationInterval: 20 * time.Millisecond,
		PollInterval: 50 * time.Millisecond, PollTimeout: 20 * time.Second,
		Backoff: time.Hour, MaxBackoff: 2 * time.Hour, Jitter: func() float64 { return 0 }}
}

// run runs the duty (as a leader would) until the returned stop.
func (e *env) run(cfg Config) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, e.c, cfg)
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	testkit.WaitFor(e.t, 30*time.Second, what, cond)
}

// verify checks that chain is valid for host against Pebble's root.
func (e *env) verify(chain, host string) *x509.Certificate {
	e.t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e.ca.RootPEM())
	var certs []*x509.Certificate
	rest := []byte(chain)
	for {
		leaf, err := raftfsm.ParseCertChain(string(rest))
		if err != nil {
			break
		}
		certs = append(certs, leaf)
		_, after, _ := bytes.Cut(rest, []byte("-----END CERTIFICATE-----"))
		rest = after
	}
	if len(certs) == 0 {
		e.t.Fatalf("no certificate in %q", chain)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err != nil {
		e.t.Fatalf("%s: %v", host, err)
	}
	return certs[0]
}

func (e *env) txtRecords() int {
	n := 0
	for _, r := range e.fake.State().DNSRecords {
		if r.Type == "TXT" {
			n++
		}
	}
	return n
}
