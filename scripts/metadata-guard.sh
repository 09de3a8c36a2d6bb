#!/bin/sh
# metadata-guard: keep the droplet's containers away from what only the
# host may reach: the DigitalOcean metadata service and dropmesh's control
# ports.
#
# The metadata service (169.254.169.254) serves the droplet's user data,
# without authentication, to whatever on the droplet asks; the control
# ports (gossip 7946 tcp/udp, raft 7947, discovery's forwarder 7948, the agent API 9999, the UI 8080)
# are the cluster itself. A container reaches both through the host: the
# bridge gateway and the host's own addresses are the host (iptables
# INPUT), the other droplets' private addresses are forwarded (FORWARD).
#
#   metadata-guard firewall   install the host rules: traffic that comes in
#                             on a Docker bridge (docker0, where dropmesh's
#                             containers and `docker build`'s RUN steps run,
#                             and br-*, every user-defined bridge) is dropped
#                             - to the metadata service, forwarded or not;
#                             - to a control port of this host (INPUT);
#                             - to a control port of a private address
#                               (the VPC, forwarded), unless it goes to
#                               another container on a Docker bridge.
#                             The rules live in two chains of their own,
#                             DROPMESH-INPUT and DROPMESH-FORWARD, refilled
#                             on every run, and are reached from the top of
#                             INPUT and of DOCKER-USER, which Docker sends
#                             every forwarded packet through and never
#                             rewrites. dropmesh-metadata-guard.service runs
#                             it at every boot, before docker.service starts
#                             any container (docker.service requires it).
#   metadata-guard scrub      delete cloud-init's cached copies of the user
#                             data; the agent's unit runs it once the agent
#                             has started (the agent reads agent.env, not
#                             these). cloud-init writes them again at boot.
#
# The ports are the agent's (DROPMESH_GOSSIP_PORT, DROPMESH_RAFT_PORT,
# DROPMESH_MESH_PORT, DROPMESH_API_PORT, DROPMESH_UI_PORT; the unit reads agent.env), the
# private ranges DROPMESH_GUARD_NETS (default: every RFC 1918 range and
# 100.64.0.0/10). Containers never run on the host's network: dropmesh
# gives them no way to (owner matches cannot tell a container's process
# from the agent's), so every container is behind a bridge these rules
# cover. The user data itself stays readable to root on the droplet; root
# on a droplet holds the cluster either way.
#
# DROPMESH_ROOT=DIR scrubs under DIR instead of / (for tests).
set -eu

ip="${DROPMESH_METADATA_IP:-169.254.169.254}"
cloud="${DROPMESH_ROOT:-}/var/lib/cloud"
ports="${DROPMESH_GOSSIP_PORT:-7946},${DROPMESH_RAFT_PORT:-7947},${DROPMESH_MESH_PORT:-7948},${DROPMESH_API_PORT:-9999},${DROPMESH_UI_PORT:-8080}"
gossip="${DROPMESH_GOSSIP_PORT:-7946}"
nets="${DROPMESH_GUARD_NETS:-10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10}"

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

firewall() {
	case "$ports,$gossip" in
	*[!0-9,]*) echo "metadata-guard: bad port list $ports" >&2; exit 2 ;;
	esac
	chain DROPMESH-INPUT
	ipt -A DROPMESH-INPUT -d "$ip/32" -j DROP
	ipt -A DROPMESH-INPUT -p tcp -m multiport --dports "$ports" -j DROP
	ipt -A DROPMESH-INPUT -p udp --dport "$gossip" -j DROP
	chain DROPMESH-FORWARD
	ipt -A DROPMESH-FORWARD -d "$ip/32" -j DROP
	ipt -A DROPMESH-FORWARD -o docker0 -j RETURN
	ipt -A DROPMESH-FORWARD -o br-+ -j RETURN
	ipt -A DROPMESH-FORWARD -d "$nets" -p tcp -m multiport --dports "$ports" -j DROP
	ipt -A DROPMESH-FORWARD -d "$nets" -p udp --dport "$gossip" -j DROP
	ipt -N DOCKER-USER 2>/dev/null || true
	for br in docker0 br-+; do
		hook INPUT -i "$br" -j DROPMESH-INPUT
		hook DOCKER-USER -i "$br" -j DROPMESH-FORWARD
	done
	echo "metadata-guard: containers on Docker bridges cut off from $ip and from ports $ports (tcp) and $gossip (udp) of this host and of $nets"
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
