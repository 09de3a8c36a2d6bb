package sampleapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAddr is where the sample app listens when neither Options.Addr nor
// $PORT says otherwise.
const DefaultAddr = ":8080"

// DefaultDataDir is the only directory /admin/write and /admin/read touch
// unless $DATA_DIR names another one.
const DefaultDataDir = "/data"

// maxWriteBytes bounds the body of /admin/write: the endpoint exists for
// volume tests, not for storage.
const maxWriteBytes = 1 << 20

// shutdownTimeout bounds the graceful shutdown after ctx ends: long enough
// for in-flight requests of a test, short enough that `docker stop` never
// has to kill.
const shutdownTimeout = 3 * time.Second

// Options configures Run and Handler. Every field is optional; the zero value
// runs the real service on the real process.
type Options struct {
	// Addr is the listen address; "" means ":$PORT", or DefaultAddr.
	Addr string
	// Args are the command-line arguments after `sample-app`; "once" runs
	// the one-shot mode.
	Args []string
	// Stdout receives the log lines; nil means os.Stdout.
	Stdout io.Writer
	// Exit ends the process for /admin/exit and the once mode; nil means os.Exit.
	Exit func(code int)
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(key string) string
	// Version is the version of the binary the app runs in (dropmesh's
	// `-X main.version`), shown when $VERSION does not name the service's
	// own; "" and no $VERSION show "unknown".
	Version string
}

