#!/usr/bin/env bash
# join.sh: join this host to a dropmesh cluster.
#
# For a droplet that was not made from the cluster's snapshot, or any Linux
# host with Docker and systemd. It installs the host guard (no container
# reaches the metadata service or the cluster's control ports, at every
# boot: see metadata-guard), writes /etc/dropmesh/agent.env (readable by
# root only) with a one-time join token and the cluster CA's fingerprint,
# installs the dropmesh-agent unit if the host has none, and (re)starts the
# agent, which trades the token for its certificate and joins the mesh
# through the member given. No cluster secret ever reaches the host.
#
# The join token is read from a file or from standard input, never from the
# command line (where `ps` would show it to anyone who could use it first):
#
#   sudo ./join.sh --join 10.110.0.2:7946 --ca-fingerprint sha256:4f0c... --join-token-file ./token
#   ssh root@HOST 'bash /root/join.sh --join 10.110.0.2:7946 --ca-fingerprint sha256:4f0c...' < token
#
# Usage: join.sh --join HOST:PORT[,HOST:PORT...] --ca-fingerprint FP [options]
#   --join ADDRS          gossip address(es) of members (private IP, port 7946)
#   --ca-fingerprint FP   the cluster CA certificate's SHA-256 (sha256:HEX);
#                         the agent trusts no other CA when it joins
#   --join-token-file F   the one-time join token; default: stdin
#   --cluster-name NAME   the cluster's name (default: dropmesh)
#   --node-id ID          this node's id (default: the host name)
#   --advertise IP        the address peers reach this host at (default: the
#                         droplet's VPC address, else the first private one)
#   --public-ip IP        the address DNS records point at
#   --region SLUG         the DigitalOcean region of this host
#   --binary PATH         install this dropmesh binary first
#   --no-start            write the configuration but do not start the agent
#
# DROPMESH_ROOT=DIR writes every file under DIR instead of / (for tests).
set -euo pipefail

ROOT="${DROPMESH_ROOT:-}"
JOIN=""
TOKEN_FILE=""
CA_FINGERPRINT=""
CLUSTER_NAME="dropmesh"
NODE_ID=""
ADVERTISE=""
PUBLIC_IP=""
REGION=""
BINARY=""
START=yes
TOKEN=""

log() { printf 'join: %s\n' "$*"; }
die() {
	printf 'join: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# need VALUE NAME: the option NAME has a value.
need() {
	[ -n "${1:-}" ] || die "$2 needs a value (see --help)"
}

parse_args() {
	while [ $# -gt 0 ]; do
		case "$1" in
		--join) need "${2:-}" "$1"; JOIN="$2"; shift 2 ;;
		--join-token-file) need "${2:-}" "$1"; TOKEN_FILE="$2"; shift 2 ;;
		--ca-fingerprint) need "${2:-}" "$1"; CA_FINGERPRINT="$2"; shift 2 ;;
		--cluster-name) need "${2:-}" "$1"; CLUSTER_NAME="$2"; shift 2 ;;
		--node-id) need "${2:-}" "$1"; NODE_ID="$2"; shift 2 ;;
		--advertise) need "${2:-}" "$1"; ADVERTISE="$2"; shift 2 ;;
		--public-ip) need "${2:-}" "$1"; PUBLIC_IP="$2"; shift 2 ;;
		--region) need "${2:-}" "$1"; REGION="$2"; shift 2 ;;
		--binary) need "${2:-}" "$1"; BINARY="$2"; shift 2 ;;
		--no-start) START=no; shift ;;
		--join-token | --join-token=*)
			die "the join token is never given on the command line (ps shows it): use --join-token-file FILE or standard input"
			;;
		--secret | --cluster-secret | --secret=* | --cluster-secret=* | --secret-file | --secret-file=*)
			die "join.sh takes a one-time join token now, not the cluster secret: --join-token-file FILE or standard input, and --ca-fingerprint"
			;;
		-h | --help) usage; exit 0 ;;
		*) die "unknown argument $1 (see --help)" ;;
		esac
	done
}

# matches VALUE REGEX
matches() { [[ "$1" =~ $2 ]]; }

