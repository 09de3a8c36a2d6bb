#!/usr/bin/env bash
# Routine commands for dropmesh developers. Every command the README and CI
# use lives here, so they cannot drift apart.
#
#   scripts/dev.sh up      install what is missing, build, start the local mesh with the sample service
#   scripts/dev.sh down    stop the local mesh and remove its containers
#   scripts/dev.sh test    the whole test suite (what .ci/run runs)
#   scripts/dev.sh bench   every benchmark, one table (bench/run.sh)
#   scripts/dev.sh lint    gofmt and go vet
#   scripts/dev.sh deps    install the system packages the tests need (nginx, chromium)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=bin/dropmesh
# The project's own code. Lint and tests name it explicitly, so a file that a
# CI runner or an editor drops into the checkout (a cache-warming package,
# say) is never judged as ours.
SRC=(main.go node mesh raftfsm cloudops ui scripts bench)
PKGS=(. ./node/... ./mesh/... ./raftfsm/... ./cloudops/... ./ui/... ./scripts/... ./bench/...)

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null && echo sudo
  fi
}

deps() {
  local missing=()
  command -v go >/dev/null || { echo "dev.sh: Go is not installed (https://go.dev/dl/)" >&2; exit 1; }
  command -v docker >/dev/null || { echo "dev.sh: Docker is not installed (https://docs.docker.com/engine/install/)" >&2; exit 1; }
  docker info >/dev/null 2>&1 || { echo "dev.sh: the Docker daemon is not reachable; start it (systemctl start docker)" >&2; exit 1; }
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx-light)
  if [ "${DROPMESH_SKIP_BROWSER:-}" = "" ]; then
    command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null; then
      echo "dev.sh: installing ${missing[*]}" >&2
      local s; s=$(need_root)
      $s apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $s apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "dev.sh: please install: ${missing[*]} (the tests that need them are skipped otherwise)" >&2
    fi
  fi
  # nginx is started by the agents themselves, never as a system service.
  if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
    $(need_root) systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
}

build() {
  mkdir -p bin
  CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" -o "$BIN" .
}

case "${1:-}" in
  deps) deps ;;
  build) build ;;
  up)
    deps
    build
    "$BIN" local up --sample "${@:2}"
    ;;
  down)
    [ -x "$BIN" ] || build
    "$BIN" local down "${@:2}"
    ;;
  lint)
    unformatted=$(gofmt -l "${SRC[@]}")
    [ -z "$unformatted" ] || { echo "gofmt: files not formatted:" $unformatted >&2; exit 1; }
    go vet "${PKGS[@]}"
    go vet -tags chaos ./bench/...
    ;;
  test)
    deps
    "$0" lint
    build
    # Packages with concurrency run under the race detector.
    go test -race -count=1 -timeout 15m ./raftfsm/... ./mesh/... ./node/... ./cloudops/... ./ui/... ./scripts/...
    # The chaos checkers and the bench table tool have their own tests (no tag).
    go test -count=1 -timeout 5m ./bench/...
    # The bounded chaos suite: agents in containers on private Docker networks.
    go test -tags chaos -count=1 -timeout 15m -run 'TestChaosBounded' ./bench/chaos/...
    ;;
  bench) bench/run.sh "${@:2}" ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
