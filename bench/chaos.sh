#!/usr/bin/env bash
# chaos.sh: run the full chaos suite (bench/chaos, TestChaosFull): 5 agents
# in Docker containers on a private network, several rounds of every fault
# (leader killed, node paused, partitions, rolling restarts, full disk)
# under a stream of deploys, then the checkers. Takes up to an hour and
# both cores; needs Docker. The bounded run is part of `scripts/dev.sh test`.
#
# Usage: bench/chaos.sh [GO TEST FLAGS...]
#   Extra arguments go to `go test` after the suite's own (so -timeout 90m
#   overrides the default). The suite reads:
#     DROPMESH_CHAOS_SEED=N     repeat the choices of an earlier run (printed at the start)
#     DROPMESH_CHAOS_ROUNDS=N   the number of rounds (default: FullConfig's)
#     DROPMESH_CHAOS_LOGS=DIR   keep every agent's whole log in DIR
#
# The output is also written to bench/out/chaos-<git describe>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
esac

mkdir -p bench/out
OUT="bench/out/chaos-$(git describe --always --dirty 2>/dev/null || echo unknown).txt"
echo "chaos: full run, output also in $OUT" >&2
export DROPMESH_CHAOS_FULL=1
status=0
go test -tags chaos -count=1 -timeout 60m -run TestChaosFull -v "$@" ./bench/chaos/... 2>&1 | tee "$OUT" || status=$?
exit "$status"
