package runtime

import (
	"regexp"
	"slices"
	"strings"
)

// Confinement: every container the runtime creates runs with all Linux
// capabilities dropped but DefaultCapabilities (plus a spec's CapAdd),
// no-new-privileges, a pids limit, and memory and CPU limits (the
// Config's defaults when a spec gives none). There is no spec field to
// turn any of this off.

// ConfinementVersion changes with what confinement a container gets, so
// the agent can tell (by its config hash) a container made with a weaker
// one and replace it.
const ConfinementVersion = 1

// DefaultCapabilities are the capabilities an ordinary web service keeps:
// changing file owners and modes in its own files (CHOWN, DAC_OVERRIDE,
// FOWNER, FSETID), dropping from root to its own user (SETUID, SETGID),
// binding a port below 1024 (NET_BIND_SERVICE) and signalling its own
// children (KILL). NET_RAW (raw sockets: spoofing, ARP tricks on the
// bridge), SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP and SETPCAP, which
// Docker's own default keeps, are dropped.
var DefaultCapabilities = []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "NET_BIND_SERVICE"}

// capabilityName is the shape of a capability name; Docker refuses one
// Linux does not have (raftfsm checks a spec's against the list).
var capabilityName = regexp.MustCompile(`^[A-Z][A-Z_]{1,31}$`)

// canonicalCapability is a capability name as Docker wants it ("NET_ADMIN"
// for "cap_net_admin"); false for a malformed name and for ALL.
func canonicalCapability(name string) (string, bool) {
	c := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "CAP_")
	return c, c != "ALL" && capabilityName.MatchString(c)
}

// capabilities is the sorted set a container keeps: the defaults and add.
func capabilities(add []string) []string {
	out := slices.Clone(DefaultCapabilities)
	for _, n := range add {
		if c, ok := canonicalCapability(n); ok && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}
