#!/usr/bin/env bash
# Routine commands for dropmesh developers. Every command the README and CI
# use lives here, so they cannot drift apart.
#
#   scripts/dev.sh up      install what running needs (nginx), build, start the local mesh with the sample service
#   scripts/dev.sh down    stop the local mesh and remove its containers
#   scripts/dev.sh test    install the test tools, then the whole test suite (what .ci/run runs)
#   scripts/dev.sh bench   every benchmark, one table (bench/run.sh)
#   scripts/dev.sh lint    gofmt and go vet
#   scripts/dev.sh deps    install the tools the tests need (nginx, chromium, wrk)
#   scripts/dev.sh generate  rewrite generated files (the host files install-agent.sh and join.sh carry)
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

# apt_install installs Debian packages, or says what to install by hand.
apt_install() {
  [ $# -gt 0 ] || return 0
  if command -v apt-get >/dev/null; then
    echo "dev.sh: installing $*" >&2
    local s; s=$(need_root)
    $s apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $s apt-get install -y -qq "$@" >/dev/null
  else
    echo "dev.sh: please install: $* (the tests that need them fail in CI and are skipped elsewhere)" >&2
  fi
}

# deps_run is what running the mesh needs: Go, Docker and nginx (the edge;
# without it the built-in Go proxy serves).
need_go() {
  command -v go >/dev/null || { echo "dev.sh: Go is not installed (https://go.dev/dl/)" >&2; exit 1; }
}

deps_run() {
  need_go
  command -v docker >/dev/null || { echo "dev.sh: Docker is not installed (https://docs.docker.com/engine/install/)" >&2; exit 1; }
  docker info >/dev/null 2>&1 || { echo "dev.sh: the Docker daemon is not reachable; start it (systemctl start docker)" >&2; exit 1; }
  if ! [ -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null; then
    apt_install nginx-light
  fi
  # nginx is started by the agents themselves, never as a system service.
  if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
    $(need_root) systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
}

# deps_test adds what only the tests need: Chromium (the UI tests) and wrk
# (the edge benchmarks). doctl, which one cloudops test drives against the
# fake cloud when it is on PATH, is neither a Debian package nor served by
# the Go module proxy these machines reach (403 on 2026-12-04), so nothing
# installs it; TestWhatDoctlReads makes doctl's calls with godo instead.
deps_test() {
  deps_run
  local missing=()
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
  command -v wrk >/dev/null || missing+=(wrk)
  apt_install "${missing[@]}"
}

# version is what every binary built here reports (`dropmesh version`, the
# sample app's answer).
version() {
  git describe --always --dirty 2>/dev/null || echo dev
}

build() {
  mkdir -p bin
  CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$(version)" -o "$BIN" .
}

# elapsed prints how long the command took since it started.
SECONDS=0
elapsed() {
  echo "dev.sh $1: done in ${SECONDS}s" >&2
}

case "${1:-}" in
  deps) deps_test ;;
  build) build ;;
  up)
    # The build (mostly CPU, its modules downloaded as it goes) runs while
    # deps_run installs nginx (mostly network): on a fresh machine the two
    # overlap instead of adding up.
    need_go
    build &
    building=$!
    trap 'kill "$building" 2>/dev/null || true' EXIT
    deps_run
    wait "$building" || { echo "dev.sh: the build failed" >&2; exit 1; }
    trap - EXIT
    "$BIN" local up --sample "${@:2}"
    elapsed up
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
    deps_test
    PATH="$(go env GOPATH)/bin:$PATH"
    export PATH
    # Binaries the tests build carry this version too (runtime.BuildStaticBinary).
    DROPMESH_VERSION="$(version)"
    export DROPMESH_VERSION
    "$0" lint
    build
    # Packages with concurrency run under the race detector.
    go test -race -count=1 -timeout 15m ./raftfsm/... ./mesh/... ./node/... ./cloudops/... ./ui/... ./scripts/...
    # The chaos checkers and the bench table tool have their own tests (no tag).
    go test -count=1 -timeout 5m ./bench/...
    # The bounded chaos suite: agents in containers on private Docker networks.
    go test -tags chaos -count=1 -timeout 15m -run 'TestChaosBounded' ./bench/chaos/...
    elapsed test
    ;;
  bench) bench/run.sh "${@:2}" ;;
  generate) go generate ./scripts/... ;;
  *)
    sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
