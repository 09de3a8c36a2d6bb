// Command table turns the output of `go test -bench` (bench/run.sh's raw
// file, several packages in a row, with or without -v) into one table: a
// row per benchmark with its figures as go test printed them (ns/op or the
// benchmark's own metrics, B/op, allocs/op), and, given the list of the
// benchmarks that should have run, a row for each one without figures
// (skipped, failed, or never run). Given two raw files, it prints each
// figure of both side by side with the change: two commits compared on one
// machine without benchstat (which needs several runs for its statistics).
//
// Usage:
//
//	table [-module PATH] [-expect FILE] RAW.txt
//	table [-module PATH] OLD.txt NEW.txt
//
// -expect names one benchmark per line as "DIR BenchmarkName" (DIR relative
// to the module root, "." for the root package). With it, table exits with
// status 1 when an expected benchmark failed or has no result; a skipped
// one (no Docker, say) is shown with its reason and is not an error.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// metric is one figure of a result: the value as go test printed it and
// its unit.
type metric struct {
	Text  string
	Value float64
	Unit  string
}

// result is one line of benchmark figures.
type result struct {
	Pkg, Name string // Name without the -GOMAXPROCS suffix
	N         int64
	Metrics   []metric
}

// key names a benchmark in a package.
type key struct{ Pkg, Name string }

// outcome is why a benchmark has no figures.
type outcome struct {
	Status string // "skip" or "FAIL"
	Reason string
}

// entry is a result, or a benchmark reported as skipped or failed.
type entry struct {
	key
	Res     *result
	Outcome *outcome
}

// report is what one raw file says.
type report struct {
	// Entries are the results and outcomes in the order they came.
	Entries []entry
	// FailedPkgs are the packages whose run failed, with the first line
	// that says why when there is one (a panic, a build error).
	FailedPkgs map[string]string
}

var (
	resultLine  = regexp.MustCompile(`^(Benchmark\S*)\s+(\d+)(?:\s+(.*))?$`)
	outcomeLine = regexp.MustCompile(`^\s*--- (SKIP|FAIL): (Benchmark\S*)`)
	failPkgLine = regexp.MustCompile(`^FAIL\s+(\S+)(?:\s+\[(.*)\])?`)
	procsSuffix = regexp.MustCompile(`-\d+$`)
	nameLine    = regexp.MustCompile(`^\s*Benchmark\S*\s*$`)
	logLine     = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)
)

// shortPkg is an import path relative to module ("." for the module itself).
func shortPkg(path, module string) string {
	if module == "" {
		return path
	}
	if path == module {
		return "."
	}
	return strings.TrimPrefix(path, module+"/")
}

