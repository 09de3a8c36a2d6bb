package edge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/atomicfile"
)

// NginxOptions configure an nginx edge.
type NginxOptions struct {
	// Binary is the nginx executable; empty means NginxPath().
	Binary string
	// Dir is the master's private prefix directory (config, pid file,
	// logs, temp paths, certificates). One Dir, one master.
	Dir string
	// Listen is the plain HTTP address, such as "127.0.0.2:80" or ":80".
	Listen string
	// ListenTLS is the TLS address (optional), such as "127.0.0.2:443".
	ListenTLS string
	// Logger receives the edge's own log lines (nil: discard).
	Logger *slog.Logger
	// ClientMaxBodySize is the largest request body in bytes (0:
	// DefaultClientMaxBodySize); larger gets 413.
	ClientMaxBodySize int64
	// WorkerProcesses is nginx's worker count (0: one per CPU).
	WorkerProcesses int
	// Timings are the timeouts; zero fields take DefaultTimings.
	Timings Timings
}

// NginxPath finds the nginx binary: on PATH, else /usr/sbin/nginx.
func NginxPath() (string, bool) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, true
	}
	if st, err := os.Stat("/usr/sbin/nginx"); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return "/usr/sbin/nginx", true
	}
	return "", false
}

// maxSockPath is the longest unix socket path every Unix accepts.
const maxSockPath = 103

// Nginx is an edge served by a private nginx master. The master runs
// daemonized with its pid file in Dir, so it outlives the agent: NewNginx
// adopts a live one, Close leaves it serving, Stop ends it.
type Nginx struct {
	o      NginxOptions
	l      nginxLayout
	log    *slog.Logger
	status *http.Client // asks the master's status socket for the live generation
	nonce  string       // makes generations unique across agent restarts

	mu      sync.Mutex // serialises Apply, Stop and the fields below
	pid     int        // the master
	seq     uint64     // generations made by this Nginx
	closed  bool
	retired map[int]struct{} // workers of earlier generations, for Drain

	// testExtra is appended to the rendered routes: tests use it to make
	// nginx refuse an otherwise valid config.
	testExtra string
}

var _ Edge = (*Nginx)(nil)

// NewNginx adopts the nginx master running for o.Dir (found through its pid
// file) or starts one. A started master serves the routes file left from
// the last run when nginx still accepts it, else no routes (404 for all).
func NewNginx(ctx context.Context, o NginxOptions) (*Nginx, error) {
	if !nginxSupported {
		return nil, fmt.Errorf("%w: this system cannot drive an nginx master", ErrNoNginx)
	}
	if o.Binary == "" {
		p, ok := NginxPath()
		if !ok {
			return nil, ErrNoNginx
		}
		o.Binary = p
	}
	if st, err := os.Stat(o.Binary); err != nil || st.IsDir() {
		return nil, fmt.Errorf("%w: binary %q", ErrNoNginx, o.Binary)
	}
	if err := checkNginxOptions(o); err != nil {
		return nil, fmt.Errorf("nginx edge: %w", err)
	}
	o.Timings = o.Timings.withDefaults()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := nginxLayout{dir: o.Dir}
	if len(l.statusSock()) > maxSockPath {
		return nil, fmt.Errorf("nginx edge: dir %q too long: its status socket path must fit in %d bytes", o.Dir, maxSockPath)
	}
	var nb [4]byte
	_, _ = rand.Read(nb[:])
	n := &Nginx{
		o:       o,
		l:       l,
		log:     o.Logger.With("edge", "nginx", "dir", o.Dir),
		nonce:   hex.EncodeToString(nb[:]),
		retired: map[int]struct{}{},
	}
	n.status = &http.Client{
		Timeout: time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", l.statusSock())
			},
		},
	}
	for _, d := range []struct {
		path string
		perm os.FileMode
	}{{o.Dir, 0o755}, {l.runDir(), 0o755}, {l.logDir(), 0o755}, {l.tempDir(), 0o700}, {l.certDir(), 0o700}} {
		if err := os.MkdirAll(d.path, d.perm); err != nil {
			return nil, fmt.Errorf("nginx edge: %w", err)
		}
	}
	if err := atomicfile.Write(l.mainConf(), renderMain(o, l.routesConf()), 0o644); err != nil {
		return nil, fmt.Errorf("nginx edge: %w", err)
	}
	if pid, err := readPidFile(l.pidFile()); err == nil && isNginxMaster(pid, l.mainConf()) {
		n.pid = pid
		n.log.Info("adopted the running nginx master; the next Apply reloads it", "pid", pid)
		return n, nil
	}
	if err := n.startFresh(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// Addr is the plain HTTP listen address.
func (n *Nginx) Addr() string { return n.o.Listen }

// Dir is the master's prefix directory.
func (n *Nginx) Dir() string { return n.o.Dir }

// ConfigPath is the live routes file (what Render produced, plus the
// status block).
func (n *Nginx) ConfigPath() string { return n.l.routesConf() }

// Pid is the master's process id.
func (n *Nginx) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pid
}

