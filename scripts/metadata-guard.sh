#!/bin/sh
# metadata-guard: keep the droplet's containers away from what only the
# host may reach (the DigitalOcean metadata service and dropmesh's control
# ports) and keep each workspace's containers away from the others'.
#
# The metadata service (169.254.169.254) serves the droplet's user data,
# without authentication, to whatever on the droplet asks; the control
# ports (gossip 7946 tcp/udp, raft 7947, discovery's gateway 7948, the
# agent API 9999, the UI 8080) are the cluster itself. A container reaches
# both through the host: the bridge gateway and the host's own addresses
# are the host (iptables INPUT), the other droplets' private addresses are
# forwarded (FORWARD). It reaches another workspace's containers through
# the ports they publish on the node's private address: Docker's proxy on
# this host (INPUT) or Docker's DNAT into their bridge (FORWARD), and the
# other droplets' published ports over the private network (FORWARD).
#
#   metadata-guard firewall   install the host rules for traffic that comes
#                             in on a Docker bridge. br-* are the workspace
#                             networks (every user-defined bridge: on a
#                             droplet only dropmesh makes them); docker0 is
#                             where `docker build`'s RUN steps run. Such
#                             traffic may go
#                             - to a container on the same bridge (bridged,
#                               not routed: its own workspace);
#                             - to this host: the discovery DNS servers and
#                               forwarders (sockets bound to an address of
#                               10.213.0.0/16, the workspace networks'
#                               pool) and the edge (80 and 443);
#                             - to the private network (DROPMESH_GUARD_NETS):
#                               the other droplets' edges (80, 443), DNS
#                               (53) and what DROPMESH_GUARD_ALLOW names;
#                             - anywhere else (the internet);
#                             and answers to connections made to it pass.
#                             Everything else is dropped: the metadata
#                             service, every control port, every other port
#                             of this host (Docker's proxy of a published
#                             port, sshd), another bridge (another
#                             workspace, also a published port DNATed to it)
#                             and every other port of the private network
#                             (the other droplets' published ports).
#                             With DROPMESH_DISCOVERY=off the containers run
#                             on docker0 and reach each other through ports
#                             published on the nodes' private addresses, so
#                             docker0 keeps the narrower shared rules: only
#                             the metadata service and the control ports
#                             (of this host, and forwarded to the private
#                             network unless to a bridge) are dropped.
#                             The rules live in chains of their own
#                             (DROPMESH-INPUT, DROPMESH-FORWARD and the
#                             shared DROPMESH-SHARED-INPUT and
#                             DROPMESH-SHARED-FORWARD), refilled on every
#                             run, and are reached from the top of INPUT
#                             and of DOCKER-USER, which Docker sends every
#                             forwarded packet through and never rewrites.
#                             dropmesh-metadata-guard.service runs it at
#                             every boot, before docker.service starts any
#                             container (docker.service requires it).
#   metadata-guard scrub      delete cloud-init's cached copies of the user
#                             data; the agent's unit runs it once the agent
#                             has started (the agent reads agent.env, not
#                             these). cloud-init writes them again at boot.
#
# Settings (the unit reads agent.env): the ports are the agent's
# (DROPMESH_GOSSIP_PORT, DROPMESH_RAFT_PORT, DROPMESH_MESH_PORT,
# DROPMESH_API_PORT, DROPMESH_UI_PORT; DROPMESH_EDGE_PORT and
# DROPMESH_EDGE_TLS_PORT for the edge), DROPMESH_DISCOVERY the agent's
# discovery mode; DROPMESH_GUARD_NETS the private ranges (default: every
# RFC 1918 range and 100.64.0.0/10); DROPMESH_GUARD_ALLOW a comma list of
# private destinations containers may reach anyway, CIDR or CIDR:PORT
# (tcp and udp), for example a managed database at 10.110.0.9/32:5432.
# Containers never run on the host's network: dropmesh gives them no way
# to (owner matches cannot tell a container's process from the agent's),
# so every container is behind a bridge these rules cover. The user data
# itself stays readable to root on the droplet; root on a droplet holds
# the cluster either way. IPv6 is not covered: Docker's bridges run IPv4
# only unless configured otherwise.
#
# DROPMESH_ROOT=DIR scrubs under DIR instead of / (for tests).
set -eu

