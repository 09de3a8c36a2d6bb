package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestCAShowsTheCAAndNodeCertificates(t *testing.T) {
	h := newHarness(t)
	if r := h.run("ca"); r.code == 0 || !strings.Contains(r.stderr, "cluster CA") {
		t.Fatalf("no CA yet: %+v", r)
	}
	now := time.Now().UTC()
	ca, _, err := pki.NewCA("fake-cluster", now, 0)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(c raftfsm.Command) {
		t.Helper()
		if _, err := h.fake.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	apply(&raftfsm.SetClusterCA{At: now, CACertPEM: string(ca.CertPEM()), CAKey: "v1:AAAA"})
	apply(&raftfsm.RecordNodeCert{At: now, Cert: raftfsm.NodeCert{Serial: "a1", Node: "node-1", NotBefore: now, NotAfter: now.Add(30 * 24 * time.Hour)}})
	apply(&raftfsm.RecordNodeCert{At: now, Cert: raftfsm.NodeCert{Serial: "b2", Node: "node-2", NotBefore: now, NotAfter: now.Add(30 * 24 * time.Hour)}})
	apply(&raftfsm.RevokeCerts{At: now, Node: "node-2", Reason: "node removed"})

	fp, _ := pki.Fingerprint(ca.CertPEM())
	r := h.run("ca")
	if r.code != 0 {
		t.Fatalf("ca: %+v", r)
	}
	for _, want := range []string{"dropmesh cluster CA fake-cluster", fp, "node-1", "a1", "node-2", "b2", "node removed", "in 29d"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ca output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = h.run("ca", "--json")
	var info control.CAInfo
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || r.code != 0 {
		t.Fatalf("ca --json: %v %+v", err, r)
	}
	if info.Fingerprint != fp || len(info.Certs) != 2 || info.Certs[0].Node != "node-1" || info.Certs[0].Revoked || !info.Certs[1].Revoked {
		t.Fatalf("ca --json: %+v", info)
	}
	if strings.Contains(r.stdout, "v1:AAAA") || strings.Contains(r.stdout, "PRIVATE KEY") {
		t.Fatal("the CA key is shown")
	}
}
