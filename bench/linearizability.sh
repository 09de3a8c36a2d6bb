#!/bin/sh
# The long run of the linearizability check (TestLinearizableReads in node/):
# six clients on random nodes of a 3-agent cluster while the leader is
# crashed, stopped and has its disk frozen, for DURATION (default 5m).
# The history of default and ?index= reads must be linearizable (porcupine).
set -eu
cd "$(dirname "$0")/.."
DURATION=${1:-5m}
exec go test -count=1 -timeout 30m -run '^TestLinearizableReads$' -v ./node/ -args -lin.duration="$DURATION"
