package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const module = "github.com/dropmesh/dropmesh"

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./bench/table -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func parseTestdata(t *testing.T, name string) *report {
	t.Helper()
	rep, err := parseFile(filepath.Join("testdata", name), module)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// testdata/raw.txt holds every shape of go test output run.sh meets: -v
// and plain, sub-benchmarks, a skip, a failed sub-benchmark whose logger
// kept talking after t.Fatal, a failure reported without -v, a panic, a
// build failure, and the root package.
func TestParse(t *testing.T) {
	rep := parseTestdata(t, "raw.txt")
	var names []string
	for _, r := range rep.results() {
		names = append(names, r.Pkg+" "+r.Name)
	}
	want := []string{
		"raftfsm BenchmarkFSMApply/services=1000", "raftfsm BenchmarkFSMApply/services=10000",
		"raftfsm BenchmarkCommit", "raftfsm BenchmarkCommitConcurrent",
		"mesh BenchmarkMetaConvergence/members=10", "mesh BenchmarkMetaConvergence/members=100",
		"node BenchmarkFailover", "node/api BenchmarkListServices", ". BenchmarkRoot",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Fatalf("results:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	first := rep.results()[0]
	if first.N != 70545 || len(first.Metrics) != 5 || first.Metrics[1] != (metric{Text: "60295", Value: 60295, Unit: "cmds/s"}) {
		t.Errorf("first result %+v", first)
	}
	outcomes := map[string]outcome{}
	for _, e := range rep.Entries {
		if e.Outcome != nil {
			outcomes[e.Pkg+" "+e.Name] = *e.Outcome
		}
	}
	for name, want := range map[string]outcome{
		"mesh BenchmarkMetaConvergence/members=50": {"FAIL", "timed out after 15s waiting for n9 to be alive everywhere (n0:alive n32:unknown)"},
		"node BenchmarkDeployLatency":              {"skip", "no Docker engine, skipping (needs Docker to start containers): docker daemon is not reachable"},
		"node/api BenchmarkForwardedWrite":         {"FAIL", "status 500"},
	} {
		if got := outcomes[name]; got != want {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
	for pkg, want := range map[string]string{
		"mesh":        "",
		"node/notify": "panic: runtime error: index out of range [3] with length 3",
		"ui":          "build failed: ui/pages_test.go:12:2: undefined: foo",
	} {
		if got, ok := rep.FailedPkgs[pkg]; !ok || got != want {
			t.Errorf("failed package %s: %q (%v), want %q", pkg, got, ok, want)
		}
	}
	if _, ok := rep.FailedPkgs["node"]; ok {
		t.Error("node passed")
	}
}

func TestTable(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-module", module, "-expect", "testdata/expect.txt", "testdata/raw.txt"}, &out, io.Discard)
	if !errors.Is(err, errIncomplete) {
		t.Errorf("err = %v, want errIncomplete: benchmarks failed", err)
	}
	golden(t, "table.golden", out.String())
}

func TestTableWithoutExpectListsEveryEntry(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-module", module, "testdata/new.txt"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	golden(t, "new.golden", out.String())
}

func TestDiff(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-module", module, "testdata/raw.txt", "testdata/new.txt"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	golden(t, "diff.golden", out.String())
}

func TestParseRefusesBrokenFigures(t *testing.T) {
	for _, line := range []string{
		"BenchmarkX-2   10   12 ns/op  7",
		"BenchmarkX-2   10   twelve ns/op",
	} {
		if _, err := parse(strings.NewReader(line+"\n"), module); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
}

func TestReadExpect(t *testing.T) {
	got, err := readExpect(strings.NewReader("./raftfsm BenchmarkCommit\n\n. BenchmarkRoot\n"))
	if err != nil || len(got) != 2 || got[0] != (key{"raftfsm", "BenchmarkCommit"}) || got[1] != (key{".", "BenchmarkRoot"}) {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := readExpect(strings.NewReader("raftfsm Commit\n")); err == nil {
		t.Error("a name without Benchmark was accepted")
	}
}

func TestUsage(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"a", "b", "c"}, &out, io.Discard); err == nil {
		t.Error("three files accepted")
	}
}
