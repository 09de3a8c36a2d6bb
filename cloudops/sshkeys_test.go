package cloudops

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"golang.org/x/crypto/ssh"
)

func newPublicKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(sp))
}

func TestSSHKeys(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	pub := newPublicKey(t)
	k, err := e.do.CreateSSHKey(c, "dropmesh-build", pub)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID == 0 || k.Name != "dropmesh-build" || k.Fingerprint == "" {
		t.Fatalf("created %+v", k)
	}
	again, err := e.do.CreateSSHKey(c, "dropmesh-build", pub)
	if err != nil || again.ID != k.ID {
		t.Fatalf("second create: %+v %v", again, err)
	}
	if n := e.fake.Requests("POST /v2/account/keys"); n != 1 {
		t.Fatalf("%d creates", n)
	}
	if _, err := e.do.CreateSSHKey(c, "dropmesh-build", newPublicKey(t)); !errors.Is(err, ErrConflict) {
		t.Fatalf("same name, other key: %v", err)
	}
	if _, err := e.do.CreateSSHKey(c, "someone-else", pub); !errors.Is(err, ErrConflict) {
		t.Fatalf("same key, other name: %v", err)
	}
	if _, err := e.do.CreateSSHKey(c, "bad", "ssh-rsa nonsense"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad key: %v", err)
	}
	n := e.fake.Requests("POST /v2/account/keys")
	found, err := e.do.FindSSHKey(c, pub)
	if err != nil || found.ID != k.ID || found.Name != k.Name || found.Fingerprint != k.Fingerprint {
		t.Fatalf("find the key: %+v %v, want %+v", found, err, k)
	}
	if _, err := e.do.FindSSHKey(c, newPublicKey(t)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("find an unregistered key: %v, want ErrNotFound", err)
	}
	if _, err := e.do.FindSSHKey(c, "ssh-rsa nonsense"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("find a bad key: %v", err)
	}
	if got := e.fake.Requests("POST /v2/account/keys"); got != n || len(e.fake.State().Keys) != 1 {
		t.Fatalf("finding keys registered some (%d creates, %d keys)", got-n, len(e.fake.State().Keys))
	}
	s := spec("c1-node-1")
	s.SSHKeyIDs = []int{k.ID}
	if _, err := e.do.CreateDroplet(c, s); err != nil {
		t.Fatalf("droplet with the key: %v", err)
	}
	if err := e.do.DeleteSSHKey(c, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.do.DeleteSSHKey(c, k.ID); err != nil {
		t.Fatalf("deleting a gone key: %v", err)
	}
	if n := len(e.fake.State().Keys); n != 0 {
		t.Fatalf("fake still holds %d keys", n)
	}
}
