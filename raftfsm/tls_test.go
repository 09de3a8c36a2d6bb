package raftfsm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/dropmesh/dropmesh/node/pki"
)

// attacker is a raft client outside the cluster: it dials from localIP,
// in plain TCP (tlsCfg nil) or TLS with whatever certificate it holds.
type attacker struct {
	net.Listener
	localIP net.IP
	tlsCfg  *tls.Config
}

func (a *attacker) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: a.localIP}}
	c, err := d.Dial("tcp", string(addr))
	if err != nil || a.tlsCfg == nil {
		return c, err
	}
	tc := tls.Client(c, a.tlsCfg)
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

func newAttacker(t *testing.T, localIP net.IP, creds *pki.Credentials, withTLS bool) *attacker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	a := &attacker{Listener: ln, localIP: localIP}
	if withTLS {
		a.tlsCfg = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13} // an attacker trusts anyone
		if creds != nil {
			a.tlsCfg.GetClientCertificate = creds.GetClientCertificate
		}
	}
	return a
}

// appendEntries sends target one AppendEntries as leader claimID (at
// claimAddr) in term, carrying an event with message msg that it marks
// committed.
func (a *attacker) appendEntries(target *testNode, claimID, claimAddr string, term uint64, msg string) (*raft.AppendEntriesResponse, error) {
	tr := a.transport()
	defer tr.Close()
	return a.appendEntriesOn(tr, target, claimID, claimAddr, term, msg)
}

// transport is a raft transport over the attacker's connections; it keeps
// one open connection per target between calls.
func (a *attacker) transport() *raft.NetworkTransport {
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: a, MaxPool: 1, Timeout: 3 * time.Second, Logger: hclog.NewNullLogger()})
}

func (a *attacker) appendEntriesOn(tr *raft.NetworkTransport, target *testNode, claimID, claimAddr string, term uint64, msg string) (*raft.AppendEntriesResponse, error) {
	stats := target.store.Stats()
	last, _ := strconv.ParseUint(stats["last_log_index"], 10, 64)
	lastTerm, _ := strconv.ParseUint(stats["last_log_term"], 10, 64)
	data, err := Encode(&AppendEvent{At: t0, Event: Event{Kind: "evil", Message: msg}})
	if err != nil {
		return nil, err
	}
	req := &raft.AppendEntriesRequest{
		RPCHeader:    raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(claimID), Addr: []byte(claimAddr)},
		Term:         term,
		PrevLogEntry: last, PrevLogTerm: lastTerm,
		Entries:           []*raft.Log{{Index: last + 1, Term: term, Type: raft.LogCommand, Data: data}},
		LeaderCommitIndex: last + 1,
	}
	var resp raft.AppendEntriesResponse
	err = tr.AppendEntries(raft.ServerID(target.id), raft.ServerAddress(target.addr), req, &resp)
	return &resp, err
}

func hasEvil(n *testNode, msg string) bool {
	found := false
	n.fsm.View(func(s *State) {
		for _, e := range s.Events.Items {
			if e.Kind == "evil" && e.Message == msg {
				found = true
			}
		}
	})
	return found
}

var (
	lo      = net.IPv4(127, 0, 0, 1)
	otherIP = net.IPv4(127, 0, 0, 9)
)