// Apply validates and renders cfg, swaps it in (keeping the old one as
// dropmesh.conf.prev), reloads the master gracefully and waits until the new
// generation answers. The reload is nginx's own check: a master that refuses
// the new file keeps serving the old one. A master that must be started
// (none runs) is checked first with `nginx -t` on a copy of the main file
// that includes the new routes file. If nginx refuses it at any step, the
// previous file is restored (and reloaded) and the error carries nginx's
// message and wraps ErrRejected. ctx bounds the work before the swap only:
// once the new file is swapped in, the reload (or its rollback) runs to its
// end.
func (n *Nginx) Apply(ctx context.Context, cfg Config) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	start := time.Now()
	body, err := Render(cfg, n.o)
	if err != nil {
		return err
	}
	body = append(body, n.testExtra...)
	if err := n.writeCerts(cfg.Certs); err != nil {
		return fmt.Errorf("nginx edge: %w", err)
	}
	defer n.gcCerts()
	gen := n.nextGen()
	if err := atomicfile.Write(n.l.newConf(), withStatus(body, n.l.statusSock(), gen), 0o644); err != nil {
		return fmt.Errorf("nginx edge: %w", err)
	}
	// A running master checks the new file itself on reload and keeps
	// serving the old config when it refuses it (the [emerg] line the
	// reload watches for), so that reload is the check: a separate
	// `nginx -t` would parse everything once more and open every access
	// log, which at 1,000 routes is most of an Apply. Only a master that
	// must be started is checked first (a refused start serves nothing).
	running := isNginxMaster(n.pid, n.l.mainConf())
	if !running {
		if err := n.test(ctx, n.l.newConf()); err != nil {
			_ = os.Remove(n.l.newConf())
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		_ = os.Remove(n.l.newConf())
		return fmt.Errorf("nginx edge: %w", err)
	}
	// The point of no return: from the swap on, the reload runs to its end
	// (bounded by ReloadTimeout) even if ctx ends. Abandoned half-way, it
	// would restore the previous file while nginx may already serve the
	// new one: traffic would flip twice and a refusal nginx never made
	// would be reported.
	ctx = context.WithoutCancel(ctx)
	if live, err := os.ReadFile(n.l.routesConf()); err == nil {
		if err := atomicfile.Write(n.l.prevConf(), live, 0o644); err != nil {
			return fmt.Errorf("nginx edge: keep the previous config: %w", err)
		}
	}
	if err := os.Rename(n.l.newConf(), n.l.routesConf()); err != nil {
		return fmt.Errorf("nginx edge: swap config: %w", err)
	}
	var applyErr error
	if running && isNginxMaster(n.pid, n.l.mainConf()) {
		applyErr = n.reload(ctx, gen, true)
	} else {
		n.log.Warn("the nginx master is gone; starting a new one", "pid", n.pid)
		applyErr = n.start(ctx, gen)
	}
	if applyErr != nil && errors.Is(applyErr, errReloadRefused) && isNginxMaster(n.pid, n.l.mainConf()) {
		// The master refused the file and still serves the previous one
		// with its workers: putting that file back as it was is the whole
		// rollback (no second reload).
		if rerr := n.putBackPrev(); rerr == nil {
			n.log.Error("nginx refused the new config; the previous one keeps serving", "err", applyErr)
			return fmt.Errorf("%w: %v; the previous config was restored", ErrRejected, applyErr)
		}
	}
	if applyErr != nil {
		if rerr := n.restorePrev(ctx); rerr != nil {
			return fmt.Errorf("%w: %v; restoring the previous config also failed: %v", ErrRejected, applyErr, rerr)
		}
		n.log.Error("nginx refused the new config; the previous one is restored", "err", applyErr)
		return fmt.Errorf("%w: %v; the previous config was restored", ErrRejected, applyErr)
	}
	n.log.Info("edge config applied", "routes", len(cfg.Routes), "generation", gen, "took", time.Since(start))
	return nil
}

