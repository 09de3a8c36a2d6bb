package raftfsm

import (
	"slices"
	"strings"
)

// linuxCapabilities are the Linux capability names (without CAP_) a spec's
// cap_add may name. Containers keep a short default set (node/runtime's
// DefaultCapabilities); cap_add widens it and needs the admin role.
var linuxCapabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN",
	"DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
	"LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG", "SYS_ADMIN",
	"SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM",
}

// canonicalCapability is a capability as Docker names it ("NET_ADMIN" for
// "cap_net_admin").
func canonicalCapability(name string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "CAP_")
}

// validateCapAdd refuses names Linux does not have, ALL among them: a spec
// names each capability it needs.
func validateCapAdd(caps []string) error {
	if len(caps) > len(linuxCapabilities) {
		return invalidf("cap_add: at most %d capabilities", len(linuxCapabilities))
	}
	for _, c := range caps {
		if _, found := slices.BinarySearch(linuxCapabilities, canonicalCapability(c)); !found {
			return invalidf("cap_add %q: not a Linux capability (such as NET_ADMIN; ALL is not allowed, name each one)", c)
		}
	}
	return nil
}

// Widens reports what in the spec widens a container's confinement beyond
// the defaults every workload gets, "" when nothing does. Such a spec is
// deployed only by an admin.
func (s ServiceSpec) Widens() string {
	if len(s.CapAdd) > 0 {
		return "cap_add " + strings.Join(s.CapAdd, ",")
	}
	return ""
}
