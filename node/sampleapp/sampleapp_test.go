package sampleapp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/testkit"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines and the test.
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

// exits records the codes passed to Options.Exit.
type exits struct {
	mu    sync.Mutex
	codes []int
}

func (e *exits) exit(code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.codes = append(e.codes, code)
}

func (e *exits) get() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.codes...)
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, timeout, "the condition", cond)
}

type fixture struct {
	srv   *httptest.Server
	out   *syncBuffer
	exits *exits
	data  string
}

func newFixture(t *testing.T, env map[string]string) *fixture {
	t.Helper()
	f := &fixture{out: &syncBuffer{}, exits: &exits{}, data: t.TempDir()}
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["DATA_DIR"]; !ok {
		env["DATA_DIR"] = f.data
	}
	h, err := Handler(Options{Stdout: f.out, Exit: f.exits.exit, Getenv: envOf(env)})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) do(t *testing.T, method, path string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestRootShowsHostAndVersion(t *testing.T) {
	f := newFixture(t, map[string]string{"VERSION": "1.4.2"})
	code, body := f.do(t, "GET", "/", "")
	host, _ := os.Hostname()
	if code != 200 || !strings.Contains(body, host) || !strings.Contains(body, "1.4.2") {
		t.Fatalf("GET / = %d %q; want 200 with host %q and version 1.4.2", code, body, host)
	}
	if code, _ := f.do(t, "GET", "/nope", ""); code != 404 {
		t.Fatalf("GET /nope = %d, want 404", code)
	}
}

// Without $VERSION the answer names the binary's own version (dropmesh's
// -X main.version), never an empty one.
func TestRootShowsTheBinaryVersionWithoutVERSION(t *testing.T) {
	for _, c := range []struct {
		env     map[string]string
		version string
		want    string
	}{
		{map[string]string{}, "v0.9.1-3-gabc", "(version v0.9.1-3-gabc)"},
		{map[string]string{"VERSION": "1.4.2"}, "v0.9.1-3-gabc", "(version 1.4.2)"},
		{map[string]string{}, "", "(version unknown)"},
	} {
		h, err := Handler(Options{Stdout: io.Discard, Getenv: envOf(c.env), Version: c.version})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("env %v, binary %q: GET / = %d %q; want %q", c.env, c.version, rec.Code, rec.Body.String(), c.want)
		}
	}
}

func TestHealthSwitch(t *testing.T) {
	f := newFixture(t, nil)
	steps := []struct {
		method, path string
		want         int
	}{
		{"GET", "/health", 200},
		{"POST", "/admin/health?fail=1", 200},
		{"GET", "/health", 500},
		{"GET", "/health", 500},
		{"POST", "/admin/health?fail=0", 200},
		{"GET", "/health", 200},
		{"POST", "/admin/health?fail=maybe", 400},
		{"GET", "/admin/health?fail=1", 405},
		{"GET", "/health", 200},
	}
	for i, s := range steps {
		if code, body := f.do(t, s.method, s.path, ""); code != s.want {
			t.Fatalf("step %d: %s %s = %d %q, want %d", i, s.method, s.path, code, body, s.want)
		}
	}
}

func TestLogPlainAndJSON(t *testing.T) {
	plain := newFixture(t, nil)
	if code, body := plain.do(t, "POST", "/admin/log?level=error&msg=disk+on+fire", ""); code != 200 {
		t.Fatalf("log = %d %q", code, body)
	}
	if code, _ := plain.do(t, "POST", "/admin/log?msg=hello", ""); code != 200 {
		t.Fatalf("log without level = %d", code)
	}
	if got, want := plain.out.String(), "ERROR disk on fire\nINFO hello\n"; got != want {
		t.Fatalf("stdout = %q, want %q", got, want)
	}

	js := newFixture(t, map[string]string{"LOG_FORMAT": "json"})
	if code, _ := js.do(t, "POST", "/admin/log?level=Warn&msg=careful", ""); code != 200 {
		t.Fatal("json log refused")
	}
	var line struct{ Level, Msg, Time string }
	if err := json.Unmarshal([]byte(js.out.String()), &line); err != nil {
		t.Fatalf("json line %q: %v", js.out.String(), err)
	}
	if line.Level != "warn" || line.Msg != "careful" || line.Time == "" {
		t.Fatalf("json line = %+v", line)
	}
}

func TestLogRejectsBadInput(t *testing.T) {
	f := newFixture(t, nil)
	for _, q := range []string{"level=err%20or&msg=x", "level=error&msg=two%0Alines", "level=" + strings.Repeat("e", 17)} {
		if code, _ := f.do(t, "POST", "/admin/log?"+q, ""); code != 400 {
			t.Errorf("log?%s = %d, want 400", q, code)
		}
	}
	if out := f.out.String(); out != "" {
		t.Fatalf("refused requests wrote %q", out)
	}
}

func TestBadLogFormatIsAnError(t *testing.T) {
	if _, err := Handler(Options{Getenv: envOf(map[string]string{"LOG_FORMAT": "xml"})}); err == nil {
		t.Fatal("LOG_FORMAT=xml accepted")
	}
}