// errReloadRefused marks a reload the master refused (an [emerg] line):
// it keeps serving the config it had.
var errReloadRefused = errors.New("nginx refused the reload")

// putBackPrev puts dropmesh.conf.prev back in place byte for byte (its
// generation included), for a master that refused the new file and so
// still serves that one.
func (n *Nginx) putBackPrev() error {
	prev, err := os.ReadFile(n.l.prevConf())
	if err != nil {
		return fmt.Errorf("read %s: %w", n.l.prevConf(), err)
	}
	return atomicfile.Write(n.l.routesConf(), prev, 0o644)
}

// restorePrev puts dropmesh.conf.prev back in place under a new generation
// and reloads (or restarts) the master with it.
func (n *Nginx) restorePrev(ctx context.Context) error {
	prev, err := os.ReadFile(n.l.prevConf())
	if err != nil {
		return fmt.Errorf("read %s: %w", n.l.prevConf(), err)
	}
	gen := n.nextGen()
	if err := atomicfile.Write(n.l.routesConf(), withStatus(prev, n.l.statusSock(), gen), 0o644); err != nil {
		return err
	}
	if isNginxMaster(n.pid, n.l.mainConf()) {
		// The failed reload may still be running (nginx retries a busy
		// port); this one queues behind it, so its errors are not ours.
		return n.reload(ctx, gen, false)
	}
	return n.start(ctx, gen)
}

// Close releases this handle; the master keeps serving the last applied
// config (an agent restart must not drop traffic). Use Stop to end it.
func (n *Nginx) Close(context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	return nil
}

// Stop ends the master: a graceful quit (in-flight requests finish), then
// SIGTERM after Timings.StopTimeout or when ctx ends, then SIGKILL. It is
// for local-mode teardown and tests; Apply fails afterwards.
func (n *Nginx) Stop(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	pid := n.pid
	if pid == 0 {
		pid, _ = readPidFile(n.l.pidFile())
	}
	if !isNginxMaster(pid, n.l.mainConf()) {
		reap(pid)
		return nil
	}
	workers := childrenOf(pid)
	gone := func() bool { return !processAlive(pid) }
	_ = signal(pid, sigQuit)
	qctx, cancel := context.WithTimeout(ctx, n.o.Timings.StopTimeout)
	waitUntil(qctx, 10*time.Millisecond, gone)
	cancel()
	if !gone() {
		n.log.Warn("nginx did not quit in time; terminating it", "pid", pid)
		_ = signal(pid, sigTerm)
		tctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		waitUntil(tctx, 10*time.Millisecond, gone)
		cancel()
	}
	if !gone() {
		_ = signal(pid, sigKill)
		for _, w := range workers {
			_ = signal(w, sigKill)
		}
	}
	reap(pid)
	_ = os.Remove(n.l.statusSock())
	_ = os.Remove(n.l.pidFile())
	n.log.Info("nginx master stopped", "pid", pid)
	return nil
}

// StopNginxDir stops the nginx master whose pid file is in dir, if one
// runs, as Stop does, without starting one (NewNginx would): for teardown
// of a node whose agent is gone.
func StopNginxDir(ctx context.Context, dir string) error {
	o := NginxOptions{Dir: dir, Logger: slog.New(slog.DiscardHandler), Timings: DefaultTimings()}
	n := &Nginx{o: o, l: nginxLayout{dir: dir}, log: o.Logger, retired: map[int]struct{}{}}
	return n.Stop(ctx)
}