// withDefaults fills the nil fields of o.
func (o Options) withDefaults() Options {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Exit == nil {
		o.Exit = os.Exit
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if v := o.Getenv("VERSION"); v != "" {
		o.Version = v
	}
	if o.Version == "" {
		o.Version = "unknown"
	}
	if o.Addr == "" {
		o.Addr = DefaultAddr
		if p := o.Getenv("PORT"); p != "" {
			o.Addr = ":" + p
		}
	}
	return o
}

// Run runs the sample app until ctx ends (then it shuts down gracefully and
// returns nil), or runs the once mode and returns. It returns an error when
// the address cannot be listened on or the environment is invalid.
func Run(ctx context.Context, o Options) error {
	o = o.withDefaults()
	if isOnce(o) {
		return runOnce(o)
	}
	a, err := newApp(o)
	if err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return fmt.Errorf("sample-app: listen address %q: %w", o.Addr, err)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("sample-app: listen on %s: %w", o.Addr, err)
	}
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	a.logf("info", "sample-app listening on %s (host %s, version %s)", ln.Addr(), a.host, a.version)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("sample-app: serve on %s: %w", o.Addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	_ = srv.Shutdown(sctx) // a timeout here only means a slow client; we exit anyway
	<-served
	a.logf("info", "sample-app stopped")
	return nil
}

// Handler is the sample app's HTTP handler, for tests that serve it with
// httptest. It returns an error only for an invalid environment ($LOG_FORMAT).
func Handler(o Options) (http.Handler, error) {
	return newApp(o.withDefaults())
}

func isOnce(o Options) bool {
	for _, a := range o.Args {
		if a == "once" {
			return true
		}
	}
	return o.Getenv("SAMPLE_ONCE") == "1"
}

// runOnce prints one line and exits with $EXIT_CODE (0 when unset).
func runOnce(o Options) error {
	code := 0
	if s := o.Getenv("EXIT_CODE"); s != "" {
		n, err := parseExitCode(s)
		if err != nil {
			return fmt.Errorf("sample-app: EXIT_CODE: %w", err)
		}
		code = n
	}
	host, _ := os.Hostname()
	fmt.Fprintf(o.Stdout, "INFO sample-app once on %s (version %s), exiting with %d\n", host, o.Version, code)
	if code != 0 {
		o.Exit(code)
	}
	return nil
}

func parseExitCode(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 {
		return 0, fmt.Errorf("exit code %q is not a number from 0 to 255", s)
	}
	return n, nil
}

// app is the HTTP service and its in-memory state.
type app struct {
	o       Options
	host    string
	version string
	json    bool
	dataDir string
	failing atomic.Bool
	mux     *http.ServeMux
	outMu   sync.Mutex // one log line at a time on Stdout
}

func newApp(o Options) (*app, error) {
	a := &app{o: o, version: o.Version, dataDir: DefaultDataDir}
	a.host, _ = os.Hostname()
	switch f := o.Getenv("LOG_FORMAT"); f {
	case "", "plain", "text":
	case "json":
		a.json = true
	default:
		return nil, fmt.Errorf("sample-app: LOG_FORMAT %q: want plain or json", f)
	}
	if d := o.Getenv("DATA_DIR"); d != "" {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("sample-app: DATA_DIR %q is not an absolute path", d)
		}
		a.dataDir = filepath.Clean(d)
	}
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("GET /{$}", a.root)
	a.mux.HandleFunc("GET /health", a.health)
	a.mux.HandleFunc("POST /admin/health", a.setHealth)
	a.mux.HandleFunc("POST /admin/log", a.log)
	a.mux.HandleFunc("POST /admin/exit", a.exit)
	a.mux.HandleFunc("POST /admin/write", a.write)
	a.mux.HandleFunc("GET /admin/read", a.read)
	return a, nil
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func (a *app) root(w http.ResponseWriter, _ *http.Request) {
	fmt.Fprintf(w, "hello from %s (version %s)\n", a.host, a.version)
}

func (a *app) health(w http.ResponseWriter, _ *http.Request) {
	if a.failing.Load() {
		http.Error(w, "failing", http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (a *app) setHealth(w http.ResponseWriter, r *http.Request) {
	switch f := r.URL.Query().Get("fail"); f {
	case "1", "true":
		a.failing.Store(true)
	case "0", "false":
		a.failing.Store(false)
	default:
		http.Error(w, fmt.Sprintf("fail=%q: want 1 or 0", f), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "failing=%t\n", a.failing.Load())
}

var levelPattern = regexp.MustCompile(`^[a-zA-Z]{1,16}$`)

func (a *app) log(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	level, msg := q.Get("level"), q.Get("msg")
	if level == "" {
		level = "info"
	}
	if !levelPattern.MatchString(level) {
		http.Error(w, fmt.Sprintf("level=%q: want 1 to 16 letters (info, warn, error...)", level), http.StatusBadRequest)
		return
	}
	if strings.ContainsAny(msg, "\r\n") {
		http.Error(w, "msg must be a single line", http.StatusBadRequest)
		return
	}
	a.logf(level, "%s", msg)
	fmt.Fprintln(w, "logged")
}

// logf writes one log line: `LEVEL msg`, or a JSON object in json mode.
func (a *app) logf(level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	var line []byte
	if a.json {
		line, _ = json.Marshal(struct {
			Time  string `json:"time"`
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}{time.Now().UTC().Format(time.RFC3339Nano), strings.ToLower(level), msg})
	} else {
		line = []byte(strings.ToUpper(level) + " " + msg)
	}
	line = append(line, '\n')
	a.outMu.Lock()
	defer a.outMu.Unlock()
	_, _ = a.o.Stdout.Write(line)
}

func (a *app) exit(w http.ResponseWriter, r *http.Request) {
	code, err := parseExitCode(r.URL.Query().Get("code"))
	if err != nil {
		http.Error(w, "code: "+err.Error(), http.StatusBadRequest)
		return
	}
	a.logf("info", "sample-app exiting with code %d on request", code)
	body := fmt.Sprintf("exiting with %d\n", code)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Connection", "close")
	_, _ = io.WriteString(w, body)
	// The answer is in the socket's buffer before the process goes away.
	_ = http.NewResponseController(w).Flush()
	a.o.Exit(code)
}

// dataPath resolves ?path= to a file inside the data dir, or explains why not.
func (a *app) dataPath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errors.New("path is required")
	}
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return "", fmt.Errorf("path %q must be absolute and clean", p)
	}
	if !strings.HasPrefix(p, a.dataDir+string(filepath.Separator)) {
		return "", fmt.Errorf("path %q is outside the data dir %s", p, a.dataDir)
	}
	return p, nil
}

func (a *app) write(w http.ResponseWriter, r *http.Request) {
	p, err := a.dataPath(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var data []byte
	if q := r.URL.Query(); q.Has("body") {
		data = []byte(q.Get("body"))
	} else {
		data, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxWriteBytes))
		if err != nil {
			http.Error(w, fmt.Sprintf("body: %v (at most %d bytes)", err, maxWriteBytes), http.StatusRequestEntityTooLarge)
			return
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "wrote %d bytes to %s\n", len(data), p)
}

func (a *app) read(w http.ResponseWriter, r *http.Request) {
	p, err := a.dataPath(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		http.Error(w, fmt.Sprintf("%s: no such file", p), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(data)
}