// parse reads go test output. Lines it does not know are ignored.
func parse(r io.Reader, module string) (*report, error) {
	rep := &report{FailedPkgs: map[string]string{}}
	var (
		pkg     string
		pending *outcome // a SKIP or FAIL whose reason may follow (go test without -v)
		lastLog string   // the last line a benchmark logged (with -v, logs come first)
		why     string   // the first panic or build error since the last package
		header  bool     // the line before was a build error's "# pkg" header
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if pending != nil {
			if m := logLine.FindStringSubmatch(line); m != nil {
				pending.Reason = clip(m[1])
				pending = nil
				continue
			}
			pending = nil
		}
		afterHeader := header
		header = false
		switch {
		case nameLine.MatchString(line):
			lastLog = ""
		case logLine.MatchString(line):
			// Log records a test's logger passes on (slog's text or JSON
			// forms) keep coming after a t.Fatal: they are not the reason.
			if msg := logLine.FindStringSubmatch(line)[1]; !strings.HasPrefix(msg, "time=") && !strings.HasPrefix(msg, "{") {
				lastLog = msg
			}
		case strings.HasPrefix(line, "pkg: "):
			pkg, why = shortPkg(strings.TrimSpace(strings.TrimPrefix(line, "pkg: ")), module), ""
		case strings.HasPrefix(line, "ok "):
			why = ""
		case resultLine.MatchString(line):
			m := resultLine.FindStringSubmatch(line)
			n, err := strconv.ParseInt(m[2], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %q: %w", line, err)
			}
			metrics, err := parseMetrics(m[3])
			if err != nil {
				return nil, fmt.Errorf("line %q: %w", line, err)
			}
			lastLog = ""
			r := &result{Pkg: pkg, Name: procsSuffix.ReplaceAllString(m[1], ""), N: n, Metrics: metrics}
			rep.Entries = append(rep.Entries, entry{key: key{r.Pkg, r.Name}, Res: r})
		case outcomeLine.MatchString(line):
			m := outcomeLine.FindStringSubmatch(line)
			o := &outcome{Status: map[string]string{"SKIP": "skip", "FAIL": "FAIL"}[m[1]], Reason: clip(lastLog)}
			rep.Entries = append(rep.Entries, entry{key: key{pkg, procsSuffix.ReplaceAllString(m[2], "")}, Outcome: o})
			if lastLog == "" {
				pending = o
			}
			lastLog = ""
		case failPkgLine.MatchString(line):
			m := failPkgLine.FindStringSubmatch(line)
			reason := why
			if m[2] != "" && why != "" {
				reason = m[2] + ": " + why
			} else if m[2] != "" {
				reason = m[2]
			}
			rep.FailedPkgs[shortPkg(m[1], module)] = reason
			why = ""
		case strings.HasPrefix(line, "# "):
			header = true
		case why == "" && (afterHeader || strings.HasPrefix(line, "panic: ")):
			why = strings.TrimSpace(line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return rep, nil
}

// clip shortens a reason to fit a table row.
func clip(s string) string {
	const n = 160
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// parseMetrics reads "value unit" pairs.
func parseMetrics(s string) ([]metric, error) {
	f := strings.Fields(s)
	if len(f)%2 != 0 {
		return nil, fmt.Errorf("odd number of fields in %q", s)
	}
	var out []metric
	for i := 0; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, fmt.Errorf("value %q: %w", f[i], err)
		}
		out = append(out, metric{Text: f[i], Value: v, Unit: f[i+1]})
	}
	return out, nil
}

// readExpect reads "DIR BenchmarkName" lines.
func readExpect(r io.Reader) ([]key, error) {
	var out []key
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 || !strings.HasPrefix(f[1], "Benchmark") {
			return nil, fmt.Errorf("expect line %q: want DIR BenchmarkName", sc.Text())
		}
		out = append(out, key{strings.TrimPrefix(f[0], "./"), f[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read expect: %w", err)
	}
	return out, nil
}

// results are a report's results, in order.
func (rep *report) results() []*result {
	var out []*result
	for _, e := range rep.Entries {
		if e.Res != nil {
			out = append(out, e.Res)
		}
	}
	return out
}

// topName is the top-level benchmark of a (sub-)benchmark name.
func topName(name string) string {
	top, _, _ := strings.Cut(name, "/")
	return top
}

// rows orders a report: the expected benchmarks in their order, each with
// its entries (sub-benchmarks in the order they ran), or a row that says
// why there is none; then the entries nobody expected.
func rows(rep *report, expect []key) []entry {
	var out []entry
	claimed := make([]bool, len(rep.Entries))
	for _, k := range expect {
		var mine []int
		for i, e := range rep.Entries {
			if !claimed[i] && e.Pkg == k.Pkg && topName(e.Name) == k.Name {
				claimed[i] = true
				mine = append(mine, i)
			}
		}
		if shown := visible(rep.Entries, mine); len(shown) > 0 {
			out = append(out, shown...)
			continue
		}
		o := outcome{Status: "missing", Reason: "no result in the output"}
		if why, failed := rep.FailedPkgs[k.Pkg]; failed {
			o = outcome{Status: "FAIL", Reason: "package failed"}
			if why != "" {
				o.Reason += ": " + why
			}
		}
		out = append(out, entry{key: k, Outcome: &o})
	}
	var rest []int
	for i := range rep.Entries {
		if !claimed[i] {
			rest = append(rest, i)
		}
	}
	return append(out, visible(rep.Entries, rest)...)
}

// visible are the entries at idx, less the outcomes that others say
// better: a parent's FAIL or SKIP when its sub-benchmarks have entries of
// their own, and an outcome of a benchmark that has figures.
func visible(entries []entry, idx []int) []entry {
	var out []entry
	for _, i := range idx {
		e := entries[i]
		redundant := false
		for _, j := range idx {
			o := entries[j]
			if e.Outcome != nil && j != i && o.Pkg == e.Pkg && (strings.HasPrefix(o.Name, e.Name+"/") || o.Name == e.Name && o.Res != nil) {
				redundant = true
			}
		}
		if !redundant {
			out = append(out, e)
		}
	}
	return out
}

// short drops the Benchmark prefix, as benchstat does.
func short(name string) string { return strings.TrimPrefix(name, "Benchmark") }

// printOne writes the table of one report and returns how many expected
// benchmarks failed or have no result.
func printOne(w io.Writer, rep *report, expect []key) (bad int, err error) {
	g := grid{right: func(col int) bool { return col == 2 || col >= 3 && col%2 == 1 }}
	g.add("package", "benchmark", "n", "figures")
	counts := map[string]int{}
	for _, e := range rows(rep, expect) {
		if e.Res == nil {
			counts[e.Outcome.Status]++
			if e.Outcome.Status != "skip" {
				bad++
			}
			g.note(strings.TrimSuffix(e.Outcome.Status+": "+e.Outcome.Reason, ": "), e.Pkg, short(e.Name), "-")
			continue
		}
		counts["ok"]++
		cells := []string{e.Pkg, short(e.Name), strconv.FormatInt(e.Res.N, 10)}
		for _, m := range e.Res.Metrics {
			cells = append(cells, m.Text, m.Unit)
		}
		g.add(cells...)
	}
	if err := g.write(w); err != nil {
		return 0, err
	}
	_, err = fmt.Fprintf(w, "\n%d results; %d skipped, %d failed, %d missing\n", counts["ok"], counts["skip"], counts["FAIL"], counts["missing"])
	return bad, err
}

// printDiff writes every figure of old and new side by side, with the
// change in percent.
func printDiff(w io.Writer, old, new *report) error {
	index := func(rep *report) map[key]*result {
		m := map[key]*result{}
		for _, r := range rep.results() {
			m[key{r.Pkg, r.Name}] = r
		}
		return m
	}
	oldIdx, newIdx := index(old), index(new)
	var order []key
	seen := map[key]bool{}
	for _, rep := range []*report{old, new} {
		for _, r := range rep.results() {
			if k := (key{r.Pkg, r.Name}); !seen[k] {
				seen[k] = true
				order = append(order, k)
			}
		}
	}
	g := grid{right: func(col int) bool { return col >= 3 }}
	g.add("package", "benchmark", "figure", "old", "new", "change")
	for _, k := range order {
		o, n := oldIdx[k], newIdx[k]
		var units []string
		for _, r := range []*result{o, n} {
			if r == nil {
				continue
			}
			for _, m := range r.Metrics {
				if !contains(units, m.Unit) {
					units = append(units, m.Unit)
				}
			}
		}
		pkg, name := k.Pkg, short(k.Name)
		for _, u := range units {
			om, nm := find(o, u), find(n, u)
			change := ""
			if om != nil && nm != nil && om.Value != 0 {
				change = fmt.Sprintf("%+.1f%%", (nm.Value-om.Value)/om.Value*100)
			}
			g.add(pkg, name, u, text(om), text(nm), change)
			pkg, name = "", "" // once per benchmark
		}
	}
	return g.write(w)
}

// grid lays rows of cells out in columns, each as wide as its widest
// cell, two spaces apart.
type grid struct {
	rows  [][]string
	notes []string // printed after a row's cells, outside the columns
	right func(col int) bool
}

func (g *grid) add(cells ...string) {
	g.rows = append(g.rows, cells)
	g.notes = append(g.notes, "")
}

// note adds a row whose last part is free text.
func (g *grid) note(text string, cells ...string) {
	g.add(cells...)
	g.notes[len(g.notes)-1] = text
}

func (g *grid) write(w io.Writer) error {
	var width []int
	for _, r := range g.rows {
		for i, c := range r {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	bw := bufio.NewWriter(w)
	for ri, r := range g.rows {
		var line strings.Builder
		for i, c := range r {
			if i > 0 {
				line.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if g.right != nil && g.right(i) {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		if g.notes[ri] != "" {
			line.WriteString("  " + g.notes[ri])
		}
		bw.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	return bw.Flush()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func find(r *result, unit string) *metric {
	if r == nil {
		return nil
	}
	for i, m := range r.Metrics {
		if m.Unit == unit {
			return &r.Metrics[i]
		}
	}
	return nil
}

func text(m *metric) string {
	if m == nil {
		return "-"
	}
	return m.Text
}

func parseFile(path, module string) (*report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rep, err := parse(f, module)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

// errIncomplete is returned when an expected benchmark failed or has no result.
var errIncomplete = errors.New("some benchmarks failed or have no result")

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	fs.SetOutput(stderr)
	module := fs.String("module", "", "the module path, trimmed from package paths")
	expectPath := fs.String("expect", "", `a file of "DIR BenchmarkName" lines: the benchmarks that should have results`)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: table [-module PATH] [-expect FILE] RAW.txt\n       table [-module PATH] OLD.txt NEW.txt")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 1:
		rep, err := parseFile(fs.Arg(0), *module)
		if err != nil {
			return err
		}
		var expect []key
		if *expectPath != "" {
			f, err := os.Open(*expectPath)
			if err != nil {
				return err
			}
			expect, err = readExpect(f)
			f.Close()
			if err != nil {
				return err
			}
		}
		bad, err := printOne(stdout, rep, expect)
		if err != nil {
			return err
		}
		if bad > 0 {
			return errIncomplete
		}
		return nil
	case 2:
		old, err := parseFile(fs.Arg(0), *module)
		if err != nil {
			return err
		}
		new, err := parseFile(fs.Arg(1), *module)
		if err != nil {
			return err
		}
		return printDiff(stdout, old, new)
	default:
		fs.Usage()
		return errors.New("want one raw file, or two to compare")
	}
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "table:", err)
		}
		os.Exit(1)
	}
}
