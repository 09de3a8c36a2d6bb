package runtime

import (
	"slices"
	"strings"
)

// Confinement: every container the runtime creates runs with all Linux
// capabilities dropped but DefaultCapabilities (plus a spec's CapAdd),
// no-new-privileges, a pids limit, and memory and CPU limits (the
// Config's defaults when a spec gives none). There is no spec field to
// turn any of this off.

// DefaultCapabilities are the capabilities an ordinary web service keeps:
// changing file owners and modes in its own files (CHOWN, DAC_OVERRIDE,
// FOWNER, FSETID), dropping from root to its own user (SETUID, SETGID),
// binding a port below 1024 (NET_BIND_SERVICE) and signalling its own
// children (KILL). NET_RAW (raw sockets: spoofing, ARP tricks on the
// bridge), SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP and SETPCAP, which
// Docker's own default keeps, are dropped.
var DefaultCapabilities = []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "NET_BIND_SERVICE"}

// knownCapabilities are the Linux capability names a spec's CapAdd may
// name (without the CAP_ prefix), with their bit numbers.
var knownCapabilities = map[string]int{
	"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
	"SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11,
	"NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17,
	"SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
	"SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29,
	"AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
	"BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

// CanonicalCapability is a capability name as Docker wants it ("NET_ADMIN"
// for "cap_net_admin"), and false when Linux has no such capability. "ALL"
// is not one: a spec names each capability it needs.
func CanonicalCapability(name string) (string, bool) {
	c := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "CAP_")
	_, ok := knownCapabilities[c]
	return c, ok
}

// CapabilityMask is the bit set (as /proc/PID/status's CapEff shows it) of
// the named capabilities; unknown names are ignored.
func CapabilityMask(names []string) uint64 {
	var m uint64
	for _, n := range names {
		if c, ok := CanonicalCapability(n); ok {
			m |= 1 << knownCapabilities[c]
		}
	}
	return m
}

// capabilities is the sorted set a container keeps: the defaults and add.
func capabilities(add []string) []string {
	out := slices.Clone(DefaultCapabilities)
	for _, n := range add {
		if c, ok := CanonicalCapability(n); ok && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}
