package clusterconf

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestDeriveKeysDistinctAndStable(t *testing.T) {
	s, err := NewClusterSecret()
	if err != nil {
		t.Fatal(err)
	}
	a, err := DeriveKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DeriveKeys(s)
	if a.APIKey != b.APIKey || !bytes.Equal(a.GossipKey, b.GossipKey) {
		t.Fatal("derivation is not stable")
	}
	if len(a.APIKey) != 64 || len(a.GossipKey) != 32 || len(a.SessionKey) != 32 {
		t.Fatalf("key sizes %d %d %d", len(a.APIKey), len(a.GossipKey), len(a.SessionKey))
	}
	if bytes.Equal(a.GossipKey, a.SessionKey) || a.APIKey == s.String() {
		t.Fatal("keys are not distinct")
	}
	other, _ := NewClusterSecret()
	c, _ := DeriveKeys(other)
	sealed, err := raftfsm.Seal(a.Sealer, "x", []byte("token"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raftfsm.Open(c.Sealer, "x", sealed); err == nil {
		t.Fatal("another cluster opened a sealed value")
	}
	if plain, err := raftfsm.Open(b.Sealer, "x", sealed); err != nil || string(plain) != "token" {
		t.Fatalf("open: %q %v", plain, err)
	}
}

func TestClusterSecretFile(t *testing.T) {
	s, _ := NewClusterSecret()
	path := filepath.Join(t.TempDir(), "secret")
	if err := WriteClusterSecretFile(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadClusterSecretFile(path)
	if err != nil || got != s {
		t.Fatalf("read back %v %v", got, err)
	}
	if _, err := ParseClusterSecret("abc"); err == nil {
		t.Fatal("short secret parsed")
	}
}
