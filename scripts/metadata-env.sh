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
