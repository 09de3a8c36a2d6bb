package bootclaim

import (
	"errors"
	"strings"
	"testing"
)

func TestProofsBindTheTokenTheNoncesAndTheCA(t *testing.T) {
	tok, _ := NewToken()
	other, _ := NewToken()
	nc, _ := NewNonce()
	ns, _ := NewNonce()
	p := SeedProof(tok, nc, ns, "CA")
	for name, q := range map[string]string{
		"another token":        SeedProof(other, nc, ns, "CA"),
		"another client nonce": SeedProof(tok, ns, ns, "CA"),
		"another seed nonce":   SeedProof(tok, nc, nc, "CA"),
		"another CA":           SeedProof(tok, nc, ns, "CA2"),
		"the client's proof":   ClientProof(tok, nc, ns),
	} {
		if Verify(p, q) {
			t.Errorf("%s gives the same proof", name)
		}
	}
	if !Verify(p, SeedProof(tok, nc, ns, "CA")) {
		t.Fatal("the same inputs do not verify")
	}
	if CheckHex("nonce", nc) != nil || CheckHex("nonce", nc[:62]) == nil || CheckHex("nonce", strings.Repeat("g", 64)) == nil {
		t.Fatal("CheckHex")
	}
}

func TestSealOpensOnlyWithTheSameExchange(t *testing.T) {
	tok, _ := NewToken()
	other, _ := NewToken()
	nc, _ := NewNonce()
	ns, _ := NewNonce()
	in := Secrets{DOToken: "dop_v1_x", CFToken: "cf", AdminPassword: "pw"}
	sealed, err := Seal(tok, nc, ns, LabelSecrets, in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "dop_v1_x") {
		t.Fatal("sealed text holds the token")
	}
	var out Secrets
	if err := Open(tok, nc, ns, LabelSecrets, sealed, &out); err != nil || out != in {
		t.Fatalf("Open = %+v, %v", out, err)
	}
	b := []byte(sealed)
	b[len(b)/2] ^= 1
	for name, try := range map[string]func() error{
		"another token":  func() error { return Open(other, nc, ns, LabelSecrets, sealed, &out) },
		"another nonce":  func() error { return Open(tok, ns, nc, LabelSecrets, sealed, &out) },
		"another label":  func() error { return Open(tok, nc, ns, LabelResult, sealed, &out) },
		"a changed byte": func() error { return Open(tok, nc, ns, LabelSecrets, string(b), &out) },
		"not base64":     func() error { return Open(tok, nc, ns, LabelSecrets, "%%%", &out) },
	} {
		if err := try(); !errors.Is(err, ErrProof) {
			t.Errorf("%s: %v; want ErrProof", name, err)
		}
	}
}
