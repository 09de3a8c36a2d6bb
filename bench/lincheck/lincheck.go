// Package lincheck checks that a history of operations on one register
// (writes of distinct values, reads) is linearizable, with porcupine. The
// linearizability test of the node package and the chaos suite record
// their clients' operations of one settings field and check them here.
package lincheck

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Op is one client operation on the register.
type Op struct {
	Client int
	// Write: a write of Value; otherwise a read that returned Value.
	Write bool
	Value string
	// Call and Return bound the operation; Unknown marks a write whose
	// outcome the client never learnt (it may take effect any time after
	// Call, or never).
	Call, Return time.Time
	Unknown      bool
}

// History collects operations from concurrent clients.
type History struct {
	mu  sync.Mutex
	ops []Op
}

// Add records one operation.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns the operations recorded so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

type input struct {
	write bool
	value string
}

// model is a register that starts at initial.
func model(initial string) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return initial },
		Step: func(state, in, out any) (bool, any) {
			i := in.(input)
			if i.write {
				return true, i.value
			}
			return out.(string) == state.(string), state
		},
		DescribeOperation: func(in, out any) string {
			i := in.(input)
			if i.write {
				return fmt.Sprintf("write(%s)", i.value)
			}
			return fmt.Sprintf("read() -> %v", out)
		},
	}
}

// Result is the checker's verdict.
type Result struct {
	// Verdict is porcupine's: ok, illegal or unknown (the check timed out).
	Verdict string
	Reads   int
	Writes  int
	// Visualization is an HTML file that shows a non-linearizable history
	// ("" when the history is linearizable or the file could not be made).
	Visualization string
}

// OK reports whether the history is linearizable.
func (r Result) OK() bool { return r.Verdict == string(porcupine.Ok) }

// Check checks ops against a register that held initial before the first
// of them, for at most timeout.
func Check(ops []Op, initial string, timeout time.Duration) Result {
	var (
		history []porcupine.Operation
		res     Result
	)
	var origin time.Time
	for _, op := range ops {
		if origin.IsZero() || op.Call.Before(origin) {
			origin = op.Call
		}
	}
	for _, op := range ops {
		ret := int64(op.Return.Sub(origin))
		if op.Unknown {
			ret = math.MaxInt64
		}
		p := porcupine.Operation{ClientId: op.Client, Input: input{write: op.Write, value: op.Value}, Call: int64(op.Call.Sub(origin)), Return: ret}
		if op.Write {
			res.Writes++
		} else {
			p.Output = op.Value
			res.Reads++
		}
		history = append(history, p)
	}
	m := model(initial)
	verdict, info := porcupine.CheckOperationsVerbose(m, history, timeout)
	res.Verdict = string(verdict)
	if verdict != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("dropmesh-linearizability-%d-%d.html", os.Getpid(), time.Now().UnixNano()))
		if err := porcupine.VisualizePath(m, info, path); err == nil {
			res.Visualization = path
		}
	}
	return res
}
