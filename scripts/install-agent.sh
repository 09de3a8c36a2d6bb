#!/usr/bin/env bash
# install-agent.sh: prepare a Debian 12 host to run the dropmesh agent.
#
# `dropmesh bootstrap` uploads this script and the dropmesh binary over SSH
# to a temporary builder droplet, runs it, then snapshots the droplet: every
# droplet of the cluster boots from that snapshot, and its cloud-init user
# data only writes /etc/dropmesh/agent.env and starts the unit installed here.
#
# What it installs:
#   - Docker Engine from Debian's packages (docker.io), containers' logs
#     rotated by the json-file driver;
#   - nginx, disabled as a system service: the agent runs its own nginx master;
#   - the binary at /usr/local/bin/dropmesh;
#   - the dropmesh-agent systemd unit (EnvironmentFile=/etc/dropmesh/agent.env,
#     ExecStart=/usr/local/bin/dropmesh agent, Restart=always) and the
#     dropmesh-metadata unit that reads the droplet's addresses from the
#     DigitalOcean metadata service;
#   - the host guard: the dropmesh-metadata-guard unit drops containers'
#     traffic (every Docker bridge, so also `docker build`'s RUN steps) to
#     the metadata service (169.254.169.254, which serves the user data)
#     and to the control ports (7946 tcp/udp, 7947, 7948, 9999, the UI's 8080) of
#     this host and of the private network, and workspaces' containers from
#     each other (also through published ports), at every boot before Docker
#     starts, and a drop-in of the agent's unit deletes cloud-init's cached
#     copies of the user data once the agent runs (see metadata-guard's
#     comment);
#   - sysctl settings for many connections, logrotate for nginx (hourly), a
#     cap on the journal.
#
# It is idempotent: a second run changes nothing that is already right, and
# restarts only what it changed.
#
# Usage: install-agent.sh [--binary PATH] [--for-snapshot]
#   --binary PATH    install this dropmesh binary (a static Linux build);
#                    without it the installed one is kept
#   --for-snapshot   also remove what must not end up in a snapshot: apt
#                    caches, cloud-init's state, the machine id, the builder's
#                    SSH key, any agent configuration or data
#
# DROPMESH_ROOT=DIR installs every file under DIR instead of / (the tests do,
# with stand-ins for apt-get, dpkg-query, systemctl, sysctl and cloud-init
# first on PATH).
set -euo pipefail

ROOT="${DROPMESH_ROOT:-}"
BINARY=""
FOR_SNAPSHOT=no
# CHANGED lists the files this run wrote (relative to ROOT).
CHANGED=()

PACKAGES=(ca-certificates curl docker.io nginx logrotate)

log() { printf 'install-agent: %s\n' "$*"; }
die() {
	printf 'install-agent: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

parse_args() {
	while [ $# -gt 0 ]; do
		case "$1" in
		--binary)
			[ $# -ge 2 ] || die "--binary needs a path"
			BINARY="$2"
			shift 2
			;;
		--for-snapshot)
			FOR_SNAPSHOT=yes
			shift
			;;
		-h | --help)
			usage
			exit 0
			;;
		*) die "unknown argument $1 (see --help)" ;;
		esac
	done
	if [ -n "$BINARY" ] && [ ! -f "$BINARY" ]; then
		die "--binary $BINARY: no such file"
	fi
	if [ -z "$BINARY" ] && [ ! -x "$ROOT/usr/local/bin/dropmesh" ]; then
		die "no dropmesh binary installed yet: give --binary PATH"
	fi
	if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
		die "run as root (sudo $0 ...)"
	fi
}

# put_file MODE PATH: write standard input to ROOT/PATH with MODE, only when
# the content differs (then PATH is added to CHANGED). Written atomically.
put_file() {
	local mode="$1" path="$ROOT$2" tmp
	mkdir -p "$(dirname "$path")"
	tmp="$(mktemp "$path.XXXXXX")"
	cat >"$tmp"
	if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
		rm -f "$tmp"
		chmod "$mode" "$path"
		return 0
	fi
	chmod "$mode" "$tmp"
	mv -f "$tmp" "$path"
	CHANGED+=("$2")
}

