package raftfsm

import (
	"slices"
	"testing"
)

// TestSetEgressAllow: ranges are stored, replaced and cleared; one that
// does not parse is refused and changes nothing.
func TestSetEgressAllow(t *testing.T) {
	f := newFixture(t)
	f.must(&SetEgressAllow{At: t0, Ranges: []string{"10.20.0.0/16", "192.168.5.0/24"}})
	f.view(func(s *State) {
		if !slices.Equal(s.Settings.EgressAllow, []string{"10.20.0.0/16", "192.168.5.0/24"}) {
			t.Fatalf("ranges: %v", s.Settings.EgressAllow)
		}
	})
	f.refuse(&SetEgressAllow{At: t0, Ranges: []string{"10.30.0.0/16", "not-a-range"}})
	f.refuse(&SetEgressAllow{Ranges: []string{"10.30.0.0/16"}}) // no time stamp
	f.view(func(s *State) {
		if !slices.Equal(s.Settings.EgressAllow, []string{"10.20.0.0/16", "192.168.5.0/24"}) {
			t.Fatalf("a refusal changed the ranges: %v", s.Settings.EgressAllow)
		}
	})
	f.must(&SetEgressAllow{At: t0, Ranges: []string{}})
	f.view(func(s *State) {
		if s.Settings.EgressAllow != nil {
			t.Fatalf("cleared ranges: %v", s.Settings.EgressAllow)
		}
	})
}
