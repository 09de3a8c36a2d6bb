package chaos

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
)

// OpKind is what a client operation asked for.
type OpKind string

// Operation kinds of the workload.
const (
	OpDeploy   OpKind = "deploy"
	OpUndeploy OpKind = "undeploy"
	// OpPut sets a key (a registry credential) to Op.Value; OpDelete
	// removes it; OpRead reads every key at once (Op.Read).
	OpPut    OpKind = "put"
	OpDelete OpKind = "delete"
	OpRead   OpKind = "read"
)

// Outcome is what a client learnt about its operation.
type Outcome string

// Outcomes: ok is a 2xx answer; failed is an answer that, by the API's
// contract, says nothing changed (a 4xx, a 503 not_leader, no_leader or
// unavailable, a refused connection); unknown is everything else (a
// timeout, a reset, a 500 or 504), after which the write may or may not have
// happened.
const (
	OutcomeOK      Outcome = "ok"
	OutcomeFailed  Outcome = "failed"
	OutcomeUnknown Outcome = "unknown"
)

// Op is one client operation of the record.
type Op struct {
	ID      int
	Worker  int
	Kind    OpKind
	Service string // project/env/service
	// Node is the agent the request was sent to.
	Node       string
	Start, End time.Time
	Outcome    Outcome
	// Generation is the generation an acknowledged deploy returned.
	Generation int64
	// Value is the value a put writes (known before it is sent).
	Value int64
	// Read is what an answered read saw: each key present, with its value.
	Read map[string]int64
	// Code is the API error code of a refused operation ("not_found", ...).
	Code string
	Err  string
}

// Sample is one node's answer to GET /v1/cluster.
type Sample struct {
	At     time.Time
	Node   string
	Leader string
	Term   uint64
	Err    string
}

// FaultEvent marks a fault being injected or healed.
type FaultEvent struct {
	At     time.Time
	Fault  string
	Target string
	Phase  string // inject | heal | note
	Note   string
}

// History is the record of a run; every method is safe for concurrent use.
type History struct {
	start time.Time

	mu      sync.Mutex
	ops     []Op
	samples []Sample
	faults  []FaultEvent
}

// NewHistory starts an empty record; times print relative to now.
func NewHistory() *History { return &History{start: time.Now()} }

// Begin records an operation about to be sent and returns its id.
func (h *History) Begin(worker int, kind OpKind, service, node string) int {
	return h.BeginValue(worker, kind, service, node, 0)
}

// BeginValue is Begin for a put of value.
func (h *History) BeginValue(worker int, kind OpKind, service, node string, value int64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := len(h.ops)
	h.ops = append(h.ops, Op{ID: id, Worker: worker, Kind: kind, Service: service, Node: node, Start: time.Now(), Value: value})
	return id
}

// FinishRead records the outcome of read id and, when answered, what it saw.
func (h *History) FinishRead(id int, err error, seen map[string]int64) Outcome {
	out := h.Finish(id, err, 0)
	if err == nil {
		h.mu.Lock()
		h.ops[id].Read = seen
		h.mu.Unlock()
	}
	return out
}

// Finish records the outcome of operation id from the error the client
// returned (nil: acknowledged) and, for a deploy, the generation.
func (h *History) Finish(id int, err error, generation int64) Outcome {
	out, code := Classify(err)
	h.mu.Lock()
	defer h.mu.Unlock()
	op := &h.ops[id]
	op.End, op.Outcome, op.Code = time.Now(), out, code
	if err != nil {
		op.Err = err.Error()
	} else {
		op.Generation = generation
	}
	return out
}

// AddSample records one node's view of the leader and term.
func (h *History) AddSample(s Sample) {
	h.mu.Lock()
	h.samples = append(h.samples, s)
	h.mu.Unlock()
}

// AddFault records a fault event.
func (h *History) AddFault(fault, target, phase, note string) {
	h.mu.Lock()
	h.faults = append(h.faults, FaultEvent{At: time.Now(), Fault: fault, Target: target, Phase: phase, Note: note})
	h.mu.Unlock()
}

// Ops returns a copy of the operations, in the order they began.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// Samples returns a copy of the samples.
func (h *History) Samples() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.samples)
}

// Faults returns a copy of the fault events.
func (h *History) Faults() []FaultEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.faults)
}

// Since formats t relative to the start of the record ("+12.345s").
func (h *History) Since(t time.Time) string {
	if t.IsZero() {
		return "        -"
	}
	return fmt.Sprintf("%+9.3fs", t.Sub(h.start).Seconds())
}

// FormatOp is one line of the record for an operation.
func (h *History) FormatOp(op Op) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s..%s op#%d w%d %-8s %-16s via %-14s %-7s", h.Since(op.Start), h.Since(op.End), op.ID, op.Worker,
		op.Kind, op.Service, op.Node, op.Outcome)
	switch {
	case op.Outcome == OutcomeOK && op.Kind == OpDeploy:
		fmt.Fprintf(&b, " gen=%d", op.Generation)
	case op.Kind == OpPut:
		fmt.Fprintf(&b, " value=%d", op.Value)
	case op.Outcome == OutcomeOK && op.Kind == OpRead:
		fmt.Fprintf(&b, " saw %d keys", len(op.Read))
	}
	if op.Err != "" {
		fmt.Fprintf(&b, " (%s)", trim(op.Err, 160))
	}
	return b.String()
}

// FormatSample is one line of the record for a sample.
func (h *History) FormatSample(s Sample) string {
	if s.Err != "" {
		return fmt.Sprintf("%s %-14s error: %s", h.Since(s.At), s.Node, trim(s.Err, 120))
	}
	return fmt.Sprintf("%s %-14s term=%d leader=%s", h.Since(s.At), s.Node, s.Term, s.Leader)
}

// FormatFault is one line of the record for a fault event.
func (h *History) FormatFault(f FaultEvent) string {
	line := fmt.Sprintf("%s %-6s %s %s", h.Since(f.At), f.Phase, f.Fault, f.Target)
	if f.Note != "" {
		line += ": " + f.Note
	}
	return line
}

// FaultLines formats every fault event, for context under a violation.
func (h *History) FaultLines() []string {
	var out []string
	for _, f := range h.Faults() {
		out = append(out, h.FormatFault(f))
	}
	return out
}

func trim(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Classify turns a client error into an outcome and the API error code.
func Classify(err error) (Outcome, string) {
	if err == nil {
		return OutcomeOK, ""
	}
	var apiErr *apiclient.APIError
	if errors.As(err, &apiErr) {
		// The API's contract (node/control.Retryable, apiclient's retries):
		// a 4xx and a retryable 503 (not_leader, no_leader, unavailable)
		// changed nothing. The checks hold the cluster to it.
		if (apiErr.Status >= 400 && apiErr.Status < 500) || control.Retryable(apiErr.Code) {
			return OutcomeFailed, apiErr.Code
		}
		return OutcomeUnknown, apiErr.Code
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return OutcomeFailed, "" // the request never left
	}
	return OutcomeUnknown, ""
}
