package contracttest

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"testing"
	"time"
)

// Main runs m, then checks what rec recorded against the specs in dir (the
// cloudops/testdata directory) and writes the report to stderr. It returns
// the exit code for os.Exit: the tests' own if they failed, 1 on a
// violation outside the allow-list. Use it from TestMain:
//
//	var contract contracttest.Recorder
//	func TestMain(m *testing.M) { os.Exit(contracttest.Main(m, &contract, "../testdata")) }
func Main(m *testing.M, rec *Recorder, dir string) int {
	code := m.Run()
	if code != 0 {
		return code
	}
	start := time.Now()
	c, err := Load(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "contract:", err)
		return 1
	}
	rep := c.Check(context.Background(), rec.Exchanges())
	Print(os.Stderr, rep, testing.Verbose())
	fmt.Fprintf(os.Stderr, "contract: loading the specs and checking took %v\n", time.Since(start).Round(time.Millisecond))
	if len(rep.Failed()) > 0 {
		return 1
	}
	return 0
}

// Print writes a report: always the violations outside the allow-list (with
// an example each) and a summary line; with verbose also the answers
// checked per operation and the allowed violations.
func Print(w io.Writer, rep Report, verbose bool) {
	failed := rep.Failed()
	for _, v := range failed {
		ex := v.Example
		fmt.Fprintf(w, "contract violation (%d answers): %s\n    example: %s %s?%s -> %d %.400s\n", v.Count, v, ex.Method, ex.Path, ex.RawQuery, ex.Status, ex.Body)
	}
	if verbose {
		ops := make([]string, 0, len(rep.Operations))
		for op := range rep.Operations {
			ops = append(ops, op)
		}
		sort.Strings(ops)
		for _, op := range ops {
			fmt.Fprintf(w, "contract: checked %4d x %s\n", rep.Operations[op], op)
		}
		for _, v := range rep.Violations {
			if v.Allowed != nil {
				fmt.Fprintf(w, "contract: allowed (%d answers): %s\n", v.Count, v)
			}
		}
		for _, a := range rep.Unused {
			fmt.Fprintf(w, "contract: allow-list entry not needed by this run: %s %s %q\n", a.Provider, a.Operation, a.Match)
		}
	}
	fmt.Fprintf(w, "contract: %d answers checked against the providers' OpenAPI specs (%d skipped), %d distinct violations, %d outside the allow-list\n",
		rep.Exchanges, rep.Skipped, len(rep.Violations), len(failed))
}