// Drain waits until every worker of an earlier generation has exited, that
// is until no request that started under an earlier config is still in
// flight (long-lived connections last at most WorkerShutdownTimeout). It is
// the safe moment to stop a container the edge switched away from. Without
// /proc (macOS) it returns at once.
func (n *Nginx) Drain(ctx context.Context) error {
	n.mu.Lock()
	pids := make([]int, 0, len(n.retired))
	for p := range n.retired {
		pids = append(pids, p)
	}
	n.mu.Unlock()
	done := func() bool {
		for _, p := range pids {
			if processAlive(p) {
				return false
			}
		}
		return true
	}
	waitUntil(ctx, 5*time.Millisecond, done)
	n.mu.Lock()
	for _, p := range pids {
		if !processAlive(p) {
			delete(n.retired, p)
		}
	}
	n.mu.Unlock()
	if !done() {
		return fmt.Errorf("nginx edge: drain: old workers still serving: %w", ctx.Err())
	}
	return nil
}

// nextGen makes a generation token no earlier config of this Dir carries.
func (n *Nginx) nextGen() string {
	n.seq++
	return n.nonce + "-" + strconv.FormatUint(n.seq, 10)
}

// test runs `nginx -t` on a copy of the main file that includes routes.
func (n *Nginx) test(ctx context.Context, routes string) error {
	if err := atomicfile.Write(n.l.testConf(), renderMain(n.o, routes), 0o644); err != nil {
		return fmt.Errorf("nginx edge: %w", err)
	}
	cmd := exec.CommandContext(ctx, n.o.Binary, "-t", "-q", "-p", n.o.Dir+"/", "-c", n.l.testConf())
	out, err := cmd.CombinedOutput()
	if err != nil && ctx.Err() != nil {
		// Killed because the caller gave up: nginx refused nothing.
		return fmt.Errorf("nginx edge: nginx -t: %w", ctx.Err())
	}
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%w: nginx -t: %s", ErrRejected, msg)
	}
	return nil
}

// startFresh starts a master for a Dir with none running: with the routes
// file left from the last run if nginx accepts it, else with no routes.
func (n *Nginx) startFresh(ctx context.Context) error {
	gen := n.nextGen()
	if old, err := os.ReadFile(n.l.routesConf()); err == nil {
		if werr := atomicfile.Write(n.l.newConf(), withStatus(old, n.l.statusSock(), gen), 0o644); werr == nil {
			if terr := n.test(ctx, n.l.newConf()); terr == nil {
				if err := os.Rename(n.l.newConf(), n.l.routesConf()); err == nil {
					if err := n.start(ctx, gen); err == nil {
						n.log.Info("started nginx with the last routes", "pid", n.pid)
						return nil
					}
				}
			} else {
				n.log.Warn("the last routes file is refused; starting with no routes", "err", terr)
			}
		}
		_ = os.Remove(n.l.newConf())
	}
	body, err := Render(Config{}, n.o)
	if err != nil {
		return fmt.Errorf("nginx edge: %w", err)
	}
	gen = n.nextGen()
	if err := atomicfile.Write(n.l.routesConf(), withStatus(body, n.l.statusSock(), gen), 0o644); err != nil {
		return fmt.Errorf("nginx edge: %w", err)
	}
	if err := n.start(ctx, gen); err != nil {
		return err
	}
	n.log.Info("started nginx", "pid", n.pid)
	return nil
}

