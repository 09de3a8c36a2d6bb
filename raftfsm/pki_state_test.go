package raftfsm

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/pki"
)

// testCACert is a CA certificate for state tests, made once (the key is
// not needed: the state holds it sealed and never opens it).
var testCACert = sync.OnceValue(func() string {
	ca, _, err := pki.NewCA("c0ffee", t0.Add(-time.Hour), 0)
	if err != nil {
		panic(err)
	}
	return string(ca.CertPEM())
})

func TestClusterCA(t *testing.T) {
	f := newFixture(t)
	sealed, err := Seal(testAEAD(t), LabelCAKey, []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	// A node certificate before the CA: refused.
	f.refuse(&RecordNodeCert{At: t0, Cert: NodeCert{Serial: "ab", Node: "node-1", NotBefore: t0, NotAfter: t0.Add(time.Hour)}})
	for _, bad := range []*SetClusterCA{
		{CACertPEM: testCACert(), CAKey: sealed},                                        // no time stamp
		{At: t0, CACertPEM: "junk", CAKey: sealed},                                      // not PEM
		{At: t0, CACertPEM: testCACert(), CAKey: "plain key"},                           // not sealed
		{At: t0.Add(20 * 365 * 24 * time.Hour), CACertPEM: testCACert(), CAKey: sealed}, // expired
	} {
		f.refuse(bad)
	}
	f.must(&SetClusterCA{At: t0, CACertPEM: testCACert(), CAKey: sealed})
	if err := f.refuse(&SetClusterCA{At: t0, CACertPEM: testCACert(), CAKey: sealed}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second CA: %v", err)
	}
	want, _ := pki.Fingerprint([]byte(testCACert()))
	f.view(func(s *State) {
		if s.PKI.CAFingerprint != want || s.PKI.CAKey != sealed || !strings.Contains(s.PKI.CASubject, "c0ffee") || s.PKI.CANotAfter.IsZero() {
			t.Fatalf("CA state %+v", s.PKI)
		}
	})
	if plain, err := Open(testAEAD(t), LabelCAKey, sealed); err != nil || string(plain) != "key" {
		t.Fatalf("sealed CA key: %q %v", plain, err)
	}
}

func withCA(t *testing.T) *fixture {
	f := newFixture(t)
	sealed, _ := Seal(testAEAD(t), LabelCAKey, []byte("key"))
	f.must(&SetClusterCA{At: t0, CACertPEM: testCACert(), CAKey: sealed})
	return f
}

func TestNodeCertsAndRevocation(t *testing.T) {
	f := withCA(t)
	cert := func(serial, node string, life time.Duration) *RecordNodeCert {
		return &RecordNodeCert{At: t0, Cert: NodeCert{Serial: serial, Node: node, NotBefore: t0, NotAfter: t0.Add(life)}}
	}
	f.must(cert("a1", "node-1", time.Hour))
	f.must(cert("a2", "node-1", 2*time.Hour))
	f.must(cert("b1", "node-2", time.Hour))
	for _, bad := range []*RecordNodeCert{
		cert("a1", "node-1", time.Hour),    // recorded already
		cert("A1", "node-1", time.Hour),    // not lowercase hex
		cert("c1", "Node_1", time.Hour),    // bad node id
		cert("c1", "node-1", -time.Minute), // expired
	} {
		f.refuse(bad)
	}
	if n := f.must(&RevokeCerts{At: t0.Add(time.Minute), Node: "node-1", Reason: "removed"}); n != 2 {
		t.Fatalf("revoked %v, want node-1's 2", n)
	}
	if n := f.must(&RevokeCerts{At: t0.Add(time.Minute), Node: "node-1"}); n != 0 {
		t.Fatalf("revoked again %v", n)
	}
	if err := f.refuse(&RevokeCerts{At: t0, Serials: []string{"ff"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown serial: %v", err)
	}
	f.refuse(&RevokeCerts{At: t0}) // nothing named
	if !f.fsm.CertRevoked("a1") || f.fsm.CertRevoked("b1") {
		t.Fatal("FSM.CertRevoked disagrees with the state")
	}
	f.view(func(s *State) {
		if !s.PKI.IsRevoked("a1") || !s.PKI.IsRevoked("a2") || s.PKI.IsRevoked("b1") {
			t.Fatalf("revoked %v", s.PKI.Revoked)
		}
	})
	// A revoked serial is not recorded again.
	f.refuse(cert("a1", "node-1", time.Hour))
	// Later, what has expired is dropped: a1, b1 and a1's revocation.
	f.must(&RecordNodeCert{At: t0.Add(90 * time.Minute), Cert: NodeCert{Serial: "c1", Node: "node-3", NotBefore: t0, NotAfter: t0.Add(24 * time.Hour)}})
	f.view(func(s *State) {
		if len(s.PKI.Certs) != 2 || s.PKI.Certs["a2"] == nil || s.PKI.Certs["c1"] == nil {
			t.Fatalf("certs after pruning: %v", SortedKeys(s.PKI.Certs))
		}
		if len(s.PKI.Revoked) != 1 || !s.PKI.IsRevoked("a2") {
			t.Fatalf("revocations after pruning: %v", SortedKeys(s.PKI.Revoked))
		}
	})
}

func TestJoinTokens(t *testing.T) {
	f := withCA(t)
	token, hash, err := NewJoinToken()
	if err != nil || !strings.HasPrefix(token, "dmj_") || hash != HashJoinToken(token) {
		t.Fatalf("token %q hash %q %v", token, hash, err)
	}
	exp := t0.Add(DefaultJoinTokenTTL)
	for _, bad := range []JoinToken{
		{Hash: "sha256:xyz", Purpose: "droplet", ExpiresAt: exp},
		{Hash: hash, Purpose: "Droplet!", ExpiresAt: exp},
		{Hash: hash, Purpose: "droplet", ExpiresAt: t0},
		{Hash: hash, Purpose: "droplet", ExpiresAt: t0.Add(MaxJoinTokenTTL + time.Second)},
		{Hash: hash, Purpose: "droplet", Node: "BAD", ExpiresAt: exp},
	} {
		f.refuse(&CreateJoinToken{At: t0, Token: bad})
	}
	f.must(&CreateJoinToken{At: t0, Token: JoinToken{Hash: hash, Purpose: "droplet", ExpiresAt: exp, UsedBy: "forged"}})
	f.refuse(&CreateJoinToken{At: t0, Token: JoinToken{Hash: hash, Purpose: "droplet", ExpiresAt: exp}}) // exists
	if strings.Contains(f.stateJSON(), token) {
		t.Fatal("the state holds the token itself")
	}
	// Unknown, then expired (at its expiry exactly), are refused and change nothing.
	if err := f.refuse(&UseJoinToken{At: t0, Hash: HashJoinToken("dmj_other"), UsedBy: "node-4"}); !errors.Is(err, ErrJoinTokenUnknown) {
		t.Fatalf("unknown: %v", err)
	}
	if err := f.refuse(&UseJoinToken{At: exp, Hash: hash, UsedBy: "node-4"}); !errors.Is(err, ErrJoinTokenExpired) {
		t.Fatalf("expired: %v", err)
	}
	v := f.must(&UseJoinToken{At: t0.Add(time.Minute), Hash: hash, UsedBy: "node-4"}).(JoinToken)
	if v.UsedBy != "node-4" || !v.UsedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("used token %+v", v)
	}
	if err := f.refuse(&UseJoinToken{At: t0.Add(2 * time.Minute), Hash: hash, UsedBy: "node-5"}); !errors.Is(err, ErrJoinTokenUsed) {
		t.Fatalf("reused: %v", err)
	}
	// A token for one node: another may not use it.
	_, h2, _ := NewJoinToken()
	f.must(&CreateJoinToken{At: t0, Token: JoinToken{Hash: h2, Purpose: "droplet", Node: "node-6", ExpiresAt: exp}})
	if err := f.refuse(&UseJoinToken{At: t0, Hash: h2, UsedBy: "node-7"}); !errors.Is(err, ErrJoinTokenWrongNode) {
		t.Fatalf("another node: %v", err)
	}
	f.must(&UseJoinToken{At: t0, Hash: h2, UsedBy: "node-6"})
	// Withdrawn before use.
	_, h3, _ := NewJoinToken()
	f.must(&CreateJoinToken{At: t0, Token: JoinToken{Hash: h3, Purpose: "join.sh", ExpiresAt: exp}})
	f.must(&DeleteJoinToken{At: t0, Hash: h3})
	if err := f.refuse(&UseJoinToken{At: t0, Hash: h3, UsedBy: "node-8"}); !errors.Is(err, ErrJoinTokenUnknown) {
		t.Fatalf("withdrawn: %v", err)
	}
	// A day after their end, used and expired tokens are dropped by the next creation.
	_, h4, _ := NewJoinToken()
	f.must(&CreateJoinToken{At: exp.Add(25 * time.Hour), Token: JoinToken{Hash: h4, Purpose: "droplet", ExpiresAt: exp.Add(26 * time.Hour)}})
	f.view(func(s *State) {
		if len(s.PKI.JoinTokens) != 1 || s.PKI.JoinTokens[h4] == nil {
			t.Fatalf("tokens after pruning: %d", len(s.PKI.JoinTokens))
		}
	})
}

func TestJoinTokenBound(t *testing.T) {
	f := withCA(t)
	for i := 0; i < MaxLiveJoinTokens; i++ {
		f.must(&CreateJoinToken{At: t0, Token: JoinToken{Hash: HashJoinToken(strings.Repeat("x", i+1)), Purpose: "droplet", ExpiresAt: t0.Add(time.Hour)}})
	}
	if err := f.refuse(&CreateJoinToken{At: t0, Token: JoinToken{Hash: HashJoinToken("one more"), Purpose: "droplet", ExpiresAt: t0.Add(time.Hour)}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("over the bound: %v", err)
	}
}

// The PKI belongs to the cluster: an export does not carry it and an import
// leaves it as it was.
func TestExportImportLeavePKI(t *testing.T) {
	f := withCA(t)
	f.must(&RecordNodeCert{At: t0, Cert: NodeCert{Serial: "a1", Node: "node-1", NotBefore: t0, NotAfter: t0.Add(time.Hour)}})
	var doc ExportDocument
	var before string
	f.view(func(s *State) {
		doc = Export(s, t0)
		b, _ := json.Marshal(s.PKI)
		before = string(b)
	})
	raw, _ := json.Marshal(doc)
	if strings.Contains(string(raw), "BEGIN CERTIFICATE") || strings.Contains(string(raw), `"a1"`) {
		t.Fatal("the export carries the PKI")
	}
	f.must(&ImportState{At: t0, Document: doc})
	f.view(func(s *State) {
		if b, _ := json.Marshal(s.PKI); string(b) != before {
			t.Fatalf("import changed the PKI:\n%s\n%s", before, b)
		}
	})
}
