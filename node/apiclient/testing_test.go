package apiclient

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/node/control"
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
	h, err := api.New(api.Options{Controller: ctrl, APIKey: testKey, RequireAuthAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func hostPort(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

// client returns a client for addrs with short retries.
func client(t testing.TB, addrs ...string) *Client {
	t.Helper()
	c, err := New(Config{Addrs: addrs, APIKey: testKey, Timeout: 10 * time.Second, RetryFor: 2 * time.Second})
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
