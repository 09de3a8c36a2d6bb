package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"testing"
)

func TestChainIDs(t *testing.T) {
	a, b, c := "sha256:"+hex64('a'), "sha256:"+hex64('b'), "sha256:"+hex64('c')
	h := func(s string) string { sum := sha256.Sum256([]byte(s)); return "sha256:" + hex.EncodeToString(sum[:]) }
	ab := h(a + " " + b)
	want := []string{a, ab, h(ab + " " + c)}
	if got := ChainIDs([]string{a, b, c}); !reflect.DeepEqual(got, want) {
		t.Fatalf("ChainIDs = %v, want %v", got, want)
	}
	if got := ChainIDs(nil); len(got) != 0 {
		t.Fatalf("ChainIDs(nil) = %v", got)
	}
}

func hex64(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return string(b)
}
