#!/usr/bin/env bash
# join.sh: join this host to a dropmesh cluster.
#
# For a droplet that was not made from the cluster's snapshot, or any Linux
# host with Docker and systemd. It writes /etc/dropmesh/agent.env and the
# cluster secret (both readable by root only), installs the dropmesh-agent
# unit if the host has none, and (re)starts the agent, which joins the mesh
# through the member given.
#
# The cluster secret is read from a file or from standard input, never from
# the command line (where `ps` would show it):
#
#   sudo ./join.sh --join 10.110.0.2:7946 --secret-file ./cluster-secret
#   ssh root@HOST 'bash /root/join.sh --join 10.110.0.2:7946' < cluster-secret
#
# Usage: join.sh --join HOST:PORT[,HOST:PORT...] [options]
#   --join ADDRS          gossip address(es) of members (private IP, port 7946)
#   --secret-file FILE    the cluster secret (64 hex digits); default: stdin
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
SECRET_FILE=""
CLUSTER_NAME="dropmesh"
NODE_ID=""
ADVERTISE=""
PUBLIC_IP=""
REGION=""
BINARY=""
START=yes
SECRET=""

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
		--secret-file) need "${2:-}" "$1"; SECRET_FILE="$2"; shift 2 ;;
		--cluster-name) need "${2:-}" "$1"; CLUSTER_NAME="$2"; shift 2 ;;
		--node-id) need "${2:-}" "$1"; NODE_ID="$2"; shift 2 ;;
		--advertise) need "${2:-}" "$1"; ADVERTISE="$2"; shift 2 ;;
		--public-ip) need "${2:-}" "$1"; PUBLIC_IP="$2"; shift 2 ;;
		--region) need "${2:-}" "$1"; REGION="$2"; shift 2 ;;
		--binary) need "${2:-}" "$1"; BINARY="$2"; shift 2 ;;
		--no-start) START=no; shift ;;
		--secret | --cluster-secret | --secret=* | --cluster-secret=*)
			die "the secret is never given on the command line (ps shows it): use --secret-file FILE or standard input"
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

# read_secret: the secret from --secret-file or standard input, checked.
read_secret() {
	local s=""
	if [ -n "$SECRET_FILE" ]; then
		[ -r "$SECRET_FILE" ] || die "--secret-file $SECRET_FILE: cannot read it"
		s="$(head -c 200 "$SECRET_FILE" | tr -d ' \t\r\n')"
	elif [ -t 0 ]; then
		read -r -s -p "cluster secret (64 hex digits): " s
		echo >&2
	else
		s="$(head -c 200 | tr -d ' \t\r\n')"
	fi
	matches "$s" '^[0-9a-fA-F]{64}$' || die "the cluster secret must be 64 hex digits (dropmesh keeps it in the bootstrap state dir as cluster-secret)"
	SECRET="$s"
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
	printf '%s\n' "$SECRET" | put_file 0600 /etc/dropmesh/cluster-secret
	{
		echo "# dropmesh agent settings, written by join.sh; read by dropmesh-agent.service"
		echo "DROPMESH_CLUSTER_NAME=$CLUSTER_NAME"
		echo "DROPMESH_CLUSTER_SECRET_FILE=/etc/dropmesh/cluster-secret"
		echo "DROPMESH_JOIN=$JOIN"
		if [ -n "$NODE_ID" ]; then echo "DROPMESH_NODE_ID=$NODE_ID"; fi
		if [ -n "$ADVERTISE" ]; then echo "DROPMESH_ADVERTISE=$ADVERTISE"; fi
		if [ -n "$PUBLIC_IP" ]; then echo "DROPMESH_PUBLIC_IP=$PUBLIC_IP"; fi
		if [ -n "$REGION" ]; then echo "DROPMESH_REGION=$REGION"; fi
	} | put_file 0600 /etc/dropmesh/agent.env
	log "wrote /etc/dropmesh/agent.env and /etc/dropmesh/cluster-secret (mode 0600)"
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
	read_secret
	install_unit
	write_config
	start_agent
}

main "$@"