ip="${DROPMESH_METADATA_IP:-169.254.169.254}"
cloud="${DROPMESH_ROOT:-}/var/lib/cloud"
ports="${DROPMESH_GOSSIP_PORT:-7946},${DROPMESH_RAFT_PORT:-7947},${DROPMESH_MESH_PORT:-7948},${DROPMESH_API_PORT:-9999},${DROPMESH_UI_PORT:-8080}"
gossip="${DROPMESH_GOSSIP_PORT:-7946}"
edge="${DROPMESH_EDGE_PORT:-80},${DROPMESH_EDGE_TLS_PORT:-443}"
nets="${DROPMESH_GUARD_NETS:-10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10}"
allow="${DROPMESH_GUARD_ALLOW:-}"
discovery="${DROPMESH_DISCOVERY:-auto}"
# pool holds every workspace network (node/discovery's DefaultPool).
pool=10.213.0.0/16

# ipt: iptables, waiting for the xtables lock, which Docker may hold.
ipt() { iptables -w "$@"; }

# chain NAME: an empty chain NAME.
chain() {
	ipt -N "$1" 2>/dev/null || true
	ipt -F "$1"
}

# hook CHAIN RULE...: RULE once, at the top of CHAIN.
hook() {
	c="$1"
	shift
	if ! ipt -C "$c" "$@" 2>/dev/null; then
		ipt -I "$c" 1 "$@"
	fi
}

# unhook CHAIN RULE...: RULE no longer in CHAIN.
unhook() {
	while ipt -D "$@" 2>/dev/null; do :; done
}

# bad WHAT VALUE: refuse a setting before anything changes.
bad() {
	echo "metadata-guard: bad $1 $2" >&2
	exit 2
}

check() {
	case "$ports,$gossip,$edge" in
	*[!0-9,]* | *,,* | ,* | *,) bad "port list" "$ports,$edge" ;;
	esac
	case "$nets" in
	"" | *[!0-9./,]*) bad "DROPMESH_GUARD_NETS" "$nets" ;;
	esac
	old="$IFS"
	IFS=,
	for a in $allow; do
		case "$a" in
		*[!0-9./:]* | *:*:* | *:) bad "DROPMESH_GUARD_ALLOW entry" "$a" ;;
		[0-9]*.[0-9]*.[0-9]*.[0-9]*) ;;
		*) bad "DROPMESH_GUARD_ALLOW entry" "$a" ;;
		esac
	done
	IFS="$old"
	case "$discovery" in
	auto | on | off | "") ;;
	*) bad "DROPMESH_DISCOVERY" "$discovery" ;;
	esac
}

# allowed CHAIN: CHAIN returns for DROPMESH_GUARD_ALLOW's destinations.
allowed() {
	old="$IFS"
	IFS=,
	for a in $allow; do
		IFS="$old"
		case "$a" in
		*:*)
			ipt -A "$1" -d "${a%:*}" -p tcp --dport "${a##*:}" -j RETURN
			ipt -A "$1" -d "${a%:*}" -p udp --dport "${a##*:}" -j RETURN
			;;
		"") ;;
		*) ipt -A "$1" -d "$a" -j RETURN ;;
		esac
		IFS=,
	done
	IFS="$old"
}