# changed PATH...: true when this run wrote one of the paths.
changed() {
	local want have
	for want in "$@"; do
		for have in "${CHANGED[@]+"${CHANGED[@]}"}"; do
			[ "$have" = "$want" ] && return 0
		done
	done
	return 1
}

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		installed "$p" || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		log "packages: all present (${PACKAGES[*]})"
		return 0
	fi
	# A fresh droplet may still be running cloud-init's own package work.
	if [ -z "$ROOT" ] && command -v cloud-init >/dev/null 2>&1; then
		cloud-init status --wait >/dev/null 2>&1 || true
	fi
	# Keep Debian from starting nginx (and Docker) while they install: the
	# system nginx would take port 80, which belongs to the agent's edge.
	local policy="$ROOT/usr/sbin/policy-rc.d"
	if [ ! -e "$policy" ]; then
		mkdir -p "$(dirname "$policy")"
		printf '#!/bin/sh\n# install-agent.sh: no service starts during the install\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		trap 'rm -f "$ROOT/usr/sbin/policy-rc.d"' EXIT
	fi
	log "packages: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=300 -qq update
	apt-get -o DPkg::Lock::Timeout=300 -qq install -y --no-install-recommends "${missing[@]}"
	rm -f "$policy"
	trap - EXIT
}

install_metadata_guard() {
	put_file 0755 /usr/local/lib/dropmesh/metadata-guard <<'SCRIPT'
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
SCRIPT
	put_file 0644 /etc/systemd/system/dropmesh-metadata-guard.service <<'UNIT'
# dropmesh: cut containers off from the DigitalOcean metadata service,
# which serves the droplet's user data, and from the control ports (gossip,
# raft, the agent API, the UI) of this host and of the private network,
# and each workspace's containers from the others' (also through published
# ports), before Docker starts any container, at every boot (see
# metadata-guard).
# Enabled, it is required by docker.service: Docker does not start without
# the rules in place. The agent's settings give the ports.
[Unit]
Description=dropmesh: no container reaches the metadata service or the control ports
Before=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
EnvironmentFile=-/etc/dropmesh/agent.env
ExecStart=/usr/local/lib/dropmesh/metadata-guard firewall

[Install]
RequiredBy=docker.service
WantedBy=multi-user.target
UNIT
	put_file 0644 /etc/systemd/system/dropmesh-agent.service.d/scrub-user-data.conf <<'UNIT'
# dropmesh (install-agent.sh): drop-in of dropmesh-agent.service. Once the
# agent has started (it reads its settings from agent.env), delete
# cloud-init's cached copies of the user data; a failure never stops the
# agent.
[Service]
ExecStartPost=-/usr/local/lib/dropmesh/metadata-guard scrub
UNIT
	local files=(/usr/local/lib/dropmesh/metadata-guard /etc/systemd/system/dropmesh-metadata-guard.service
		/etc/systemd/system/dropmesh-agent.service.d/scrub-user-data.conf)
	if changed "${files[@]}"; then
		systemctl daemon-reload
	fi
	# Required by docker.service once enabled: no container starts before
	# the rule is in place, at every boot.
	systemctl enable --quiet dropmesh-metadata-guard.service
	if changed "${files[@]}"; then
		systemctl restart dropmesh-metadata-guard.service
	else
		systemctl start dropmesh-metadata-guard.service
	fi
	log "host guard: containers cut off from 169.254.169.254 and the control ports; cloud-init's copies of the user data scrubbed when the agent starts"
}

configure_docker() {
	put_file 0644 /etc/docker/daemon.json <<'JSON'
{
  "log-driver": "json-file",
  "log-opts": {
    "max-size": "10m",
    "max-file": "3"
  },
  "live-restore": true
}
JSON
	systemctl enable --quiet containerd.service docker.service
	if changed /etc/docker/daemon.json; then
		log "docker: configured (json-file logs rotated at 10 MB x 3, live restore); restarting"
		systemctl restart docker.service
	else
		systemctl start docker.service
	fi
}

disable_system_nginx() {
	# Disabled and stopped, not masked: Debian's maintainer scripts leave a
	# disabled unit alone, and a masked one would make upgrades fail.
	systemctl disable --quiet --now nginx.service >/dev/null 2>&1 || true
	log "nginx: installed, system service disabled (the agent runs its own master)"
}

install_binary() {
	local dst="$ROOT/usr/local/bin/dropmesh"
	if [ -n "$BINARY" ]; then
		mkdir -p "$(dirname "$dst")"
		if [ -f "$dst" ] && cmp -s "$BINARY" "$dst"; then
			:
		else
			install -m 0755 "$BINARY" "$dst.new"
			mv -f "$dst.new" "$dst"
			CHANGED+=(/usr/local/bin/dropmesh)
		fi
	fi
	local version
	version="$("$dst" version)" || die "$dst does not run on this host (wrong architecture?)"
	log "binary: /usr/local/bin/dropmesh $version"
}