// start launches a master on the current files and waits until it serves
// generation gen. On failure no process is left behind.
func (n *Nginx) start(ctx context.Context, gen string) error {
	if err := n.test(ctx, n.l.routesConf()); err != nil {
		return err
	}
	_ = os.Remove(n.l.statusSock())
	_ = os.Remove(n.l.pidFile())
	out, err := os.Create(n.l.startLog())
	if err != nil {
		return fmt.Errorf("nginx edge: %w", err)
	}
	defer out.Close()
	logOff := fileSize(n.l.errorLog())
	// The foreground nginx checks the config, binds the ports, then forks
	// the daemon and exits; output goes to a file, not a pipe the daemon
	// would hold open.
	cmd := exec.CommandContext(ctx, n.o.Binary, "-p", n.o.Dir+"/", "-c", n.l.mainConf())
	cmd.Stdout, cmd.Stderr = out, out
	runErr := cmd.Run()
	if runErr != nil {
		msg, _ := os.ReadFile(n.l.startLog())
		return fmt.Errorf("%w: start nginx: %v: %s", ErrRejected, runErr, strings.TrimSpace(string(msg)))
	}
	wctx, cancel := context.WithTimeout(ctx, n.o.Timings.ReloadTimeout)
	defer cancel()
	var pid int
	ok := waitUntil(wctx, 5*time.Millisecond, func() bool {
		p, err := readPidFile(n.l.pidFile())
		if err == nil && processAlive(p) {
			pid = p
			return n.generation(wctx) == gen
		}
		return false
	})
	if !ok {
		if pid != 0 {
			_ = signal(pid, sigKill)
			reap(pid)
		}
		return fmt.Errorf("%w: nginx started but did not serve within %s: %s", ErrRejected, n.o.Timings.ReloadTimeout, logSince(n.l.errorLog(), logOff))
	}
	n.pid = pid
	return nil
}

// reload sends the master SIGHUP and waits until it serves generation gen.
// With failOnEmerg, an [emerg] line the master logs after the signal fails
// the reload at once with nginx's own message.
func (n *Nginx) reload(ctx context.Context, gen string, failOnEmerg bool) error {
	pid := n.pid
	old := childrenOf(pid)
	// The reload starts as many workers as serve now (those titled
	// "worker process", not "... is shutting down" nor a fork still
	// starting), at most the configured count.
	want := 0
	for _, w := range old {
		if strings.HasSuffix(processTitle(w), "worker process") {
			want++
		}
	}
	want = max(1, min(want, n.workerCount()))
	logOff := fileSize(n.l.errorLog())
	if err := signal(pid, sigReload); err != nil {
		return fmt.Errorf("signal nginx master %d: %w", pid, err)
	}
	wctx, cancel := context.WithTimeout(ctx, n.o.Timings.ReloadTimeout)
	defer cancel()
	emerg := regexp.MustCompile(`\[emerg\] ` + strconv.Itoa(pid) + `#\d+: (.*)`)
	var failure string
	refused, quit := false, len(old) == 0
	quitOld := func() {
		for _, w := range old {
			_ = signal(w, sigQuit)
		}
		quit = true
	}
	ok := waitUntil(wctx, 2*time.Millisecond, func() bool {
		// The master tells the old workers to quit only 100 ms after it
		// started the new ones (ngx_master_process_cycle sleeps "to allow
		// new processes to start"); until then the old ones, idle, take
		// most new connections (and every status request) with the old
		// config. That sleep was most of a reload. The new workers are
		// ready once they retitle themselves "worker process" (nginx does
		// so after registering the listeners), so the old workers get
		// their graceful quit (SIGQUIT, what the master sends) then: each
		// closes its listeners, finishes its requests and exits. The
		// master blocks SIGCHLD until its own quit signal has marked them
		// exiting, so it does not respawn them.
		if !quit && newWorkersReady(pid, old, want) {
			quitOld()
		}
		if n.generation(wctx) == gen {
			return true
		}
		if !processAlive(pid) {
			failure = fmt.Sprintf("nginx master %d exited during the reload: %s", pid, logSince(n.l.errorLog(), logOff))
			return true
		}
		if failOnEmerg {
			if m := emerg.FindStringSubmatch(logSince(n.l.errorLog(), logOff)); m != nil {
				failure, refused = "nginx reload: "+m[1], true
				return true
			}
		}
		return false
	})
	switch {
	case refused:
		return fmt.Errorf("%w: %s", errReloadRefused, failure)
	case failure != "":
		return errors.New(failure)
	case !ok:
		return fmt.Errorf("nginx did not confirm the reload within %s: %s", n.o.Timings.ReloadTimeout, logSince(n.l.errorLog(), logOff))
	}
	if !quit {
		// The new generation answered before its workers were seen
		// ready (or without /proc to see them): they serve, so the old
		// ones may quit.
		quitOld()
	}
	for _, w := range old {
		n.retired[w] = struct{}{}
	}
	// The new generation answered; an old worker may not have acted on
	// its quit signal yet and could still accept a connection with the old
	// config. Wait until each has closed its listeners (nginx retitles it
	// "is shutting down" in the same step) or exited.
	stopped := func() bool {
		for _, w := range old {
			if processAlive(w) && !strings.Contains(processTitle(w), "shutting down") {
				return false
			}
		}
		return true
	}
	if !waitUntil(wctx, time.Millisecond, stopped) {
		n.log.Warn("old nginx workers still accepting after the reload", "workers", old)
	}
	return nil
}

