#!/usr/bin/env bash
# build-image.sh: build the dropmesh agent image without pulling any image.
#
# The binary is built here (static, CGO_ENABLED=0) or taken from --binary,
# then copied with this machine's CA certificates into an image FROM scratch:
# the Dockerfile's runtime-prebuilt target, in a temporary context. Works with
# Docker's legacy builder and with BuildKit, and with no registry at all.
#
# Usage: scripts/build-image.sh [--tag IMAGE] [--version V] [--binary PATH]
#   --tag IMAGE      the image's tag (default: dropmesh:VERSION)
#   --version V      the version compiled in (default: git describe, else dev)
#   --binary PATH    a static linux binary to use instead of building one
#   --ca-certs FILE  the CA bundle (default /etc/ssl/certs/ca-certificates.crt)
#
# The last line of the output is the image's tag.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO="$PWD"

TAG=""
VERSION=""
BINARY=""
CA_CERTS=/etc/ssl/certs/ca-certificates.crt

die() {
	printf 'build-image: error: %s\n' "$*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case "$1" in
	--tag) TAG="${2:?--tag needs a value}"; shift 2 ;;
	--version) VERSION="${2:?--version needs a value}"; shift 2 ;;
	--binary) BINARY="${2:?--binary needs a path}"; shift 2 ;;
	--ca-certs) CA_CERTS="${2:?--ca-certs needs a path}"; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done

if [ -z "$VERSION" ]; then
	VERSION="$(git describe --always --dirty 2>/dev/null || echo dev)"
fi
[[ "$VERSION" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$ ]] || die "--version $VERSION: use letters, digits, '.', '_', '+' and '-'"
if [ -z "$TAG" ]; then
	TAG="dropmesh:${VERSION//+/-}"
fi
[ -r "$CA_CERTS" ] || die "no CA bundle at $CA_CERTS (install ca-certificates or give --ca-certs)"
command -v docker >/dev/null 2>&1 || die "docker is not installed"

ctx="$(mktemp -d "${TMPDIR:-/tmp}/dropmesh-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT

if [ -n "$BINARY" ]; then
	[ -f "$BINARY" ] || die "--binary $BINARY: no such file"
	cp "$BINARY" "$ctx/dropmesh"
else
	echo "build-image: building dropmesh $VERSION (static)" >&2
	CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$ctx/dropmesh" .
fi
chmod 0755 "$ctx/dropmesh"
cp "$CA_CERTS" "$ctx/ca-certificates.crt"
chmod 0644 "$ctx/ca-certificates.crt"
mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/var/lib/dropmesh"
chmod 1777 "$ctx/rootfs/tmp"
chmod 0700 "$ctx/rootfs/var/lib/dropmesh"
cp "$REPO/Dockerfile" "$ctx/Dockerfile"

# Without the buildx plugin the Docker CLI can only use the legacy builder;
# runtime-prebuilt is the Dockerfile's first stage, so it builds nothing else.
if ! docker buildx version >/dev/null 2>&1; then
	export DOCKER_BUILDKIT=0
fi
echo "build-image: building image $TAG (no pull)" >&2
docker build --quiet --target runtime-prebuilt --build-arg "VERSION=$VERSION" -t "$TAG" "$ctx" >&2
echo "$TAG"