firewall() {
	check
	# Workspace bridges (and docker0 while discovery runs): to this host.
	chain DROPMESH-INPUT
	ipt -A DROPMESH-INPUT -d "$ip/32" -j DROP
	# Discovery first: a service may declare a port that is also a control
	# port (8080); its forwarder binds the virtual address itself, the
	# control ports bind the private address (or the wildcard, which the
	# socket match ignores).
	ipt -A DROPMESH-INPUT -d "$pool" -m socket -j RETURN
	ipt -A DROPMESH-INPUT -p tcp -m multiport --dports "$ports" -j DROP
	ipt -A DROPMESH-INPUT -p udp --dport "$gossip" -j DROP
	ipt -A DROPMESH-INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
	ipt -A DROPMESH-INPUT -p tcp -m multiport --dports "$edge" -j RETURN
	ipt -A DROPMESH-INPUT -j DROP
	# ... and forwarded.
	chain DROPMESH-FORWARD
	ipt -A DROPMESH-FORWARD -d "$ip/32" -j DROP
	ipt -A DROPMESH-FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
	ipt -A DROPMESH-FORWARD -m physdev --physdev-is-bridged -j RETURN
	ipt -A DROPMESH-FORWARD -o docker0 -j DROP
	ipt -A DROPMESH-FORWARD -o br-+ -j DROP
	ipt -A DROPMESH-FORWARD -d "$nets" -p tcp -m multiport --dports "$ports" -j DROP
	ipt -A DROPMESH-FORWARD -d "$nets" -p udp --dport "$gossip" -j DROP
	allowed DROPMESH-FORWARD
	ipt -A DROPMESH-FORWARD -d "$nets" -p tcp -m multiport --dports "$edge,53" -j RETURN
	ipt -A DROPMESH-FORWARD -d "$nets" -p udp --dport 53 -j RETURN
	ipt -A DROPMESH-FORWARD -d "$nets" -j DROP
	# docker0 when the containers run there (discovery off).
	chain DROPMESH-SHARED-INPUT
	ipt -A DROPMESH-SHARED-INPUT -d "$ip/32" -j DROP
	ipt -A DROPMESH-SHARED-INPUT -p tcp -m multiport --dports "$ports" -j DROP
	ipt -A DROPMESH-SHARED-INPUT -p udp --dport "$gossip" -j DROP
	chain DROPMESH-SHARED-FORWARD
	ipt -A DROPMESH-SHARED-FORWARD -d "$ip/32" -j DROP
	ipt -A DROPMESH-SHARED-FORWARD -o docker0 -j RETURN
	ipt -A DROPMESH-SHARED-FORWARD -o br-+ -j RETURN
	ipt -A DROPMESH-SHARED-FORWARD -d "$nets" -p tcp -m multiport --dports "$ports" -j DROP
	ipt -A DROPMESH-SHARED-FORWARD -d "$nets" -p udp --dport "$gossip" -j DROP
	ipt -N DOCKER-USER 2>/dev/null || true
	in=DROPMESH-INPUT fwd=DROPMESH-FORWARD mode="as tightly"
	if [ "$discovery" = off ]; then
		in=DROPMESH-SHARED-INPUT fwd=DROPMESH-SHARED-FORWARD mode="by the shared rules (discovery off)"
	fi
	for c in DROPMESH-INPUT DROPMESH-SHARED-INPUT; do
		[ "$c" = "$in" ] || unhook INPUT -i docker0 -j "$c"
	done
	for c in DROPMESH-FORWARD DROPMESH-SHARED-FORWARD; do
		[ "$c" = "$fwd" ] || unhook DOCKER-USER -i docker0 -j "$c"
	done
	hook INPUT -i docker0 -j "$in"
	hook DOCKER-USER -i docker0 -j "$fwd"
	hook INPUT -i br-+ -j DROPMESH-INPUT
	hook DOCKER-USER -i br-+ -j DROPMESH-FORWARD
	echo "metadata-guard: containers on Docker bridges cut off from $ip and from ports $ports (tcp) and $gossip (udp) of this host and of $nets; workspaces apart, reaching this host's discovery and edge ($edge) only, and $nets on ports $edge and 53${allow:+ and $allow} only; docker0 held $mode"
}

scrub() {
	n=0
	# The raw user data, its processed form, the merged cloud-config and the
	# pickled datasource (which holds the raw user data too).
	for f in "$cloud"/instances/*/user-data.txt "$cloud"/instances/*/user-data.txt.i \
		"$cloud"/instances/*/cloud-config.txt "$cloud"/instances/*/obj.pkl; do
		[ -e "$f" ] || continue
		rm -f "$f"
		n=$((n + 1))
	done
	echo "metadata-guard: removed $n cached copies of the user data"
}

case "${1:-}" in
firewall) firewall ;;
scrub) scrub ;;
*)
	echo "usage: metadata-guard firewall|scrub" >&2
	exit 2
	;;
esac
