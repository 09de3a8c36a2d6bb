package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDialSSHGivesUpWhenTheServerRefuses(t *testing.T) {
	h := startFakeHost(t)
	h.Refuse.Store(true)
	cfg := testConfig()
	cfg.SSHDialTimeout = 10 * time.Second // a slow handshake on a loaded machine is not a refusal
	// The dial gives up when its context ends: end it once the server has
	// refused two logins, so the error is the refusal, whatever the load.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		for h.Refused.Load() < 2 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond) // polling a counter, not synchronising
		}
		cancel()
	}()
	_, err := dialSSH(ctx, SSHTarget{Addr: h.Addr, User: "root"}, clientKey(t), NewHostKeys(filepath.Join(t.TempDir(), "kh")), "d", cfg)
	if err == nil || !strings.Contains(err.Error(), "gave up after") || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("dial to a refusing server: %v", err)
	}
}

func TestSSHRunIsCutOffWithItsContext(t *testing.T) {
	h := startFakeHost(t)
	c, err := dialSSH(context.Background(), SSHTarget{Addr: h.Addr, User: "root"}, clientKey(t), NewHostKeys(filepath.Join(t.TempDir(), "kh")), "d", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.run(ctx, "sleep 30", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run past its deadline: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("run returned after %s", time.Since(start))
	}
	if err := c.run(context.Background(), "exit 3", nil, nil); err == nil || !strings.Contains(err.Error(), "status 3") {
		t.Fatalf("a failing command: %v", err)
	}
}

func TestSSHUploadChecksTheCopy(t *testing.T) {
	h := startFakeHost(t)
	c, err := dialSSH(context.Background(), SSHTarget{Addr: h.Addr, User: "root"}, clientKey(t), NewHostKeys(filepath.Join(t.TempDir(), "kh")), "d", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := strings.Repeat("dropmesh\n", 100000)
	if err := c.upload(context.Background(), strings.NewReader(data), "d i r/file's", 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(h.Home, "d i r", "file's"))
	if err != nil || string(got) != data {
		t.Fatalf("uploaded file: %d bytes, %v", len(got), err)
	}
	if st, _ := os.Stat(filepath.Join(h.Home, "d i r", "file's")); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640", st.Mode().Perm())
	}
}

// BenchmarkSSHUpload measures uploading a 32 MB file (a dropmesh binary's
// size) to a host over SSH, checksum check included, on loopback: the cost
// of the protocol and of this code, not of a network.
func BenchmarkSSHUpload(b *testing.B) {
	h := startFakeHost(b)
	c, err := dialSSH(context.Background(), SSHTarget{Addr: h.Addr, User: "root"}, clientKey(b), NewHostKeys(filepath.Join(b.TempDir(), "kh")), "d", testConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	data := bytes.Repeat([]byte("dropmesh"), 4<<20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		if err := c.upload(context.Background(), bytes.NewReader(data), "bin/dropmesh", 0o755); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/upload")
}
