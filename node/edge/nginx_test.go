package edge

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/testkit"
)

// nginxBinary returns the nginx binary; without one the test fails in CI
// and is skipped elsewhere (the built-in proxy runs the same suite).
func nginxBinary(t testing.TB) string {
	t.Helper()
	testkit.RequireTool(t, "nginx")
	bin, ok := NginxPath()
	if !ok {
		t.Fatal("nginx is installed but NginxPath does not find it")
	}
	return bin
}

// nginxOptions are options for a test master in a fresh temp dir on free
// 127.0.0.1 ports.
func nginxOptions(t testing.TB) NginxOptions {
	logger, _ := newLogCapture(t)
	return NginxOptions{
		Binary:          nginxBinary(t),
		Dir:             t.TempDir(),
		Listen:          freeAddr(t),
		Logger:          logger,
		WorkerProcesses: 2,
	}
}

// startNginx starts (or adopts) a master and stops it when the test ends,
// checking that no nginx process is left.
func startNginx(t testing.TB, o NginxOptions) *Nginx {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := NewNginx(ctx, o)
	if err != nil {
		t.Fatalf("NewNginx: %v", err)
	}
	stopNginxAtEnd(t, n)
	return n
}

func stopNginxAtEnd(t testing.TB, n *Nginx) {
	t.Cleanup(func() {
		pid := n.Pid()
		workers := childrenOf(pid)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
		for _, p := range append(workers, pid) {
			if processAlive(p) {
				t.Errorf("nginx process %d outlived Stop", p)
			}
		}
	})
}

func newNginxHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	no := nginxOptions(t)
	no.ClientMaxBodySize = o.maxBody
	if o.tls {
		no.ListenTLS = freeAddr(t)
	}
	n := startNginx(t, no)
	return &harness{
		edge:    n,
		tlsAddr: no.ListenTLS,
		liveConfig: func() string {
			b, err := os.ReadFile(n.ConfigPath())
			if err != nil {
				t.Fatal(err)
			}
			return string(stripStatus(b))
		},
		accessLog: func() string {
			files, _ := filepath.Glob(filepath.Join(no.Dir, "logs", "access*.log"))
			var all strings.Builder
			for _, f := range files {
				b, _ := os.ReadFile(f)
				all.Write(b)
			}
			return all.String()
		},
	}
}

func TestNginxSuite(t *testing.T) {
	nginxBinary(t)
	runEdgeSuite(t, newNginxHarness)
}

func readLive(t testing.TB, n *Nginx) string {
	t.Helper()
	b, err := os.ReadFile(n.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	return string(stripStatus(b))
}

func TestNginxAdoptsRunningMaster(t *testing.T) {
	o := nginxOptions(t)
	n1 := startNginx(t, o)
	a, b := newBackend(t, "A"), newBackend(t, "B")
	mustApply(t, n1, Config{Routes: []Route{routeTo("app.example.test", "web", a)}})
	if err := n1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	n2 := startNginx(t, o)
	if n2.Pid() != n1.Pid() {
		t.Fatalf("second NewNginx started pid %d instead of adopting %d", n2.Pid(), n1.Pid())
	}
	c := newClient(t, o.Listen)
	c.expect(t, "app.example.test", "/", 200, "A")
	mustApply(t, n2, Config{Routes: []Route{routeTo("app.example.test", "web", b)}})
	c.expect(t, "app.example.test", "/", 200, "B")
	if n2.Pid() != n1.Pid() {
		t.Fatal("Apply on the adopted master replaced it")
	}
}

func TestNginxCloseKeepsServingStopEnds(t *testing.T) {
	o := nginxOptions(t)
	n := startNginx(t, o)
	a := newBackend(t, "A")
	mustApply(t, n, Config{Routes: []Route{routeTo("app.example.test", "web", a)}})
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, o.Listen)
	c.expect(t, "app.example.test", "/", 200, "A")
	if err := n.Apply(context.Background(), Config{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close = %v, want ErrClosed", err)
	}
	pid := n.Pid()
	if err := n.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid) {
		t.Fatalf("master %d alive after Stop", pid)
	}
	if conn, err := net.DialTimeout("tcp", o.Listen, time.Second); err == nil {
		conn.Close()
		t.Fatal("port still served after Stop")
	}
}

