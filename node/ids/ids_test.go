package ids

import (
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	a, b := New("dep"), New("dep")
	if !strings.HasPrefix(a, "dep-") || len(a) != len("dep-")+12 || a == b {
		t.Fatalf("New: %q, %q; want two different dep-<12 hex>", a, b)
	}
	if h := Hex(3); len(h) != 6 {
		t.Fatalf("Hex(3) = %q; want 6 hex digits", h)
	}
}
