package bootstrap

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/ssh"
)

// TestMain quiets gin's route listing: the in-process agents serve the
// real API.
func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

// testConfig is a Config with test timings.
func testConfig() Config {
	c := DefaultConfig()
	c.PollInterval = 20 * time.Millisecond
	c.Retry.MaxAttempts = 2
	c.Retry.BaseDelay = time.Millisecond
	c.Retry.MaxDelay = 5 * time.Millisecond
	c.DropletTimeout = 10 * time.Second
	c.SSHReadyTimeout = 2 * time.Second
	c.SSHDialTimeout = time.Second
	c.SSHRetryInterval = 50 * time.Millisecond
	c.InstallTimeout = 30 * time.Second
	c.ActionTimeout = 10 * time.Second
	c.AgentTimeout = 30 * time.Second
	c.GrowTimeout = 60 * time.Second
	c.CleanupTimeout = 10 * time.Second
	return c
}

// fakeHost is a machine the builder logs into: a real SSH server on
// 127.0.0.1 that runs every command with bash in a home dir, with
// DROPMESH_ROOT set to a root dir and stand-ins for apt-get, dpkg-query,
// systemctl, sysctl and cloud-init first on PATH; they append their
// command lines to Log.
type fakeHost struct {
	Addr    string
	HostKey ssh.Signer
	Home    string
	Root    string
	Log     string // the stand-ins' log
	// Authorized decides whether a client key may log in (nil: any).
	Authorized func(ssh.PublicKey) bool
	// Refuse makes every login fail, as a droplet whose sshd is not ready;
	// Refused counts the logins it failed.
	Refuse  atomic.Bool
	Refused atomic.Int64

	mu       sync.Mutex
	commands []string
	logins   []string

	l  net.Listener
	wg sync.WaitGroup
}

// startFakeHost starts a fakeHost with a fresh ed25519 host key; the test
// stops it.
func startFakeHost(t testing.TB) *fakeHost {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return startFakeHostWithKey(t, hk)
}

func startFakeHostWithKey(t testing.TB, hostKey ssh.Signer) *fakeHost {
	t.Helper()
	dir := t.TempDir()
	h := &fakeHost{HostKey: hostKey, Home: filepath.Join(dir, "home"), Root: filepath.Join(dir, "root"), Log: filepath.Join(dir, "stand-ins.log")}
	for _, d := range []string{h.Home, h.Root, filepath.Join(dir, "bin"), filepath.Join(dir, "state")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeStandIns(t, filepath.Join(dir, "bin"))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.l, h.Addr = l, l.Addr().String()
	env := []string{
		"PATH=" + filepath.Join(dir, "bin") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + h.Home, "DROPMESH_ROOT=" + h.Root, "STANDIN_LOG=" + h.Log, "STANDIN_STATE=" + filepath.Join(dir, "state"),
		"LANG=C",
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				h.serve(c, env)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		h.wg.Wait()
	})
	return h
}

// Commands returns the commands run so far.
func (h *fakeHost) Commands() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.commands...)
}

// Logins returns the users that logged in.
func (h *fakeHost) Logins() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.logins...)
}

// StandInLog returns what the stand-ins recorded.
func (h *fakeHost) StandInLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(h.Log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

func (h *fakeHost) serve(c net.Conn, env []string) {
	defer c.Close()
	conf := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if h.Refuse.Load() {
				h.Refused.Add(1)
				return nil, errors.New("not ready")
			}
			if h.Authorized != nil && !h.Authorized(key) {
				return nil, errors.New("unknown key")
			}
			h.mu.Lock()
			h.logins = append(h.logins, meta.User())
			h.mu.Unlock()
			return &ssh.Permissions{}, nil
		},
	}
	conf.AddHostKey(h.HostKey)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, conf)
	if err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go h.session(ch, creqs, env)
	}
}

// session runs the one exec request of a session; a signal request, or the
// client closing the session, kills it.
func (h *fakeHost) session(ch ssh.Channel, reqs <-chan *ssh.Request, env []string) {
	defer ch.Close()
	var cmd *exec.Cmd
	done := make(chan int, 1)
	kill := func() {
		if cmd != nil && cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				if cmd != nil {
					kill()
					<-done
				}
				return
			}
			switch {
			case req.Type == "exec" && cmd == nil:
				var p struct{ Command string }
				if err := ssh.Unmarshal(req.Payload, &p); err != nil {
					_ = req.Reply(false, nil)
					continue
				}
				h.mu.Lock()
				h.commands = append(h.commands, p.Command)
				h.mu.Unlock()
				cmd = exec.Command("bash", "-c", p.Command)
				cmd.Dir, cmd.Env = h.Home, env
				cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				if err := cmd.Start(); err != nil {
					_ = req.Reply(false, nil)
					return
				}
				_ = req.Reply(true, nil)
				go func() {
					err := cmd.Wait()
					var ee *exec.ExitError
					switch {
					case err == nil:
						done <- 0
					case errors.As(err, &ee) && ee.ExitCode() >= 0:
						done <- ee.ExitCode()
					default:
						done <- 255
					}
				}()
			case req.Type == "signal":
				kill()
				_ = req.Reply(true, nil)
			default:
				_ = req.Reply(false, nil)
			}
		case code := <-done:
			status := make([]byte, 4)
			binary.BigEndian.PutUint32(status, uint32(code))
			_, _ = ch.SendRequest("exit-status", false, status)
			return
		}
	}
}

// writeStandIns writes the stand-ins for the commands that change a real
// system. apt-get install records packages as installed, dpkg-query reports
// them, the others only log.
func writeStandIns(t testing.TB, dir string) {
	t.Helper()
	scripts := map[string]string{
		"apt-get": `echo "apt-get $*" >>"$STANDIN_LOG"
if [ "$1" != "${1#-}" ]; then :; fi
install=no
for a in "$@"; do
	case "$a" in
	install) install=yes ;;
	-*|DPkg::*) ;;
	*) if [ $install = yes ]; then echo "$a" >>"$STANDIN_STATE/installed"; fi ;;
	esac
done`,
		"dpkg-query": `pkg="${@: -1}"
if [ -f "$STANDIN_STATE/installed" ] && grep -qx "$pkg" "$STANDIN_STATE/installed"; then
	echo "install ok installed"
else
	echo "dpkg-query: no packages found matching $pkg" >&2
	exit 1
fi`,
		"systemctl":  `echo "systemctl $*" >>"$STANDIN_LOG"`,
		"sysctl":     `echo "sysctl $*" >>"$STANDIN_LOG"`,
		"cloud-init": `echo "cloud-init $*" >>"$STANDIN_LOG"`,
		"sync":       `echo "sync" >>"$STANDIN_LOG"`,
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/bash\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// fakeBinary is a small Linux executable standing in for dropmesh on the
// builder: `dropmesh version` must run there, and the real test binary
// would start the tests again. /bin/echo prints "version".
func fakeBinary(t *testing.T) string {
	t.Helper()
	src, err := exec.LookPath("echo")
	if err != nil {
		t.Skip("no echo executable to stand in for the binary")
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dropmesh")
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkLinuxBinary(dst); err != nil {
		t.Skipf("echo cannot stand in for the binary: %v", err)
	}
	return dst
}

// sameFile reports whether two files hold the same bytes.
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(da, db)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
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

var _ io.Writer = (*syncBuffer)(nil)

// containsAll reports the first of subs missing from s.
func missing(s string, subs ...string) string {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return sub
		}
	}
	return ""
}