func TestNginxRejectedConfigRollsBack(t *testing.T) {
	o := nginxOptions(t)
	n := startNginx(t, o)
	a, b := newBackend(t, "A"), newBackend(t, "B")
	mustApply(t, n, Config{Routes: []Route{routeTo("app.example.test", "web", a)}})
	before := readLive(t, n)

	n.testExtra = "bogus_directive on;\n"
	err := n.Apply(context.Background(), Config{Routes: []Route{routeTo("app.example.test", "web", b)}})
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `unknown directive "bogus_directive"`) {
		t.Fatalf("Apply of a config nginx refuses = %v, want ErrRejected with nginx's message", err)
	}
	if after := readLive(t, n); after != before {
		t.Fatal("the live config changed after a refused Apply")
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "dropmesh.conf.new")); !os.IsNotExist(err) {
		t.Fatalf("the refused file was left behind: %v", err)
	}
	newClient(t, o.Listen).expect(t, "app.example.test", "/", 200, "A")

	n.testExtra = ""
	mustApply(t, n, Config{Routes: []Route{routeTo("app.example.test", "web", b)}})
	newClient(t, o.Listen).expect(t, "app.example.test", "/", 200, "B")
}

// TestNginxApplyCanceled: a caller that gives up before the swap changes
// nothing and is not told that nginx refused; one that gives up once the
// new file is live still gets the reload done, not rolled back half-way
// (which would flip traffic twice and report a refusal nginx never made).
func TestNginxApplyCanceled(t *testing.T) {
	o := nginxOptions(t)
	n := startNginx(t, o)
	a, b := newBackend(t, "A"), newBackend(t, "B")
	mustApply(t, n, Config{Routes: []Route{routeTo("app.example.test", "web", a)}})
	before := readLive(t, n)
	c := newClient(t, o.Listen)
	toB := Config{Routes: []Route{routeTo("app.example.test", "web", b)}}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Apply(ctx, toB); !errors.Is(err, context.Canceled) || errors.Is(err, ErrRejected) {
		t.Fatalf("Apply with a canceled context = %v, want context.Canceled and no ErrRejected", err)
	}
	if after := readLive(t, n); after != before {
		t.Fatal("the live config changed after a canceled Apply")
	}
	c.expect(t, "app.example.test", "/", 200, "A")

	// Cancel the moment the new file is live, long before nginx confirms.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	watched := make(chan bool, 1)
	go func() {
		wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer wcancel()
		watched <- waitUntil(wctx, time.Millisecond, func() bool {
			live, _ := os.ReadFile(n.ConfigPath())
			return strings.Contains(string(live), b.addr())
		})
		cancel()
	}()
	if err := n.Apply(ctx, toB); err != nil {
		t.Fatalf("Apply canceled after the swap = %v, want the reload completed", err)
	}
	if !<-watched {
		t.Fatal("never saw the new file live")
	}
	if !strings.Contains(readLive(t, n), b.addr()) {
		t.Fatal("the live config went back to the previous one")
	}
	c.expect(t, "app.example.test", "/", 200, "B")
}

// TestNginxFailedReloadRestoresPrevious makes the reload itself fail (nginx
// -t does not bind ports): an agent restarted with a new listen port adopts
// the master and applies, but the port is taken.
func TestNginxFailedReloadRestoresPrevious(t *testing.T) {
	o := nginxOptions(t)
	n1 := startNginx(t, o)
	a := newBackend(t, "A")
	cfg := Config{Routes: []Route{routeTo("app.example.test", "web", a)}}
	mustApply(t, n1, cfg)
	before := readLive(t, n1)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	o2 := o
	o2.Listen = busy.Addr().String()
	n2 := startNginx(t, o2)
	if n2.Pid() != n1.Pid() {
		t.Fatal("did not adopt")
	}
	err = n2.Apply(context.Background(), cfg)
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "Address already in use") || !strings.Contains(err.Error(), "restored") {
		t.Fatalf("Apply with a busy port = %v, want ErrRejected with nginx's bind error and the restore", err)
	}
	if after := readLive(t, n2); after != before {
		t.Fatalf("live config after the failed reload:\n%s\nwant the previous one:\n%s", after, before)
	}
	newClient(t, o.Listen).expect(t, "app.example.test", "/", 200, "A")

	busy.Close()
	mustApply(t, n2, cfg)
	newClient(t, o2.Listen).expect(t, "app.example.test", "/", 200, "A")
}