install_units() {
	mkdir -p "$ROOT/etc/dropmesh" "$ROOT/var/lib/dropmesh"
	chmod 0700 "$ROOT/etc/dropmesh" "$ROOT/var/lib/dropmesh"
	put_file 0755 /usr/local/lib/dropmesh/metadata-env <<'SCRIPT'
#!/bin/sh
# metadata-env: write this droplet's id, region, private (VPC) and public
# IPv4 from the DigitalOcean metadata service to /run/dropmesh/metadata.env,
# as DROPMESH_* lines the dropmesh-agent unit reads before agent.env.
#
# The private address matters: a droplet also has an "anchor" 10.x address
# on its public interface, so "the first private address" can be the wrong
# one. On a host that is not a droplet this writes an empty file.
set -eu

out="${DROPMESH_METADATA_OUT:-/run/dropmesh/metadata.env}"
url="${DROPMESH_METADATA_URL:-http://169.254.169.254/metadata/v1}"
vendor_file=/sys/class/dmi/id/sys_vendor

get() {
	curl -fsS --connect-timeout 1 --max-time 3 "$url/$1" 2>/dev/null || true
}

# emit NAME VALUE PATTERN: one line, only when VALUE is made of PATTERN's
# characters (nothing from the network reaches the unit unchecked).
emit() {
	case "$2" in
	"" | *[!$3]*) ;;
	*) printf '%s=%s\n' "$1" "$2" ;;
	esac
}

mkdir -p "$(dirname "$out")"
tmp="$(mktemp "$(dirname "$out")/.metadata.XXXXXX")"
trap 'rm -f "$tmp"' EXIT

is_droplet=no
if [ -n "${DROPMESH_METADATA_URL:-}" ]; then
	is_droplet=yes
elif [ -r "$vendor_file" ] && [ "$(cat "$vendor_file")" = "DigitalOcean" ]; then
	is_droplet=yes
fi

if [ "$is_droplet" = yes ]; then
	# The metadata service can lag the network at boot: up to ~30 s.
	id=""
	tries=0
	while [ -z "$id" ] && [ "$tries" -lt 15 ]; do
		id="$(get id)"
		[ -n "$id" ] || sleep 1
		tries=$((tries + 1))
	done
	{
		emit DROPMESH_DROPLET_ID "$id" 0-9
		emit DROPMESH_REGION "$(get region)" a-z0-9
		emit DROPMESH_ADVERTISE "$(get interfaces/private/0/ipv4/address)" 0-9.
		emit DROPMESH_PUBLIC_IP "$(get interfaces/public/0/ipv4/address)" 0-9.
	} >"$tmp"
fi
chmod 0644 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
SCRIPT
	put_file 0644 /etc/systemd/system/dropmesh-metadata.service <<'UNIT'
# dropmesh: read the droplet's id, region and addresses from the
# DigitalOcean metadata service into /run/dropmesh/metadata.env, once a boot.
[Unit]
Description=dropmesh droplet metadata
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/lib/dropmesh/metadata-env

[Install]
WantedBy=multi-user.target
UNIT
	put_file 0644 /etc/systemd/system/dropmesh-agent.service <<'UNIT'
# dropmesh agent: installed by install-agent.sh (base snapshot) or join.sh.
# Cloud-init (or join.sh) writes /etc/dropmesh/agent.env, the agent's
# DROPMESH_* settings, then starts this unit.
[Unit]
Description=dropmesh agent
Documentation=https://github.com/dropmesh/dropmesh
Wants=network-online.target docker.service dropmesh-metadata.service
After=network-online.target docker.service dropmesh-metadata.service
# A snapshot boots without agent.env until its user data is written.
ConditionPathExists=/etc/dropmesh/agent.env
# Never give up restarting.
StartLimitIntervalSec=0

[Service]
Type=simple
# A droplet's edge serves TLS on 443 for the zones with an origin
# certificate (`dropmesh certs`); the files below may override it.
Environment=DROPMESH_EDGE_TLS_PORT=443
# The droplet's addresses from the metadata service first, so that the
# user data's own settings (read second) win.
EnvironmentFile=-/run/dropmesh/metadata.env
EnvironmentFile=/etc/dropmesh/agent.env
ExecStart=/usr/local/bin/dropmesh agent
Restart=always
RestartSec=2s
# Raft, gossip, Docker streams and the edge hold many descriptors.
LimitNOFILE=1048576
# A graceful stop hands raft leadership over and leaves the mesh.
KillSignal=SIGTERM
TimeoutStopSec=30s
# Only the agent is stopped on a restart: the edge's nginx master keeps
# serving and the new agent adopts it through its pid file.
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
	if changed /etc/systemd/system/dropmesh-agent.service /etc/systemd/system/dropmesh-metadata.service; then
		systemctl daemon-reload
	fi
	# Enabled, but the agent only starts once agent.env exists
	# (ConditionPathExists): cloud-init writes it on the cluster's droplets.
	systemctl enable --quiet dropmesh-metadata.service dropmesh-agent.service
	log "units: dropmesh-agent.service and dropmesh-metadata.service enabled"
}

