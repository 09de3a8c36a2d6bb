package bootstrap

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// progress prints the bootstrap's steps for a person watching: one line per
// step, "what... ok (detail)" or "what... failed", sub-steps indented.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	indent string
	open   bool // a "what..." line waits for its outcome
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w}
}

// sub returns a printer for the sub-steps of a step, indented two more.
func (p *progress) sub() *progress {
	return &progress{w: lockedWriter{p}, indent: p.indent + "  "}
}

// step prints "what... ", runs fn, then "ok (detail)" or "failed".
func (p *progress) step(what string, fn func() (string, error)) error {
	p.mu.Lock()
	fmt.Fprintf(p.w, "%s%s... ", p.indent, what)
	p.open = true
	p.mu.Unlock()
	detail, err := fn()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.open {
		fmt.Fprintf(p.w, "%s%s: ", p.indent, what)
	}
	p.open = false
	if err != nil {
		fmt.Fprintln(p.w, "failed")
		return fmt.Errorf("%s: %w", what, err)
	}
	if detail == "" {
		fmt.Fprintln(p.w, "ok")
	} else {
		fmt.Fprintf(p.w, "ok (%s)\n", detail)
	}
	return nil
}

// line prints a line of its own (ending an open "what... " line first).
func (p *progress) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
	fmt.Fprintf(p.w, "%s%s\n", p.indent, strings.TrimRight(fmt.Sprintf(format, args...), "\n"))
}

// lockedWriter writes through a parent printer, ending its open line first,
// so sub-steps start on a line of their own.
type lockedWriter struct{ p *progress }

func (l lockedWriter) Write(b []byte) (int, error) {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	if l.p.open {
		fmt.Fprintln(l.p.w)
		l.p.open = false
	}
	return l.p.w.Write(b)
}
