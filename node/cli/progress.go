package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// progress shows one line per instance of a roll-out ("node-2  pulling").
// On a terminal the lines are rewritten in place; otherwise each change is
// printed once.
type progress struct {
	w   io.Writer
	tty bool

	order []string          // labels in display order
	last  map[string]string // label -> text last shown
	drawn int               // lines drawn on the terminal
}

func newProgress(w io.Writer, tty bool) *progress {
	return &progress{w: w, tty: tty, last: map[string]string{}}
}

// lines turns a deploy's progress into labelled texts.
func progressLines(p control.DeployProgress) (labels []string, texts map[string]string) {
	perNode := map[string]int{}
	for _, in := range p.Instances {
		perNode[in.Node]++
	}
	texts = map[string]string{}
	for _, in := range p.Instances {
		label := in.Node
		if perNode[in.Node] > 1 {
			label += "#" + slotOf(in.Instance)
		}
		labels = append(labels, label)
		texts[label] = instanceText(p, in)
	}
	return labels, texts
}

func slotOf(instanceID string) string {
	if i := strings.LastIndex(instanceID, "#"); i >= 0 {
		return instanceID[i+1:]
	}
	return instanceID
}

// instanceText says where an instance is in the roll-out.
func instanceText(p control.DeployProgress, in control.InstanceProgress) string {
	gen := p.Deploy.Generation
	switch {
	case in.Phase == raftfsm.PhaseFailed && in.Error != "":
		return "failed: " + in.Error
	case in.Desired != gen && !p.Done:
		return "waiting"
	case in.Desired != gen:
		return fmt.Sprintf("on generation %d", in.Generation)
	case in.Generation == gen && in.Phase == raftfsm.PhaseReady:
		return raftfsm.PhaseReady
	case in.Phase == "" || in.Phase == raftfsm.PhaseReady:
		return raftfsm.PhasePending
	}
	return in.Phase
}

// update shows the current state of the roll-out.
func (pr *progress) update(p control.DeployProgress) {
	labels, texts := progressLines(p)
	for _, l := range labels {
		if _, known := pr.last[l]; !known {
			pr.order = append(pr.order, l)
			pr.last[l] = ""
		}
	}
	width := 0
	for _, l := range pr.order {
		width = max(width, len(l))
	}
	if pr.tty {
		if pr.drawn > 0 {
			fmt.Fprintf(pr.w, "\x1b[%dA", pr.drawn)
		}
		for _, l := range pr.order {
			t, ok := texts[l]
			if !ok {
				t = "gone"
			}
			pr.last[l] = t
			fmt.Fprintf(pr.w, "\x1b[2K%-*s  %s\n", width, l, t)
		}
		pr.drawn = len(pr.order)
		return
	}
	for _, l := range labels {
		if t := texts[l]; t != pr.last[l] {
			pr.last[l] = t
			fmt.Fprintf(pr.w, "%-*s  %s\n", width, l, t)
		}
	}
}
