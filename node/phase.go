package node

import (
	"fmt"
	"strings"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// phaseLine renders an instance's phase for progress lines ("health 1/3").
func phaseLine(phase string, done, want int) string {
	if phase == raftfsm.PhaseChecking {
		return fmt.Sprintf("%s %d/%d", phase, done, want)
	}
	return phase
}

// isCheckingPhase reports whether a reported phase is a health count.
func isCheckingPhase(p string) bool { return strings.HasPrefix(p, raftfsm.PhaseChecking+" ") }
