package bootstrap

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func clientKey(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHostKeysPinOnFirstUseAndRefuseAnotherKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), KnownHostsFile)
	hosts := NewHostKeys(path)
	first := startFakeHost(t)
	impostor := startFakeHost(t) // same role, another host key
	key := clientKey(t)
	cfg := testConfig()

	c, err := dialSSH(context.Background(), SSHTarget{Addr: first.Addr, User: "root"}, key, hosts, "droplet-7", cfg)
	if err != nil {
		t.Fatalf("first connection: %v", err)
	}
	if out, err := c.output(context.Background(), "echo hello"); err != nil || out != "hello" {
		t.Fatalf("echo over ssh: %q, %v", out, err)
	}
	c.Close()
	pinned, ok, err := hosts.Pinned("droplet-7")
	if err != nil || !ok || string(pinned.Marshal()) != string(first.HostKey.PublicKey().Marshal()) {
		t.Fatalf("pinned %v %v %v, want the first host's key", pinned, ok, err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts mode %v (%v), want 0600", st.Mode().Perm(), err)
	}

	// The same droplet answering with another key: refused at once, not
	// retried until the deadline, and nothing runs there.
	start := time.Now()
	_, err = dialSSH(context.Background(), SSHTarget{Addr: impostor.Addr, User: "root"}, key, hosts, "droplet-7", cfg)
	if !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("connection to a changed key: %v, want ErrHostKeyChanged", err)
	}
	if !strings.Contains(err.Error(), ssh.FingerprintSHA256(impostor.HostKey.PublicKey())) ||
		!strings.Contains(err.Error(), ssh.FingerprintSHA256(first.HostKey.PublicKey())) {
		t.Fatalf("the error does not name both fingerprints: %v", err)
	}
	if time.Since(start) >= cfg.SSHReadyTimeout {
		t.Fatalf("a changed key was retried for %s", time.Since(start))
	}
	if len(impostor.Logins()) != 0 {
		t.Fatal("the client authenticated to a host with the wrong key")
	}
	after, err := os.ReadFile(path)
	if err != nil || string(after) != string(before) {
		t.Fatalf("known_hosts changed after a refused key:\n%s\n---\n%s", before, after)
	}

	// The pinned host is still accepted; another name pins its own key.
	c, err = dialSSH(context.Background(), SSHTarget{Addr: first.Addr, User: "root"}, key, hosts, "droplet-7", cfg)
	if err != nil {
		t.Fatalf("second connection to the pinned host: %v", err)
	}
	c.Close()
	c, err = dialSSH(context.Background(), SSHTarget{Addr: impostor.Addr, User: "root"}, key, hosts, "droplet-8", cfg)
	if err != nil {
		t.Fatalf("a new droplet at the old address: %v", err)
	}
	c.Close()
}

func TestHostKeysRejectACorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), KnownHostsFile)
	if err := os.WriteFile(path, []byte("droplet-1 ssh-ed25519 not-base64!!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startFakeHost(t)
	err := NewHostKeys(path).Callback("droplet-1")("x", nil, h.HostKey.PublicKey())
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("a corrupt known_hosts: %v, want an error naming the line", err)
	}
}
