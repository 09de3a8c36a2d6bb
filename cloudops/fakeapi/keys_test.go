package fakeapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/digitalocean/godo"
	"golang.org/x/crypto/ssh"
)

func TestKeys(t *testing.T) {
	_, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sp, _ := ssh.NewPublicKey(pub)
	key := string(ssh.MarshalAuthorizedKey(sp))
	k, _, err := c.Keys.Create(ctx(t), &godo.KeyCreateRequest{Name: "build", PublicKey: key})
	if err != nil || k.Fingerprint != ssh.FingerprintLegacyMD5(sp) {
		t.Fatalf("create: %+v %v", k, err)
	}
	if _, _, err := c.Keys.Create(ctx(t), &godo.KeyCreateRequest{Name: "again", PublicKey: key}); doStatus(err) != 422 {
		t.Fatalf("duplicate key: %v", err)
	}
	if _, _, err := c.Keys.Create(ctx(t), &godo.KeyCreateRequest{Name: "bad", PublicKey: "ssh-ed25519 AAAA"}); doStatus(err) != 422 {
		t.Fatalf("bad key: %v", err)
	}
	if got, _, err := c.Keys.GetByFingerprint(ctx(t), k.Fingerprint); err != nil || got.ID != k.ID {
		t.Fatalf("by fingerprint: %+v %v", got, err)
	}
	req := createReq("node-1")
	req.SSHKeys = []godo.DropletCreateSSHKey{{Fingerprint: k.Fingerprint}}
	if _, _, err := c.Droplets.Create(ctx(t), req); err != nil {
		t.Fatalf("droplet with a key by fingerprint: %v", err)
	}
	if _, err := c.Keys.DeleteByFingerprint(ctx(t), k.Fingerprint); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Keys.DeleteByID(ctx(t), k.ID); doStatus(err) != 404 {
		t.Fatalf("second delete: %v", err)
	}
}
