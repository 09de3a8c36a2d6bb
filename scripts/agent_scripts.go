package scripts

import _ "embed"

// install-agent.sh and join.sh carry the host guard, the metadata helper
// and the units as here-documents, filled from the canonical files by gen.go.
//go:generate go run gen.go

// The scripts that set up a host for the agent (see install-agent.sh and
// join.sh for what each does). The binary carries them: `dropmesh
// bootstrap` uploads install-agent.sh to the snapshot builder over SSH.

//go:embed install-agent.sh
var installAgent string

//go:embed join.sh
var joinScript string

//go:embed metadata-guard.sh
var hostGuard string

// InstallAgentScript returns install-agent.sh: Docker, nginx (not as a
// system service), the binary and the dropmesh-agent unit on a Debian 12
// host, idempotently; --for-snapshot also cleans what a snapshot must not
// carry.
func InstallAgentScript() string { return installAgent }

// JoinScript returns join.sh: installs the host guard and joins a host with
// Docker to a cluster, given a member's gossip address, the cluster CA's
// fingerprint and a one-time join token (from a file or standard input).
func JoinScript() string { return joinScript }

// HostGuardScript returns metadata-guard.sh, the host guard that both
// scripts install as /usr/local/lib/dropmesh/metadata-guard (tests run it
// in network namespaces of their own).
func HostGuardScript() string { return hostGuard }
