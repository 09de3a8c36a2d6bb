#!/bin/sh
# metadata-guard: keep the droplet's user data away from its containers.
#
# A droplet's user data holds the cluster secret and, on the seed, the
# DigitalOcean and Cloudflare tokens and the admin password. The
# DigitalOcean metadata service (169.254.169.254) serves it, without
# authentication, to whatever on the droplet asks, and a container's traffic
# to it is forwarded through the host.
#
#   metadata-guard firewall   drop containers' traffic to the metadata
#                             service: a rule at the top of iptables'
#                             DOCKER-USER chain, which Docker sends every
#                             forwarded packet through and never rewrites.
#                             dropmesh-metadata-guard.service runs it at
#                             boot, before docker.service starts any
#                             container (docker.service requires it).
#   metadata-guard scrub      delete cloud-init's cached copies of the user
#                             data; the agent's unit runs it once the agent
#                             has started (the agent reads agent.env, not
#                             these). cloud-init writes them again at boot.
#
# What this cannot do: the user data itself stays readable to root on the
# droplet (from the metadata service) for the droplet's life, as does
# /etc/dropmesh/agent.env; root on a droplet holds the cluster either way.
# Containers on the host's network (none that dropmesh starts) are not
# covered by DOCKER-USER.
#
# DROPMESH_ROOT=DIR scrubs under DIR instead of / (for tests).
set -eu

ip="${DROPMESH_METADATA_IP:-169.254.169.254}"
cloud="${DROPMESH_ROOT:-}/var/lib/cloud"

firewall() {
	# -w waits for the xtables lock, which Docker may hold.
	iptables -w -N DOCKER-USER 2>/dev/null || true
	if iptables -w -C DOCKER-USER -d "$ip/32" -j DROP 2>/dev/null; then
		echo "metadata-guard: containers are already cut off from $ip"
		return 0
	fi
	iptables -w -I DOCKER-USER 1 -d "$ip/32" -j DROP
	echo "metadata-guard: dropping containers' traffic to $ip (iptables DOCKER-USER)"
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