// workerCount is how many workers the master runs (worker_processes).
func (n *Nginx) workerCount() int {
	if n.o.WorkerProcesses > 0 {
		return n.o.WorkerProcesses
	}
	return runtime.NumCPU()
}

// newWorkersReady reports whether the master has at least want workers
// that are not in old and have finished starting: a forked worker keeps
// the master's title until it has registered its listeners and retitles
// itself "nginx: worker process".
func newWorkersReady(master int, old []int, want int) bool {
	ready := 0
	for _, c := range childrenOf(master) {
		if slices.Contains(old, c) {
			continue
		}
		if strings.HasSuffix(processTitle(c), "worker process") {
			ready++
		}
	}
	return ready >= want
}

// generation asks the status socket which config generation answers, or "".
func (n *Nginx) generation(ctx context.Context) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://nginx-status/generation", nil)
	if err != nil {
		return ""
	}
	resp, err := n.status.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// writeCerts writes the certificate and key files the rendered config
// names (mode 0600), when there is a TLS listener to use them.
func (n *Nginx) writeCerts(certs []Cert) error {
	if n.o.ListenTLS == "" {
		return nil
	}
	for _, c := range certs {
		crt, key := n.l.certFiles(c)
		for _, f := range []struct {
			path string
			data []byte
		}{{crt, c.CertPEM}, {key, c.KeyPEM}} {
			if have, err := os.ReadFile(f.path); err == nil && bytes.Equal(have, f.data) {
				continue
			}
			if err := atomicfile.Write(f.path, f.data, 0o600); err != nil {
				return fmt.Errorf("certificate for zone %s: %w", c.Zone, err)
			}
		}
	}
	return nil
}

// certRef finds the certificate files a routes file uses.
var certRef = regexp.MustCompile(`ssl_certificate(?:_key)? (\S+);`)

// gcCerts removes certificate files neither the live nor the previous
// routes file uses.
func (n *Nginx) gcCerts() {
	used := map[string]bool{}
	for _, f := range []string{n.l.routesConf(), n.l.prevConf()} {
		b, _ := os.ReadFile(f)
		for _, m := range certRef.FindAllSubmatch(b, -1) {
			used[string(m[1])] = true
		}
	}
	ents, _ := os.ReadDir(n.l.certDir())
	for _, e := range ents {
		p := filepath.Join(n.l.certDir(), e.Name())
		if !used[p] {
			_ = os.Remove(p)
		}
	}
}

// readPidFile reads a pid file.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: bad content %q", path, b)
	}
	return pid, nil
}

// fileSize is a file's size, or 0.
func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logSince returns what a log file gained after offset (at most 4 KiB, the
// end kept), trimmed.
func logSince(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if size := fileSize(path); size-offset > 4096 {
		offset = size - 4096
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	return strings.TrimSpace(string(b))
}

// waitUntil polls cond every interval until it holds (true) or ctx ends
// (false).
func waitUntil(ctx context.Context, interval time.Duration, cond func() bool) bool {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-t.C:
		}
	}
}