install_sysctl() {
	put_file 0644 /etc/sysctl.d/60-dropmesh.conf <<'CONF'
# dropmesh: a node accepts many client connections through its edge and
# opens many to containers and peers.
net.core.somaxconn = 65535
net.core.netdev_max_backlog = 16384
net.ipv4.tcp_max_syn_backlog = 65535
net.ipv4.tcp_tw_reuse = 1
net.ipv4.tcp_fin_timeout = 15
net.ipv4.tcp_keepalive_time = 300
# Ephemeral ports, keeping the agent's own ports out of the range.
net.ipv4.ip_local_port_range = 10240 65535
net.ipv4.ip_local_reserved_ports = 7946,7947,8080,9999
fs.file-max = 2097152
fs.inotify.max_user_instances = 1024
fs.inotify.max_user_watches = 524288
vm.max_map_count = 262144
CONF
	if changed /etc/sysctl.d/60-dropmesh.conf; then
		sysctl --quiet --load="$ROOT/etc/sysctl.d/60-dropmesh.conf" || log "sysctl: some settings did not apply now; they apply at boot"
	fi
	log "sysctl: /etc/sysctl.d/60-dropmesh.conf"
}

install_logrotate() {
	# Replaces Debian's nginx rule: copytruncate needs no signal, so it works
	# whichever nginx master (the agent's) holds the files.
	put_file 0644 /etc/logrotate.d/nginx <<'CONF'
# dropmesh: nginx runs under the agent, not as a system service.
/var/log/nginx/*.log /var/lib/dropmesh/edge/*.log /var/lib/dropmesh/edge/logs/*.log {
	hourly
	maxsize 100M
	rotate 24
	missingok
	notifempty
	compress
	delaycompress
	copytruncate
	su root root
}
CONF
	# Debian runs logrotate daily; hourly lets maxsize bite on busy nodes.
	put_file 0644 /etc/systemd/system/logrotate.timer.d/dropmesh.conf <<'CONF'
[Timer]
OnCalendar=
OnCalendar=hourly
AccuracySec=1m
CONF
	put_file 0644 /etc/systemd/journald.conf.d/dropmesh.conf <<'CONF'
# dropmesh: the agent logs to the journal; keep it bounded.
[Journal]
SystemMaxUse=512M
MaxRetentionSec=14day
CONF
	if changed /etc/systemd/system/logrotate.timer.d/dropmesh.conf; then
		systemctl daemon-reload
	fi
	if changed /etc/systemd/journald.conf.d/dropmesh.conf; then
		systemctl restart systemd-journald.service || true
	fi
	log "logs: nginx rotated hourly past 100 MB, journal capped at 512 MB"
}

clean_for_snapshot() {
	log "snapshot: cleaning caches, cloud-init state, machine id, builder key"
	apt-get -qq clean
	rm -rf "$ROOT"/var/lib/apt/lists/*
	# Every droplet made from the snapshot runs cloud-init afresh (new host
	# keys, its own user data).
	if command -v cloud-init >/dev/null 2>&1; then
		cloud-init clean --logs
	fi
	# systemd makes a new machine id at first boot when the file is empty.
	if [ -f "$ROOT/etc/machine-id" ]; then
		: >"$ROOT/etc/machine-id"
	fi
	rm -f "$ROOT/var/lib/dbus/machine-id"
	# The builder's temporary key must not open every droplet.
	rm -f "$ROOT/root/.ssh/authorized_keys"
	# No configuration or state of any agent.
	rm -f "$ROOT/etc/dropmesh/agent.env" "$ROOT/etc/dropmesh/cluster-secret"
	find "$ROOT/var/lib/dropmesh" -mindepth 1 -delete
	sync
}

main() {
	parse_args "$@"
	install_packages
	install_metadata_guard
	configure_docker
	disable_system_nginx
	install_binary
	install_units
	install_sysctl
	install_logrotate
	if [ "$FOR_SNAPSHOT" = yes ]; then
		clean_for_snapshot
	fi
	log "done (${#CHANGED[@]} files changed)"
}

main "$@"