// TestTLSRaftRefusesStrangers: a 3-node cluster over mutual TLS elects and
// commits; then a client with no TLS, no certificate, another CA's
// certificate, an expired one, a revoked one, a valid certificate of a node
// that is not a raft server, a member's certificate used from another
// address, and a member's certificate speaking for another member each send
// every node an AppendEntries of a higher term that commits an event. Every
// one fails, nothing reaches any state and no term moves.
func TestTLSRaftRefusesStrangers(t *testing.T) {
	p := newTestPKI(t)
	nodes := tlsCluster(t, p, 3, nil)
	leader := leaderOf(t, nodes)
	acked := writeEvents(t, leader, "before", 5)
	for _, n := range nodes {
		waitFor(t, 5*time.Second, n.id+" to replicate", func() bool { return hasEvents(n, acked) })
	}
	addrOf := map[string]string{}
	for _, n := range nodes {
		addrOf[n.id] = n.addr
	}
	now := time.Now()
	revoked := p.issue("node-2", lo, now, time.Hour)
	p.revoke(revoked.Serial())
	stolen := p.issue("node-2", lo, now, time.Hour) // a member's own, valid certificate
	cases := []struct {
		name      string
		a         *attacker
		claim     string
		claimAddr string
	}{
		{"plain TCP", newAttacker(t, lo, nil, false), "node-2", addrOf["node-2"]},
		{"TLS without a certificate", newAttacker(t, lo, nil, true), "node-2", addrOf["node-2"]},
		{"another CA", newAttacker(t, lo, issueFrom(t, newTestPKI(t).ca, "node-2", lo, now, time.Hour), true), "node-2", addrOf["node-2"]},
		{"expired", newAttacker(t, lo, p.issue("node-2", lo, now.Add(-48*time.Hour), time.Hour), true), "node-2", addrOf["node-2"]},
		{"revoked", newAttacker(t, lo, revoked, true), "node-2", addrOf["node-2"]},
		{"a node that is not a raft server", newAttacker(t, lo, p.issue("node-9", lo, now, time.Hour), true), "node-9", "127.0.0.1:1"},
		{"a member's certificate from another address", newAttacker(t, otherIP, stolen, true), "node-2", addrOf["node-2"]},
		{"a member speaking for another member", newAttacker(t, lo, stolen, true), "node-1", addrOf["node-1"]},
		{"a member claiming another id at its own address", newAttacker(t, lo, stolen, true), "node-1", addrOf["node-2"]},
		{"a member giving another address", newAttacker(t, lo, stolen, true), "node-2", "127.0.0.1:1"},
	}
	maxTerm := uint64(0)
	for _, n := range nodes {
		maxTerm = max(maxTerm, n.store.Term())
	}
	attackTerm := maxTerm + 1000
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := fmt.Sprintf("evil-%d", i)
			for _, target := range nodes {
				resp, err := tc.a.appendEntries(target, tc.claim, tc.claimAddr, attackTerm, msg)
				if err == nil {
					t.Fatalf("%s answered the stranger: %+v", target.id, resp)
				}
			}
		})
	}
	// The cluster still works, and nothing of the attacks is in it.
	leader = leaderOf(t, nodes)
	after := writeEvents(t, leader, "after", 5)
	for _, n := range nodes {
		waitFor(t, 5*time.Second, n.id+" to replicate", func() bool { return hasEvents(n, after) })
		for i := range cases {
			if hasEvil(n, fmt.Sprintf("evil-%d", i)) {
				t.Fatalf("%s applied the stranger's entry of %q", n.id, cases[i].name)
			}
		}
		if n.store.Term() >= attackTerm {
			t.Fatalf("%s moved to the stranger's term %d", n.id, n.store.Term())
		}
	}
}

// TestTLSRaftAttackHarness is the control of the test above: the same
// AppendEntries sent with a member's key, under its own name and address,
// is taken and applied (a stolen node key is a member until it is revoked).
func TestTLSRaftAttackHarness(t *testing.T) {
	p := newTestPKI(t)
	nodes := tlsCluster(t, p, 3, nil)
	leader := leaderOf(t, nodes)
	var target *testNode
	for _, n := range nodes {
		if n != leader && n.id != "node-2" {
			target = n
		}
	}
	if target == nil { // node-2 is the only follower left over: use the other one
		for _, n := range nodes {
			if n != leader {
				target = n
			}
		}
	}
	a := newAttacker(t, lo, p.issue("node-2", lo, time.Now(), time.Hour), true)
	addr2 := ""
	for _, n := range nodes {
		if n.id == "node-2" {
			addr2 = n.addr
		}
	}
	term := uint64(1000)
	waitFor(t, 10*time.Second, "the member's entry to be applied", func() bool {
		term++
		_, _ = a.appendEntries(target, "node-2", addr2, term, "taken")
		return hasEvil(target, "taken")
	})
}

// impostor is a TLS server holding a valid certificate at a raft server's
// address; it counts handshakes and the bytes raft sends after them.
type impostor struct {
	handshakes, bytes atomic.Int64
	mu                sync.Mutex
	conns             []net.Conn
}

// closeAll ends the connections it holds (raft waits on them at shutdown).
func (im *impostor) closeAll() {
	im.mu.Lock()
	defer im.mu.Unlock()
	for _, c := range im.conns {
		c.Close()
	}
}

func (im *impostor) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		im.mu.Lock()
		im.conns = append(im.conns, c)
		im.mu.Unlock()
		go func() {
			defer c.Close()
			tc := c.(*tls.Conn)
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			if tc.Handshake() != nil {
				return
			}
			im.handshakes.Add(1)
			buf := make([]byte, 4096)
			for {
				n, err := tc.Read(buf)
				im.bytes.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
	}
}

