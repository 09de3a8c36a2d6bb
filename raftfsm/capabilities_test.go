package raftfsm

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestSpecCapAdd: cap_add reads from YAML, is normalised to Docker's names
// (sorted, once each) and makes the spec widening; a name Linux does not
// have, or ALL, is refused naming the field.
func TestSpecCapAdd(t *testing.T) {
	if !slices.IsSorted(linuxCapabilities) {
		t.Fatal("linuxCapabilities must be sorted (binary search)")
	}
	s, err := DecodeSpecBytes([]byte("project: shop\nservice: vpn\nimage: wg\ncap_add: [cap_net_admin, NET_RAW, net_admin]\n"))
	if err != nil {
		t.Fatal(err)
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		t.Fatalf("good cap_add refused: %v", err)
	}
	if !slices.Equal(s.CapAdd, []string{"NET_ADMIN", "NET_RAW"}) || s.Widens() != "cap_add NET_ADMIN,NET_RAW" {
		t.Fatalf("cap_add = %v, widens %q", s.CapAdd, s.Widens())
	}
	c := s.Clone()
	c.CapAdd[0] = "x"
	if s.CapAdd[0] != "NET_ADMIN" {
		t.Fatal("Clone shares cap_add")
	}
	s.CapAdd = nil
	if s.Widens() != "" {
		t.Fatalf("a spec without cap_add widens: %q", s.Widens())
	}
	for _, bad := range []string{"ALL", "cap_all", "NET_EVERYTHING", "", "net admin"} {
		s.CapAdd = []string{bad}
		s.Normalize()
		if err := s.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "cap_add") {
			t.Errorf("cap_add %q: %v; want ErrInvalid naming cap_add", bad, err)
		}
	}
}
