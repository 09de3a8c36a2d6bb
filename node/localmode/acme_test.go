package localmode

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// TestLocalACMEPebble: `local up --acme pebble --sample` on three nodes
// issues the sample's certificate through DNS-01 against Pebble and the
// fake cloud's DNS server; every node serving the host answers HTTPS that
// verifies against Pebble's root, port 80 redirects there, the challenge
// records are gone, and undeploy removes the certificate.
func TestLocalACMEPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node mesh")
	}
	testkit.RequireDocker(t) // the sample runs in containers
	m := &mesh{t: t, bin: runtimetest.BuildStaticBinary(t, "github.com/dropmesh/dropmesh"), dir: t.TempDir()}
	t.Cleanup(func() { m.run(2*time.Minute, "local", "down", "--dir", m.dir) })
	m.up(3, "--sample", "--acme", ACMEPebble)

	env, err := os.ReadFile(filepath.Join(m.dir, EnvFile))
	if err != nil {
		t.Fatal(err)
	}
	var key string
	for _, line := range strings.Split(string(env), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "export DROPMESH_API_KEY="); ok {
			key = v
		}
	}
	caPEM, err := os.ReadFile(filepath.Join(m.dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	nodes := m.status()
	cl, err := apiclient.New(apiclient.Config{Addrs: []string{nodes[0].API}, APIKey: key, CACert: caPEM, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	host := "sample." + Zone
	sampleCert := func() (raftfsm.IssuedCert, int) {
		info, err := cl.Certs(t.Context())
		if err != nil {
			return raftfsm.IssuedCert{}, -1
		}
		n := 0
		var out raftfsm.IssuedCert
		for _, c := range info.Certs {
			if strings.HasPrefix(c.Name, "svc:") {
				n++
				out = raftfsm.IssuedCert{Name: c.Name, Status: c.Status}
			}
		}
		return out, n
	}
	waitFor(t, 2*time.Minute, "the sample's certificate", func() bool {
		c, n := sampleCert()
		return n == 1 && c.Status == raftfsm.CertValid
	})
	root, err := os.ReadFile(filepath.Join(m.dir, PebbleRootFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	serving := map[string]bool{}
	for _, ip := range m.sampleRecords() {
		serving[ip] = true
	}
	if len(serving) == 0 {
		t.Fatal("no A records for the sample")
	}
	for _, n := range nodes {
		ip, _, _ := net.SplitHostPort(n.EdgeTLS)
		if !serving[ip] {
			continue
		}
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: host},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, n.EdgeTLS)
			}}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		waitFor(t, 30*time.Second, "HTTPS on "+n.ID, func() bool {
			resp, err := hc.Get("https://" + host + "/")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.StatusCode == 200
		})
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.Edge+"/a?b=1", nil)
		req.Host = host
		plain := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPermanentRedirect || !strings.HasPrefix(resp.Header.Get("Location"), "https://"+host) {
			t.Fatalf("%s: plain HTTP = %d %q, want a 308 to https", n.ID, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, r := range m.fakeState().DNSRecords {
		if r.Type == "TXT" {
			t.Fatalf("challenge record left: %+v", r)
		}
	}
	if out, err := m.run(2*time.Minute, "undeploy", "sample/prod/web", "--addr", nodes[0].API, "--api-key", key, "--cacert", filepath.Join(m.dir, CACertFile)); err != nil {
		t.Fatalf("undeploy: %v\n%s", err, out)
	}
	waitFor(t, time.Minute, "the certificate to go", func() bool {
		_, n := sampleCert()
		return n == 0
	})
	// The UI host has its own certificate.
	info, err := cl.Certs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ui bool
	for _, c := range info.Certs {
		ui = ui || (strings.HasPrefix(c.Name, "ui:") && c.Status == raftfsm.CertValid)
	}
	if !ui {
		t.Fatalf("no valid UI certificate: %+v", info.Certs)
	}
}