// TestTLSRaftDialChecksTheServer: the leader dials node-3's address, where
// a server with a valid certificate of another node listens: the handshake
// completes and raft sends it nothing. With node-3's own certificate the
// same server receives raft traffic (the control).
func TestTLSRaftDialChecksTheServer(t *testing.T) {
	for _, tc := range []struct {
		name, certFor string
		wantBytes     bool
	}{{"another node's certificate", "node-9", false}, {"the node's own certificate", "node-3", true}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPKI(t)
			addr3 := freeAddr(t)
			v := p.verifier()
			ln, err := tls.Listen("tcp", addr3, pki.ServerConfig(p.issue(tc.certFor, lo, time.Now(), time.Hour), v, tls.RequireAndVerifyClientCert))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			im := &impostor{}
			go im.serve(ln)
			nodes := tlsClusterWith(t, p, []string{"", "", addr3}, 2)
			t.Cleanup(im.closeAll) // before the stores close
			leaderOf(t, nodes)
			waitFor(t, 10*time.Second, "the leader to dial node-3 three times", func() bool {
				if tc.wantBytes {
					return im.bytes.Load() > 0
				}
				return im.handshakes.Load() >= 3
			})
			if !tc.wantBytes && im.bytes.Load() != 0 {
				t.Fatalf("raft sent %d bytes to a server with %s's certificate", im.bytes.Load(), tc.certFor)
			}
		})
	}
}

// tlsClusterWith bootstraps a configuration of len(addrs) voters (an empty
// address: a free one) and starts the first start of them.
func tlsClusterWith(t *testing.T, p *testPKI, addrs []string, start int) []*testNode {
	t.Helper()
	var servers []Server
	var nodes []*testNode
	base := t.TempDir()
	for i, addr := range addrs {
		id := "node-" + strconv.Itoa(i+1)
		if addr == "" {
			addr = freeAddr(t)
		}
		servers = append(servers, Server{ID: id, Address: addr, Voter: true})
		if i >= start {
			continue
		}
		cfg := DefaultStoreConfig()
		cfg.NodeID, cfg.Dir, cfg.BindAddr, cfg.TLS = id, base+"/"+id, addr, p.node(id)
		nodes = append(nodes, &testNode{id: id, dir: cfg.Dir, addr: addr, cfg: cfg})
	}
	for _, n := range nodes {
		n.start(t)
		if err := n.store.BootstrapServers(servers); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// TestTLSRaftRevocation: once node-3's certificate is revoked in the
// replicated state, every node closes the connections it had with node-3
// (made when the certificate was good) by itself, node-3's new handshakes
// are refused and it learns nothing more, while the other two keep
// committing.
func TestTLSRaftRevocation(t *testing.T) {
	p := newTestPKI(t)
	creds := map[string]*pki.Credentials{}
	nodes := tlsCluster(t, p, 3, func(c *StoreConfig) {
		cr := p.issue(c.NodeID, lo, time.Now(), time.Hour)
		creds[c.NodeID] = cr
		c.TLS = p.raftTLS(cr)
	})
	leader := leaderOf(t, nodes)
	if leader.id == "node-3" {
		if err := leader.store.TransferLeadership(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "another leader", func() bool { leader = leaderOf(t, nodes); return leader.id != "node-3" })
	}
	var n3 *testNode
	for _, n := range nodes {
		if n.id == "node-3" {
			n3 = n
		}
	}
	apply := func(c Command) any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := leaderOf(t, nodes).store.Apply(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	now := time.Now().UTC()
	apply(&SetClusterCA{At: now, CACertPEM: string(p.ca.CertPEM()), CAKey: "v1:AAAA"})
	for id, cr := range creds {
		apply(&RecordNodeCert{At: now, Cert: NodeCert{Serial: cr.Serial(), Node: id, NotBefore: cr.NotBefore(), NotAfter: cr.NotAfter()}})
	}
	acked := writeEvents(t, leader, "before", 3)
	waitFor(t, 5*time.Second, "node-3 to replicate", func() bool { return hasEvents(n3, acked) })

	p.revoke(creds["node-3"].Serial()) // what every node's TLS check reads
	if n := apply(&RevokeCerts{At: now, Node: "node-3", Reason: "removed"}); n != 1 {
		t.Fatalf("revoked %v", n)
	}
	waitFor(t, 10*time.Second, "node-3's certificate to be refused on a new handshake", func() bool { return p.refusals() >= 2 })
	after := writeEvents(t, leaderOf(t, nodes), "after", 5)
	for _, n := range nodes {
		if n != n3 {
			waitFor(t, 5*time.Second, n.id+" to replicate", func() bool { return hasEvents(n, after) })
		}
	}
	seen := p.refusals()
	waitFor(t, 10*time.Second, "node-3 refused again after the writes", func() bool { return p.refusals() > seen })
	for _, m := range after {
		if hasEvents(n3, []string{m}) {
			t.Fatalf("the revoked node received %s", m)
		}
	}
}

// TestTLSRaftDisconnect: Store.Disconnect closes a peer's connections and
// raft makes new ones.
func TestTLSRaftDisconnect(t *testing.T) {
	nodes := tcpCluster(t, 3, nil)
	leader := leaderOf(t, nodes)
	writeEvents(t, leader, "before", 3)
	var follower *testNode
	for _, n := range nodes {
		if n != leader {
			follower = n
		}
	}
	if n := leader.store.Disconnect(follower.id); n == 0 {
		t.Fatal("no connection to a follower was open")
	}
	acked := writeEvents(t, leaderOf(t, nodes), "after", 3)
	waitFor(t, 5*time.Second, "the follower to replicate again", func() bool { return hasEvents(follower, acked) })
}

// TestTLSRaftChecksTheAddressItself: even with a PeerID that ignores the
// address, a member's certificate used from another address is refused.
func TestTLSRaftChecksTheAddressItself(t *testing.T) {
	p := newTestPKI(t)
	nodes := tlsCluster(t, p, 3, func(c *StoreConfig) {
		v := p.verifier()
		c.TLS.PeerID = func(_ net.Addr, st tls.ConnectionState) (string, error) { return v.VerifyPeer(st) }
	})
	leader := leaderOf(t, nodes)
	writeEvents(t, leader, "warm", 3)
	var addr2 string
	for _, n := range nodes {
		if n.id == "node-2" {
			addr2 = n.addr
		}
	}
	a := newAttacker(t, otherIP, p.issue("node-2", lo, time.Now(), time.Hour), true)
	for _, target := range nodes {
		if _, err := a.appendEntries(target, "node-2", addr2, leader.store.Term()+1000, "from-elsewhere"); err == nil {
			t.Fatalf("%s answered node-2's certificate from %v", target.id, otherIP)
		}
	}
	for _, n := range nodes {
		if hasEvil(n, "from-elsewhere") {
			t.Fatalf("%s applied it", n.id)
		}
	}
}

// TestTLSRaftSlowStranger: connections that never finish a handshake hold
// up nobody, and are closed after HandshakeTimeout.
func TestTLSRaftSlowStranger(t *testing.T) {
	p := newTestPKI(t)
	nodes := tlsCluster(t, p, 3, func(c *StoreConfig) { c.TLS.HandshakeTimeout = 300 * time.Millisecond })
	leader := leaderOf(t, nodes)
	var idle []net.Conn
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", leader.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		idle = append(idle, c)
	}
	acked := writeEvents(t, leaderOf(t, nodes), "meanwhile", 10)
	for _, n := range nodes {
		waitFor(t, 5*time.Second, n.id+" to replicate", func() bool { return hasEvents(n, acked) })
	}
	for _, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("an idle stranger's connection was kept open: %v", err)
		}
	}
}