func TestNginxRestartsDeadMaster(t *testing.T) {
	o := nginxOptions(t)
	n := startNginx(t, o)
	a := newBackend(t, "A")
	old := n.Pid()
	workers := childrenOf(old)
	// The master first: a master that outlives one of its workers forks a
	// replacement, which would keep the listening socket after the test has
	// killed everything it knew of.
	for _, p := range append([]int{old}, workers...) {
		_ = signal(p, sigKill)
	}
	testkit.WaitFor(t, 5*time.Second, "the killed master to die", func() bool { reap(old); return !processAlive(old) })
	for _, w := range workers {
		testkit.WaitFor(t, 5*time.Second, "killed workers to die", func() bool { reap(w); return !processAlive(w) })
	}
	mustApply(t, n, Config{Routes: []Route{routeTo("app.example.test", "web", a)}})
	if n.Pid() == old || !processAlive(n.Pid()) {
		t.Fatalf("no new master: pid %d (old %d)", n.Pid(), old)
	}
	newClient(t, o.Listen).expect(t, "app.example.test", "/", 200, "A")
}

func TestNginxStartFailsOnBusyPort(t *testing.T) {
	o := nginxOptions(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	o.Listen = busy.Addr().String()
	_, err = NewNginx(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("NewNginx on a busy port = %v, want nginx's bind error", err)
	}
	if pid, err := readPidFile(filepath.Join(o.Dir, "run", "nginx.pid")); err == nil && processAlive(pid) {
		_ = signal(pid, sigKill)
		t.Fatalf("a failed start left nginx %d running", pid)
	}
}

func TestNginxResumesLastRoutes(t *testing.T) {
	o := nginxOptions(t)
	n1 := startNginx(t, o)
	a := newBackend(t, "A")
	mustApply(t, n1, Config{Routes: []Route{routeTo("app.example.test", "web", a)}})
	if err := n1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	n2 := startNginx(t, o)
	if n2.Pid() == n1.Pid() {
		t.Fatal("adopted a stopped master")
	}
	newClient(t, o.Listen).expect(t, "app.example.test", "/", 200, "A")
}

// TestNginxReloadIsGraceful shows the mechanism: a reload starts new
// workers, the old ones keep serving their requests and exit only after.
func TestNginxReloadIsGraceful(t *testing.T) {
	o := nginxOptions(t)
	n := startNginx(t, o)
	a, b := newBackend(t, "A"), newBackend(t, "B")
	mustApply(t, n, Config{Routes: []Route{routeTo("app.example.test", "web", a)}})
	c := newClient(t, o.Listen)
	var oldWorkers []int
	testkit.WaitFor(t, 10*time.Second, "two workers (the earlier generation gone)", func() bool {
		oldWorkers = childrenOf(n.Pid())
		return len(oldWorkers) == 2
	})
	done := make(chan string, 2)
	for range 2 {
		go func() {
			code, body, err := c.do(http.MethodGet, "app.example.test", "/block", nil, 0, nil)
			if err != nil || code != 200 {
				body = "failed"
			}
			done <- body
		}()
	}
	testkit.WaitFor(t, 5*time.Second, "two blocked requests", func() bool { return a.blocked.Load() == 2 })
	mustApply(t, n, Config{Routes: []Route{routeTo("app.example.test", "web", b)}})
	c.expect(t, "app.example.test", "/", 200, "B")
	newWorkers := childrenOf(n.Pid())
	busyOld := 0
	for _, w := range oldWorkers {
		if slices.Contains(newWorkers, w) {
			busyOld++
		}
	}
	if busyOld == 0 || len(newWorkers) <= busyOld {
		t.Fatalf("after reload: old workers %v, now %v: want the busy old ones still running beside new ones", oldWorkers, newWorkers)
	}
	a.unblock()
	for range 2 {
		if got := <-done; got != "A" {
			t.Fatalf("request across the reload = %q, want A", got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range oldWorkers {
		if processAlive(w) {
			t.Fatalf("old worker %d alive after Drain", w)
		}
	}
}

func TestNginxCertFiles(t *testing.T) {
	o := nginxOptions(t)
	o.ListenTLS = freeAddr(t)
	n := startNginx(t, o)
	a := newBackend(t, "A")
	cert, _ := selfSignedZone(t, "example.test")
	r := []Route{routeTo("app.example.test", "web", a)}
	mustApply(t, n, Config{Routes: r, Certs: []Cert{cert}})
	crt, key := nginxLayout{dir: o.Dir}.certFiles(cert)
	for _, f := range []string{crt, key} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	// The previous config still names the files (a rollback needs them);
	// one more Apply without certificates lets them go.
	mustApply(t, n, Config{Routes: r})
	if _, err := os.Stat(key); err != nil {
		t.Fatalf("key removed while the previous config uses it: %v", err)
	}
	mustApply(t, n, Config{Routes: r})
	if _, err := os.Stat(key); !os.IsNotExist(err) {
		t.Fatalf("unused key kept: %v", err)
	}
}

func TestNewNginxRefusesBadOptions(t *testing.T) {
	bin := nginxBinary(t)
	dir := t.TempDir()
	for name, o := range map[string]NginxOptions{
		"no binary":    {Binary: filepath.Join(dir, "missing"), Dir: dir, Listen: "127.0.0.1:8080"},
		"relative dir": {Binary: bin, Dir: "rel/dir", Listen: "127.0.0.1:8080"},
		"dir space":    {Binary: bin, Dir: dir + "/a b", Listen: "127.0.0.1:8080"},
		"dir brace":    {Binary: bin, Dir: dir + "/a{", Listen: "127.0.0.1:8080"},
		"bad listen":   {Binary: bin, Dir: dir, Listen: "localhost:80"},
		"port 0":       {Binary: bin, Dir: dir, Listen: "127.0.0.1:0"},
		"same tls":     {Binary: bin, Dir: dir, Listen: "127.0.0.1:8080", ListenTLS: "127.0.0.1:8080"},
		"long dir":     {Binary: bin, Dir: dir + "/" + strings.Repeat("d", 100), Listen: "127.0.0.1:8080"},
	} {
		if _, err := NewNginx(context.Background(), o); err == nil {
			t.Errorf("%s: NewNginx accepted it", name)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("refused options left files: %v", ents)
	}
}

func TestStopNginxDir(t *testing.T) {
	o := nginxOptions(t)
	n := startNginx(t, o)
	pid := n.Pid()
	if err := StopNginxDir(context.Background(), o.Dir); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid) {
		t.Fatalf("master %d alive after StopNginxDir", pid)
	}
	empty := t.TempDir()
	if err := StopNginxDir(context.Background(), empty); err != nil {
		t.Fatalf("StopNginxDir on a dir without nginx: %v", err)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Fatalf("StopNginxDir created files: %v", ents)
	}
}

// TestNginxQuickReloadRespawnsNothing: the edge quits the old workers
// itself, before nginx's master does; the master must not take their exit
// for a crash and start replacements. After a series of changes (some back
// to back), the master runs exactly its workers again, all of the last
// generation, and it started exactly two workers per reload.
func TestNginxQuickReloadRespawnsNothing(t *testing.T) {
	o := nginxOptions(t)
	n := startNginx(t, o)
	a, b := newBackend(t, "A"), newBackend(t, "B")
	const changes = 6
	for i := range changes {
		be := a
		if i%2 == 1 {
			be = b
		}
		mustApply(t, n, Config{Routes: []Route{routeTo("app.example.test", "web", be)}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	errLog := func() string { b, _ := os.ReadFile(n.l.errorLog()); return string(b) }
	// Every worker but the last two has exited and been reaped (the
	// master logs each exit as it reaps it, and respawns, if at all, then).
	testkit.WaitFor(t, 10*time.Second, "the master to reap every earlier worker", func() bool {
		return strings.Count(errLog(), "exited with code 0") >= 2*changes
	})
	testkit.WaitFor(t, 10*time.Second, "exactly two workers", func() bool {
		ws := childrenOf(n.Pid())
		if len(ws) != 2 {
			return false
		}
		for _, w := range ws {
			if !strings.HasSuffix(processTitle(w), "worker process") {
				return false
			}
		}
		return true
	})
	if got, want := strings.Count(errLog(), "start worker process "), 2*(changes+1); got != want {
		t.Fatalf("the master started %d workers over %d reloads and the start, want %d (a respawn?):\n%s", got, changes, want, errLog())
	}
	if strings.Contains(errLog(), "[alert]") {
		t.Fatalf("the master logged an alert:\n%s", errLog())
	}
	newClient(t, o.Listen).expect(t, "app.example.test", "/", 200, "B")
}
