package passseal

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	pass := []byte("correct horse battery staple")
	plain := []byte(`{"secret":"s3cret"}`)
	sealed, err := Seal("dropmesh-state", pass, plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("s3cret")) || !IsSealed(sealed) || IsSealed(plain) {
		t.Fatalf("sealed file: %s", sealed)
	}
	got, content, err := Open(sealed, pass)
	if err != nil || !bytes.Equal(got, plain) || content != "dropmesh-state" {
		t.Fatalf("Open = %q %q %v", got, content, err)
	}
	if _, _, err := Open(sealed, []byte("correct horse battery stapler")); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	// Any change to the envelope is refused: the data, the content name, or a
	// weaker KDF parameter.
	var e Envelope
	json.Unmarshal(sealed, &e)
	for name, change := range map[string]func(*Envelope){
		"data":    func(e *Envelope) { e.Data[0] ^= 1 },
		"content": func(e *Envelope) { e.Content = "other" },
		"time":    func(e *Envelope) { e.Time = 1 },
		"huge":    func(e *Envelope) { e.MemoryKiB = 1 << 30 },
	} {
		c := e
		c.Data = bytes.Clone(e.Data)
		change(&c)
		b, _ := json.Marshal(c)
		if _, _, err := Open(b, pass); !errors.Is(err, ErrPassphrase) && !errors.Is(err, ErrFormat) {
			t.Errorf("%s changed: err = %v", name, err)
		}
	}
	if _, err := Seal("x", []byte("short"), plain); !errors.Is(err, ErrWeak) {
		t.Fatalf("short passphrase: %v", err)
	}
}

// BenchmarkOpen measures the passphrase check (one Argon2id derivation):
// what each guess costs an attacker on this machine.
func BenchmarkOpen(b *testing.B) {
	pass := []byte("correct horse battery staple")
	sealed, err := Seal("x", pass, []byte("doc"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := Open(sealed, pass); err != nil {
			b.Fatal(err)
		}
	}
}
