package pki

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

var loopback = net.IPv4(127, 0, 0, 1)

// testCA makes a CA for cluster "test-cluster".
func testCA(t *testing.T) *CA {
	t.Helper()
	ca, _, err := NewCA("test-cluster", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue makes credentials for nodeID (on 127.0.0.1) signed by ca at now.
func issue(t *testing.T, ca *CA, nodeID string, now time.Time, validity time.Duration) *Credentials {
	t.Helper()
	id := Identity{NodeID: nodeID, IPs: []net.IP{loopback}}
	keyPEM, csrPEM, err := NewKeyAndCSR(id)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, _, err := ca.Sign(csrPEM, id, now, validity)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCredentials(certPEM, keyPEM, ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// handshakeResult is what each side of one TLS handshake saw.
type handshakeResult struct {
	serverErr, clientErr error
	serverSawPeer        string // node id the server verified, "" if none
}

// handshake runs one real TLS handshake over 127.0.0.1 between a server
// with srvCfg and a client with cliCfg, and reports both sides.
func handshake(t *testing.T, srvCfg, cliCfg *tls.Config, v *Verifier) handshakeResult {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type srvOut struct {
		err  error
		peer string
	}
	done := make(chan srvOut, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- srvOut{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			done <- srvOut{err: err}
			return
		}
		var peer string
		if cs := tc.ConnectionState(); len(cs.PeerCertificates) > 0 {
			peer, _ = v.VerifyPeer(cs)
		}
		// A byte each way proves the session carries data (in TLS 1.3 the
		// client learns of a refused client certificate only on read).
		buf := make([]byte, 1)
		if _, err := tc.Read(buf); err != nil {
			done <- srvOut{err: err, peer: peer}
			return
		}
		_, err = tc.Write(buf)
		done <- srvOut{err: err, peer: peer}
	}()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, cerr := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cliCfg)
	if cerr == nil {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, cerr = c.Write([]byte{1}); cerr == nil {
			_, cerr = c.Read(make([]byte, 1))
		}
		c.Close()
	}
	s := <-done
	return handshakeResult{serverErr: s.err, clientErr: cerr, serverSawPeer: s.peer}
}

func isErr(err, target error) bool { return err != nil && errors.Is(err, target) }
