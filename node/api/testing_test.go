package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
)

const testKey = "0123456789abcdef0123456789abcdef"

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// testLogger logs to the test at debug level.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newHandler builds the API over ctrl with the test key, as an agent does:
// it forwards with its node certificate and checks its peers' against the
// test CA.
func newHandler(t testing.TB, ctrl control.Controller, mod func(o *Options)) http.Handler {
	t.Helper()
	kit := testCluster()
	o := Options{Controller: ctrl, APIKey: testKey, RequireAuthAlways: true, Logger: testLogger(t),
		HTTPClient: kit.agentClient(kit.node(t, ctrl.NodeID())), VerifyNode: kit.verifier.VerifyPeer}
	if mod != nil {
		mod(&o)
	}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// newTestServer serves the API over ctrl on 127.0.0.1, over TLS with the
// node certificate of ctrl's node.
func newTestServer(t testing.TB, ctrl control.Controller, mod func(o *Options)) *httptest.Server {
	t.Helper()
	return newTLSServer(t, newHandler(t, ctrl, mod), ctrl.NodeID())
}

// hostPort is a test server's address as the state stores it.
func hostPort(srv *httptest.Server) string {
	return strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https://"), "http://")
}

// call makes one request with the test key (or key, when not empty) and
// returns the answer with its body read.
func call(t testing.TB, srv *httptest.Server, method, path string, body any, key string) (*http.Response, []byte) {
	t.Helper()
	return callWith(t, srv.Client(), srv, method, path, body, key)
}

// callWith is call with another client (an agent's, with its node certificate).
func callWith(t testing.TB, client *http.Client, srv *httptest.Server, method, path string, body any, key string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key == "" {
		key = testKey
	}
	if key != "-" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp, data
}

// expect checks the status and decodes a JSON answer into out (if not nil).
func expect(t testing.TB, resp *http.Response, body []byte, status int, out any) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", resp.Request.Method, resp.Request.URL.Path, body, err)
		}
	}
}

// errorOf decodes an error answer.
func errorOf(t testing.TB, body []byte) control.ErrorBody {
	t.Helper()
	var e control.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("not an error answer: %s", body)
	}
	return e
}

// webSpec is a valid service spec in YAML.
const webSpec = `project: shop
env: prod
service: web
image: 127.0.0.1:5000/shop/web:1.4
port: 8080
hosts: [shop.example.com]
replicas: 2
environment: {LOG_LEVEL: info}
secrets: {DB_PASSWORD: s3cret}
`

// answer is a request's outcome, for goroutines that must not call t.Fatal.
type answer struct {
	resp *http.Response
	body []byte
	err  error
}

// fetch makes a request with the test key and extra headers.
func fetch(srv *httptest.Server, method, path string, h http.Header) answer {
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		return answer{err: err}
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{resp: resp, body: body, err: err}
}

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func contextDeadline() error { return context.DeadlineExceeded }

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func controlDeploy(t testing.TB, doc string) control.DeployRequest {
	t.Helper()
	return control.DeployRequest{Spec: mustSpec(t, doc), Actor: "test"}
}
