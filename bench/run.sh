#!/usr/bin/env bash
# run.sh: run every benchmark of the project and print one table.
#
# Usage: bench/run.sh [-quick] [-list] [FILTER]
#   -quick   run each benchmark once (-benchtime=1x): a smoke test that
#            every benchmark still works, not figures to compare
#   -list    print the go test runs it would make, and run nothing
#   FILTER   an extended regexp (grep -E) matched against DIR/BenchmarkName,
#            e.g. raftfsm, 'Commit', '^node/Benchmark', 'Docker|Deploy'
#
# Every benchmark is found by its source (func BenchmarkX in a _test.go
# file) and run with the -benchtime set below for it, one `go test` per
# package and setting, one after the other (never two packages at once:
# the figures would share the CPU). The raw output goes to
# bench/out/raw-<git describe>[-quick|-filtered].txt (compare two with
# `go run ./bench/table OLD NEW`, or benchstat); the table to stdout.
# Exits non-zero when a benchmark failed or has no result.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=""
LIST=""
FILTER=""
while [ $# -gt 0 ]; do
	case "$1" in
	-quick | --quick) QUICK=1; shift ;;
	-list | --list) LIST=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	*)
		[ -z "$FILTER" ] || { echo "run.sh: one filter only" >&2; exit 2; }
		FILTER="$1"; shift ;;
	esac
done

# settings prints the -benchtime of a benchmark (DIR/BenchmarkName) and
# "mem" when -benchmem is worth reading for it. Benchmarks that take
# milliseconds to seconds per operation (clusters, Docker) run a fixed
# count, enough for a p50 and a max; the rest run for a fixed time. The
# whole run is meant to take about 10 minutes on 2 cores.
settings() {
	case "$1" in
	raftfsm/BenchmarkCommit) echo "2000x" ;;
	raftfsm/BenchmarkCommitConcurrent) echo "20000x" ;;
	raftfsm/BenchmarkFailover) echo "20x" ;;
	raftfsm/BenchmarkHealthHistoryMemory) echo "1x" ;;
	mesh/BenchmarkFailureDetection) echo "10x" ;;
	mesh/BenchmarkMetaConvergence) echo "10x" ;;
	mesh/BenchmarkStateRead) echo "200x mem" ;;
	node/BenchmarkFailover) echo "10x" ;;
	node/BenchmarkDeployLatency) echo "10x" ;;
	node/BenchmarkReads) echo "2000x" ;;
	node/runtime/BenchmarkRawDockerRun) echo "10x" ;;
	node/bootstrap/BenchmarkSSHUpload) echo "1s" ;;
	node/edge/BenchmarkNginxApply | node/edge/BenchmarkProxyApply) echo "1s" ;;
	node/edge/BenchmarkNginxRequest | node/edge/BenchmarkProxyRequest) echo "1s" ;;
	node/edge/BenchmarkEdgeOverhead) echo "1x" ;;
	*) echo "1s mem" ;;
	esac
}

# Every benchmark: "DIR BenchmarkName", in path order.
mapfile -t ALL < <(grep -rn --include='*_test.go' --exclude-dir=.git --exclude-dir=testdata \
	--exclude-dir=out --exclude-dir=.dropmesh '^func Benchmark[A-Z0-9_a-z]*(' . |
	LC_ALL=C sort -t: -k1,1 -k2,2n |
	sed -E 's#^\./##; s#^([^:]*)/[^/:]*:[0-9]+:func (Benchmark[A-Za-z0-9_]*)\(.*#\1 \2#; s#^([^/ ]*_test\.go):[0-9]+:func (Benchmark[A-Za-z0-9_]*)\(.*#. \2#' |
	LC_ALL=C sort -s -k1,1)
SELECTED=()
for b in "${ALL[@]}"; do
	if [ -z "$FILTER" ] || printf '%s/%s\n' "${b% *}" "${b#* }" | grep -Eq -- "$FILTER"; then
		SELECTED+=("$b")
	fi
done
if [ ${#SELECTED[@]} -eq 0 ]; then
	echo "run.sh: no benchmark matches '$FILTER'" >&2
	exit 2
fi

# Groups: one `go test` per package and setting, in order of first appearance.
declare -A NAMES=()
ORDER=()
for b in "${SELECTED[@]}"; do
	dir=${b% *} name=${b#* }
	st=$(settings "$dir/$name")
	if [ -n "$QUICK" ]; then
		case "$st" in
		*" mem") st="1x mem" ;;
		*) st=1x ;;
		esac
	fi
	key="$dir|$st"
	if [ -z "${NAMES[$key]+x}" ]; then
		ORDER+=("$key")
		NAMES[$key]=$name
	else
		NAMES[$key]+="|$name"
	fi
done

if [ -n "$LIST" ]; then
	for key in "${ORDER[@]}"; do
		st=${key#*|}
		printf '%-16s %-9s %s\n' "${key%|*}" "${st// /,}" "${NAMES[$key]//|/ }"
	done
	exit 0
fi

mkdir -p bench/out
suffix=""
[ -z "$QUICK" ] || suffix+="-quick"
[ -z "$FILTER" ] || suffix+="-filtered"
RAW="bench/out/raw-$(git describe --always --dirty 2>/dev/null || echo unknown)$suffix.txt"
EXPECT=$(mktemp)
TABLE=$(mktemp -d)
trap 'rm -rf "$EXPECT" "$TABLE"' EXIT
printf '%s\n' "${SELECTED[@]}" >"$EXPECT"
: >"$RAW"

go build -o "$TABLE/table" ./bench/table

echo "bench: ${#SELECTED[@]} benchmarks in ${#ORDER[@]} runs${QUICK:+ (-quick: once each)}; raw output in $RAW" >&2
failed=0
i=0
start=$SECONDS
for key in "${ORDER[@]}"; do
	i=$((i + 1))
	dir=${key%|*} st=${key#*|}
	benchtime=${st%% *}
	mem=""
	[[ " $st " != *" mem "* ]] || mem=-benchmem
	names=${NAMES[$key]}
	printf 'bench: [%d/%d] %s: %s (%s) ... ' "$i" "${#ORDER[@]}" "$dir" "${names//|/ }" "$benchtime" >&2
	t0=$SECONDS
	out="$TABLE/run.txt"
	if go test -run '^$' -bench "^($names)\$" -benchtime "$benchtime" $mem -count=1 -timeout 30m -v "./$dir" >"$out" 2>&1; then
		echo "$((SECONDS - t0))s" >&2
	else
		echo "FAILED after $((SECONDS - t0))s (why: in the table below and in $RAW)" >&2
		failed=1
	fi
	cat "$out" >>"$RAW"
done
echo "bench: done in $((SECONDS - start))s" >&2
echo

status=0
"$TABLE/table" -module "$(go list -m)" -expect "$EXPECT" "$RAW" || status=$?
[ "$failed" -eq 0 ] || status=1
exit "$status"