validate() {
	local ipv4='^([0-9]{1,3}\.){3}[0-9]{1,3}$'
	local addr='^([A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$'
	[ -n "$JOIN" ] || die "--join is required: the gossip address of a member, like 10.110.0.2:7946"
	local a
	IFS=, read -r -a addrs <<<"$JOIN"
	[ ${#addrs[@]} -gt 0 ] || die "--join $JOIN: no address"
	for a in "${addrs[@]}"; do
		matches "$a" "$addr" || die "--join: $a is not HOST:PORT"
	done
	[ -n "$CA_FINGERPRINT" ] || die "--ca-fingerprint is required: the cluster CA's sha256:HEX, so that the agent trusts no other CA"
	matches "$CA_FINGERPRINT" '^(sha256:)?[0-9a-fA-F]{64}$' || die "--ca-fingerprint $CA_FINGERPRINT: want sha256: and 64 hex digits"
	CA_FINGERPRINT="sha256:$(printf '%s' "${CA_FINGERPRINT#sha256:}" | tr 'A-F' 'a-f')"
	matches "$CLUSTER_NAME" '^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$' ||
		die "--cluster-name $CLUSTER_NAME: use 1-32 lowercase letters, digits and '-'"
	if [ -n "$NODE_ID" ]; then
		matches "$NODE_ID" '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' ||
			die "--node-id $NODE_ID: use 1-63 lowercase letters, digits and '-'"
	fi
	if [ -n "$ADVERTISE" ]; then
		matches "$ADVERTISE" "$ipv4" || die "--advertise $ADVERTISE: not an IPv4 address"
	fi
	if [ -n "$PUBLIC_IP" ]; then
		matches "$PUBLIC_IP" "$ipv4" || die "--public-ip $PUBLIC_IP: not an IPv4 address"
	fi
	if [ -n "$REGION" ]; then
		matches "$REGION" '^[a-z]{3}[0-9]$' || die "--region $REGION: not a region slug like nyc3"
	fi
	if [ -n "$BINARY" ] && [ ! -f "$BINARY" ]; then
		die "--binary $BINARY: no such file"
	fi
	if [ -z "$BINARY" ] && [ ! -x "$ROOT/usr/local/bin/dropmesh" ]; then
		die "dropmesh is not installed at /usr/local/bin/dropmesh: give --binary PATH"
	fi
	command -v docker >/dev/null 2>&1 || die "Docker is not installed: the agent runs its services on Docker Engine"
	if [ "$START" = yes ]; then
		command -v systemctl >/dev/null 2>&1 || die "systemctl not found: this script needs systemd (or use --no-start and run 'dropmesh agent' yourself)"
	fi
	if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
		die "run as root (sudo $0 ...)"
	fi
	if [ -f "$ROOT/etc/dropmesh/agent.env" ] && grep -q '^DROPMESH_BOOTSTRAP=true' "$ROOT/etc/dropmesh/agent.env"; then
		die "this host is a cluster's seed (/etc/dropmesh/agent.env has DROPMESH_BOOTSTRAP=true); not changing it"
	fi
}

# read_token: the join token from --join-token-file or standard input, checked.
read_token() {
	local s=""
	if [ -n "$TOKEN_FILE" ]; then
		[ -r "$TOKEN_FILE" ] || die "--join-token-file $TOKEN_FILE: cannot read it"
		s="$(head -c 1024 "$TOKEN_FILE" | tr -d ' \t\r\n')"
	elif [ -t 0 ]; then
		read -r -s -p "join token: " s
		echo >&2
	else
		s="$(head -c 1024 | tr -d ' \t\r\n')"
	fi
	matches "$s" '^[A-Za-z0-9._~+/=-]{16,512}$' || die "the join token must be 16 to 512 characters of A-Z a-z 0-9 . _ ~ + / = - (one token, as the cluster gave it)"
	TOKEN="$s"
}

# put_file MODE PATH: standard input to ROOT/PATH, atomically.
put_file() {
	local mode="$1" path="$ROOT$2" tmp
	mkdir -p "$(dirname "$path")"
	tmp="$(mktemp "$path.XXXXXX")"
	chmod "$mode" "$tmp"
	cat >"$tmp"
	mv -f "$tmp" "$path"
}

# install_guard: the host guard (metadata-guard and its unit, required by
# docker.service), enabled and started now: Docker already runs here.
install_guard() {
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
	if [ "$START" = yes ]; then
		systemctl daemon-reload
		systemctl enable --quiet dropmesh-metadata-guard.service
		systemctl restart dropmesh-metadata-guard.service
		log "host guard: containers cut off from 169.254.169.254 and the control ports (dropmesh-metadata-guard.service, at every boot)"
	else
		log "host guard installed, not started (--no-start): systemctl enable --now dropmesh-metadata-guard.service"
	fi
}

install_unit() {
	if [ -n "$BINARY" ]; then
		mkdir -p "$ROOT/usr/local/bin"
		install -m 0755 "$BINARY" "$ROOT/usr/local/bin/dropmesh.new"
		mv -f "$ROOT/usr/local/bin/dropmesh.new" "$ROOT/usr/local/bin/dropmesh"
		log "installed /usr/local/bin/dropmesh"
	fi
	if [ -f "$ROOT/etc/systemd/system/dropmesh-agent.service" ]; then
		return 0
	fi
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
	log "installed the dropmesh-agent unit"
}

write_config() {
	mkdir -p "$ROOT/etc/dropmesh" "$ROOT/var/lib/dropmesh"
	chmod 0700 "$ROOT/etc/dropmesh" "$ROOT/var/lib/dropmesh"
	{
		echo "# dropmesh agent settings, written by join.sh; read by dropmesh-agent.service"
		echo "# The join token is used once, when the agent first joins, and expires."
		echo "DROPMESH_CLUSTER_NAME=$CLUSTER_NAME"
		echo "DROPMESH_JOIN=$JOIN"
		echo "DROPMESH_JOIN_TOKEN=$TOKEN"
		echo "DROPMESH_CA_FINGERPRINT=$CA_FINGERPRINT"
		if [ -n "$NODE_ID" ]; then echo "DROPMESH_NODE_ID=$NODE_ID"; fi
		if [ -n "$ADVERTISE" ]; then echo "DROPMESH_ADVERTISE=$ADVERTISE"; fi
		if [ -n "$PUBLIC_IP" ]; then echo "DROPMESH_PUBLIC_IP=$PUBLIC_IP"; fi
		if [ -n "$REGION" ]; then echo "DROPMESH_REGION=$REGION"; fi
	} | put_file 0600 /etc/dropmesh/agent.env
	log "wrote /etc/dropmesh/agent.env (mode 0600)"
}

start_agent() {
	if [ "$START" != yes ]; then
		log "not starting (--no-start): systemctl enable --now dropmesh-agent.service"
		return 0
	fi
	systemctl daemon-reload
	systemctl enable --quiet dropmesh-metadata.service dropmesh-agent.service
	systemctl restart dropmesh-metadata.service dropmesh-agent.service
	log "agent started; it joins through $JOIN (follow it: journalctl -u dropmesh-agent -f)"
}

main() {
	parse_args "$@"
	validate
	read_token
	install_guard
	install_unit
	write_config
	start_agent
}

main "$@"