// TestTLSRaftMembership: a valid certificate of a node outside the
// configuration is admitted only when the caller's Admit names it; and a
// member removed from the configuration is refused on the connection it
// already had open.
func TestTLSRaftMembership(t *testing.T) {
	p := newTestPKI(t)
	nodes := tlsCluster(t, p, 3, func(c *StoreConfig) {
		c.TLS.Admit = func(id string) bool { return id == "node-8" }
	})
	leader := leaderOf(t, nodes)
	writeEvents(t, leader, "warm", 3)
	// Term 1 is stale: an answer, never a commit.
	if _, err := newAttacker(t, lo, p.issue("node-8", lo, time.Now(), time.Hour), true).appendEntries(leader, "node-8", "127.0.0.1:1", 1, "x"); err != nil {
		t.Fatalf("an admitted node was refused: %v", err)
	}
	if _, err := newAttacker(t, lo, p.issue("node-9", lo, time.Now(), time.Hour), true).appendEntries(leader, "node-9", "127.0.0.1:1", 1, "x"); err == nil {
		t.Fatal("a node neither in the configuration nor admitted was answered")
	}

	var gone *testNode
	for _, n := range nodes {
		if n != leader {
			gone = n
		}
	}
	a := newAttacker(t, lo, p.issue(gone.id, lo, time.Now(), time.Hour), true)
	tr := a.transport()
	defer tr.Close()
	if _, err := a.appendEntriesOn(tr, leader, gone.id, gone.addr, 1, "x"); err != nil {
		t.Fatalf("a member was refused: %v", err)
	}
	if err := leader.store.RemoveServer(context.Background(), gone.id); err != nil {
		t.Fatal(err)
	}
	if _, err := a.appendEntriesOn(tr, leader, gone.id, gone.addr, 1, "x"); err == nil {
		t.Fatalf("%s, removed, was answered on its open connection", gone.id)
	}
}
