package apiclient

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/raftfsm"
)

const testKey = "0123456789abcdef0123456789abcdef"

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// serve runs the API over ctrl on 127.0.0.1, counting requests.
func serve(t testing.TB, ctrl control.Controller) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	creds := nodeCreds(t, testCA(), ctrl.NodeID())
	h, err := api.New(api.Options{Controller: ctrl, APIKey: testKey, RequireAuthAlways: true,
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: pki.ClientConfig(creds, testVerifier(), "")}}, VerifyNode: testVerifier().VerifyPeer})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := newTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	}))
	return srv, &n
}

// testCA is the cluster CA of this package's test agents.
var testCA = sync.OnceValue(func() *pki.CA {
	ca, _, err := pki.NewCA("apiclient-test", time.Now(), 0)
	if err != nil {
		panic(err)
	}
	return ca
})

// newTLS serves h as an agent does: TLS with a node certificate of testCA
// for 127.0.0.1.
func newTLS(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	cert, err := nodeCreds(t, testCA(), "node-1").GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = pki.ServerConfig(nodeCreds(t, testCA(), "node-1"), testVerifier(), tls.VerifyClientCertIfGiven)
	srv.TLS.GetCertificate, srv.TLS.Certificates = nil, []tls.Certificate{*cert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// testVerifier checks peers against testCA.
func testVerifier() *pki.Verifier { return &pki.Verifier{Roots: testCA().Pool()} }

// nodeCreds are node credentials of ca for 127.0.0.1.
func nodeCreds(t testing.TB, ca *pki.CA, nodeID string) *pki.Credentials {
	t.Helper()
	id := pki.Identity{NodeID: nodeID, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(id)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, _, err := ca.Sign(csrPEM, id, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := pki.NewCredentials(certPEM, keyPEM, ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// agentClient is a client with node nodeID's certificate, as agents call each other.
func agentClient(t testing.TB, nodeID string, addrs ...string) *Client {
	t.Helper()
	c, err := New(Config{Addrs: addrs, APIKey: testKey, TLS: pki.ClientConfig(nodeCreds(t, testCA(), nodeID), testVerifier(), ""),
		Timeout: 10 * time.Second, RetryFor: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hostPort(srv *httptest.Server) string {
	return strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https://"), "http://")
}

// client returns a client for addrs with short retries that verifies the
// agents against testCA.
func client(t testing.TB, addrs ...string) *Client {
	t.Helper()
	c, err := New(Config{Addrs: addrs, APIKey: testKey, CACert: testCA().CertPEM(), Timeout: 10 * time.Second, RetryFor: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// deadAddr is an address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := hostPort(srv)
	srv.Close()
	return addr
}

const webSpec = `project: shop
env: prod
service: web
image: 127.0.0.1:5000/shop/web:1.4
port: 8080
hosts: [shop.example.com]
replicas: 2
secrets: {DB_PASSWORD: s3cret}
`

func mustSpec(t testing.TB, doc string) raftfsm.ServiceSpec {
	t.Helper()
	s, err := raftfsm.DecodeSpecBytes([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