func TestExit(t *testing.T) {
	f := newFixture(t, nil)
	if code, body := f.do(t, "POST", "/admin/exit?code=7", ""); code != 200 || !strings.Contains(body, "7") {
		t.Fatalf("exit = %d %q", code, body)
	}
	for _, bad := range []string{"", "x", "-1", "256"} {
		if code, _ := f.do(t, "POST", "/admin/exit?code="+bad, ""); code != 400 {
			t.Errorf("exit?code=%s = %d, want 400", bad, code)
		}
	}
	// The answer is flushed before Exit is called: the call may come just
	// after the client has read it.
	waitFor(t, 5*time.Second, func() bool { return len(f.exits.get()) > 0 })
	if got := f.exits.get(); len(got) != 1 || got[0] != 7 {
		t.Fatalf("exit codes = %v, want [7]", got)
	}
}

func TestWriteAndRead(t *testing.T) {
	f := newFixture(t, nil)
	p := filepath.Join(f.data, "sub", "x")
	if code, body := f.do(t, "POST", "/admin/write?path="+p, "payload-1"); code != 200 {
		t.Fatalf("write = %d %q", code, body)
	}
	if code, body := f.do(t, "GET", "/admin/read?path="+p, ""); code != 200 || body != "payload-1" {
		t.Fatalf("read = %d %q", code, body)
	}
	if code, _ := f.do(t, "POST", "/admin/write?path="+p+"&body=payload-2", "ignored"); code != 200 {
		t.Fatal("write with ?body= refused")
	}
	if _, body := f.do(t, "GET", "/admin/read?path="+p, ""); body != "payload-2" {
		t.Fatalf("read after ?body= = %q", body)
	}
	if code, _ := f.do(t, "GET", "/admin/read?path="+filepath.Join(f.data, "missing"), ""); code != 404 {
		t.Fatalf("read missing = %d, want 404", code)
	}
	big := strings.Repeat("x", maxWriteBytes+1)
	if code, _ := f.do(t, "POST", "/admin/write?path="+filepath.Join(f.data, "big"), big); code != 413 {
		t.Fatalf("oversize write = %d, want 413", code)
	}
	if _, err := os.Stat(filepath.Join(f.data, "big")); !os.IsNotExist(err) {
		t.Fatalf("oversize write left a file: %v", err)
	}
}

func TestWriteRefusesPathsOutsideDataDir(t *testing.T) {
	f := newFixture(t, nil)
	outside := filepath.Join(t.TempDir(), "x")
	for _, p := range []string{"", "rel/x", f.data + "/../escape", outside, f.data, f.data + "//x"} {
		if code, _ := f.do(t, "POST", "/admin/write?path="+p+"&body=x", ""); code != 400 {
			t.Errorf("write path=%q = %d, want 400", p, code)
		}
		if code, _ := f.do(t, "GET", "/admin/read?path="+p, ""); code != 400 {
			t.Errorf("read path=%q = %d, want 400", p, code)
		}
	}
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Fatalf("a refused write created %s", outside)
	}
}

func TestOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		exit []int
	}{
		{"arg", []string{"once"}, map[string]string{"EXIT_CODE": "3"}, []int{3}},
		{"env", nil, map[string]string{"SAMPLE_ONCE": "1", "EXIT_CODE": "4"}, []int{4}},
		{"zero", []string{"once"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ex := &syncBuffer{}, &exits{}
			err := Run(context.Background(), Options{Args: tc.args, Stdout: out, Exit: ex.exit, Getenv: envOf(tc.env)})
			if err != nil {
				t.Fatal(err)
			}
			if got := ex.get(); len(got) != len(tc.exit) || (len(got) == 1 && got[0] != tc.exit[0]) {
				t.Fatalf("exit codes = %v, want %v", got, tc.exit)
			}
			if !strings.Contains(out.String(), "once") {
				t.Fatalf("once printed %q", out.String())
			}
		})
	}
	err := Run(context.Background(), Options{Args: []string{"once"}, Stdout: io.Discard, Exit: func(int) { t.Fatal("exited") },
		Getenv: envOf(map[string]string{"EXIT_CODE": "lots"})})
	if err == nil {
		t.Fatal("EXIT_CODE=lots accepted")
	}
}

var listenLine = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)

func TestRunServesUntilContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Addr: "127.0.0.1:0", Stdout: out, Exit: func(int) {}, Getenv: envOf(nil)})
	}()
	var addr string
	waitFor(t, 5*time.Second, func() bool {
		m := listenLine.FindStringSubmatch(out.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("health = %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	if _, err := http.Get("http://" + addr + "/health"); err == nil {
		t.Fatal("still serving after Run returned")
	}
}

func TestRunPortFromEnvAndListenErrors(t *testing.T) {
	o := Options{Getenv: envOf(map[string]string{"PORT": "9123"})}.withDefaults()
	if o.Addr != ":9123" {
		t.Fatalf("addr from PORT = %q", o.Addr)
	}
	if o := (Options{Getenv: envOf(nil)}).withDefaults(); o.Addr != DefaultAddr {
		t.Fatalf("default addr = %q", o.Addr)
	}
	for _, addr := range []string{"nonsense", "127.0.0.1:99999"} {
		if err := Run(context.Background(), Options{Addr: addr, Stdout: io.Discard, Getenv: envOf(nil)}); err == nil {
			t.Errorf("Run(addr %q) succeeded", addr)
		}
	}
}
