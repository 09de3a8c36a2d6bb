package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/pki"
)

const testKey = "0123456789abcdef0123456789abcdef"

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// syncBuffer is a buffer a running command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs CLI commands against an API over a fake controller.
type harness struct {
	t    *testing.T
	fake *apitest.Fake
	srv  *httptest.Server
	vars map[string]string
	// cfgDir holds config.json; stdin feeds commands that read it.
	cfgDir string
	stdin  string
	tty    bool
	// stop ends the commands that follow (logs -f, events -f), as Ctrl-C would.
	ctx  context.Context
	stop context.CancelFunc
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	fake := apitest.NewFake("node-1")
	h, err := api.New(api.Options{Controller: fake, APIKey: testKey, RequireAuthAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, caFile := serveTLS(t, h)
	ctx, stop := context.WithCancel(t.Context())
	t.Cleanup(stop)
	return &harness{t: t, fake: fake, srv: srv, cfgDir: t.TempDir(), ctx: ctx, stop: stop,
		vars: map[string]string{"DROPMESH_ADDR": strings.TrimPrefix(srv.URL, "https://"), "DROPMESH_API_KEY": testKey, "DROPMESH_CACERT": caFile}}
}

// serveTLS serves h as an agent does: over TLS with a node certificate of
// a fresh cluster CA, whose certificate it writes to a file (what
// DROPMESH_CACERT names).
func serveTLS(t *testing.T, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	ca, _, err := pki.NewCA("cli-test", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	id := pki.Identity{NodeID: "node-1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(id)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, _, err := ca.Sign(csrPEM, id, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

func (h *harness) env() *env {
	return &env{
		version:   "test",
		getenv:    func(k string) string { return h.vars[k] },
		stdin:     strings.NewReader(h.stdin),
		isTTY:     func(io.Writer) bool { return h.tty },
		configDir: func() (string, error) { return h.cfgDir, nil },
		now:       time.Now,
		signals: func(ctx context.Context) (context.Context, context.CancelFunc) {
			merged, cancel := context.WithCancel(ctx)
			stop := context.AfterFunc(h.ctx, cancel)
			return merged, func() { stop(); cancel() }
		},
	}
}

// result is a finished command.
type result struct {
	stdout, stderr string
	code           int
}

// run runs one command line to its end.
func (h *harness) run(args ...string) result {
	h.t.Helper()
	var out, errOut syncBuffer
	code := h.exec(&out, &errOut, args...)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

func (h *harness) exec(out, errOut io.Writer, args ...string) int {
	root := &cobra.Command{Use: "dropmesh", SilenceUsage: true, SilenceErrors: true}
	addCommands(root, h.env())
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetArgs(args)
	return Execute(root, errOut)
}

// start runs a command in the background; wait returns its result.
func (h *harness) start(args ...string) (out, errOut *syncBuffer, wait func() result) {
	out, errOut = &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- h.exec(out, errOut, args...) }()
	return out, errOut, func() result {
		h.t.Helper()
		select {
		case code := <-done:
			return result{stdout: out.String(), stderr: errOut.String(), code: code}
		case <-time.After(30 * time.Second):
			h.t.Fatalf("%v did not finish; stdout %q stderr %q", args, out.String(), errOut.String())
			return result{}
		}
	}
}

// writeFile writes a file under dir and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := dir + "/" + name
	if err := os.MkdirAll(p[:strings.LastIndex(p, "/")], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
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
