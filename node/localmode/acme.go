package localmode

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/atomicfile"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/pebble"
)

// ACMEPebble is the value of `local up --acme` that runs Pebble, Let's
// Encrypt's test CA, in the supervisor: the fake cloud then also serves
// its zones over DNS, Pebble validates DNS-01 against that server, and the
// cluster's automatic HTTPS uses Pebble as its CA.
const ACMEPebble = "pebble"

// PebbleRootFile is where the supervisor writes the root Pebble issues
// under (PEM): `curl --cacert DIR/pebble-root.pem https://web.example.test
// --resolve web.example.test:PORT:IP` verifies against it.
const PebbleRootFile = "pebble-root.pem"

// checkACME refuses an unknown --acme value.
func checkACME(v string) error {
	if v != "" && v != ACMEPebble {
		return fmt.Errorf("--acme %q: the only local CA is %q", v, ACMEPebble)
	}
	return nil
}

// EdgeTLSPort is a node's edge TLS port when local mode serves HTTPS:
// 443 where the edge has port 80, else an offset from the base port.
func (l Layout) EdgeTLSPort(a Addrs) int {
	switch {
	case l.EdgeOnPort80:
		return 443
	case l.Shared:
		return a.Edge + 1
	default:
		return a.Edge + 100
	}
}

// localACME is the supervisor's Pebble and the fake cloud's DNS server.
type localACME struct {
	dns *fakeapi.DNSServer
	ca  *pebble.CA
}

// startACME starts the fake cloud's DNS server and Pebble and writes
// Pebble's root to DIR/pebble-root.pem.
func (s *supervisor) startACME() (*localACME, error) {
	d, err := s.fake.ServeDNS("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ca, err := pebble.Start(pebble.Config{Resolver: d.Addr(), Logger: s.log.With("component", "pebble")})
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(s.dir, PebbleRootFile), ca.RootPEM(), 0o644); err != nil {
		_ = ca.Close()
		_ = d.Close()
		return nil, err
	}
	s.log.Info("pebble ACME CA started", "directory", ca.DirectoryURL(), "dns", d.Addr(), "root", filepath.Join(s.dir, PebbleRootFile))
	return &localACME{dns: d, ca: ca}, nil
}

func (l *localACME) close() {
	_ = l.ca.Close()
	_ = l.dns.Close()
}

// configureACME points the cluster's automatic HTTPS at this supervisor's
// Pebble (a new one on every start: its URL and root change).
func (s *supervisor) configureACME(ctx context.Context, client *apiclient.Client, l *localACME, deadline time.Time) error {
	req := control.ACMERequest{Enabled: true, Directory: l.ca.DirectoryURL(), DirectoryCA: string(l.ca.DirectoryCA()),
		Resolvers: []string{l.dns.Addr()}}
	for {
		err := client.SetACME(ctx, req)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("point the cluster's ACME at pebble: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// edgeTLSOverride is the agent environment that opens the edge's TLS port.
func edgeTLSOverride(l Layout, a Addrs) (string, string) {
	return "DROPMESH_EDGE_TLS_PORT", strconv.Itoa(l.EdgeTLSPort(a))
}

// edgeTLSAddr is a node's edge TLS address.
func edgeTLSAddr(l Layout, a Addrs) string {
	return net.JoinHostPort(a.IP, strconv.Itoa(l.EdgeTLSPort(a)))
}
