package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// lockedWriter writes whole lines from several streams without mixing them.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) line(prefix, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	fmt.Fprint(l.w, prefix+text)
}

// logLine is one line of `dropmesh logs --json`: a JSON object per line.
type logLine struct {
	Instance  string `json:"instance"`
	Node      string `json:"node"`
	Container string `json:"container"`
	Line      string `json:"line"`
}

// jsonLine writes rec as one line of JSON.
func (l *lockedWriter) jsonLine(rec logLine) {
	data, err := json.Marshal(rec)
	if err != nil {
		return // a string-only struct always marshals
	}
	l.line("", string(data))
}

// copyLines copies r line by line to emit (without the newline).
func copyLines(r io.Reader, emit func(line string)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			emit(strings.TrimSuffix(line, "\n"))
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// logTarget is one container of a service.
type logTarget struct {
	label, node, container string
}

func (e *env) logsCmd() *cobra.Command {
	var (
		follow  bool
		since   string
		tail    int
		jsonOut bool
	)
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print (or follow) the logs of every instance of a service, each line after its node",
		Args:  args(cobra.ExactArgs(1)),
	}
	cn := e.connFlags(cmd)
	cmd.ValidArgsFunction = cn.completeServices
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().StringVar(&since, "since", "", "only lines since this time (RFC 3339, unix seconds, or a duration ago such as 10m)")
	cmd.Flags().IntVar(&tail, "tail", 0, "only the last N lines of each instance")
	cmd.Flags().BoolVar(&jsonOut, "json", false, `print one JSON object per line: {"instance","node","container","line"}`)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		name := a[0]
		if _, err := raftfsm.ParseServiceName(name); err != nil {
			return &UsageError{Err: err}
		}
		if since != "" {
			if _, err := control.ParseSince(since, e.now()); err != nil {
				return usagef("--since %v", err)
			}
		}
		if tail < 0 {
			return usagef("--tail must not be negative")
		}
		c, err := cn.client()
		if err != nil {
			return err
		}
		ctx, stop := e.signals(cmd.Context())
		defer stop()
		detail, err := c.Service(ctx, name)
		if err != nil {
			return err
		}
		perNode := map[string]int{}
		for _, in := range detail.Instances {
			perNode[in.Node]++
		}
		var targets []logTarget
		width := 0
		for _, in := range detail.Instances {
			label := in.Node
			if perNode[in.Node] > 1 {
				label += "#" + strconv.Itoa(in.Slot)
			}
			if in.Container == "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: no container yet\n", label)
				continue
			}
			targets = append(targets, logTarget{label: label, node: in.Node, container: in.Container})
			width = max(width, len(label))
		}
		if len(targets) == 0 {
			return fmt.Errorf("%s has no container running yet", name)
		}
		out := &lockedWriter{w: cmd.OutOrStdout()}
		q := apiclient.LogsQuery{Since: since, Tail: tail, Follow: follow}
		errs := make([]error, len(targets))
		run := func(i int) {
			t := targets[i]
			rc, err := c.ContainerLogs(ctx, t.container, q)
			if err == nil {
				prefix := fmt.Sprintf("%-*s | ", width, t.label)
				err = copyLines(rc, func(line string) {
					if jsonOut {
						out.jsonLine(logLine{Instance: t.label, Node: t.node, Container: t.container, Line: line})
					} else {
						out.line(prefix, line)
					}
				})
				rc.Close()
			}
			if err != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("%s (%s): %w", t.label, t.container, err)
				fmt.Fprintf(cmd.ErrOrStderr(), "dropmesh: %v\n", errs[i])
			}
		}
		if follow {
			var wg sync.WaitGroup
			for i := range targets {
				wg.Go(func() { run(i) })
			}
			wg.Wait()
		} else {
			for i := range targets {
				run(i)
			}
		}
		failed := 0
		for _, err := range errs {
			if err != nil {
				failed++
			}
		}
		if failed == len(targets) {
			return fmt.Errorf("no log of %s could be read", name)
		}
		return nil
	}
	return cmd
}

func (e *env) healthCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "health NAME",
		Short: "Show the health of every instance of a service, with its recent history",
		Args:  args(cobra.ExactArgs(1)),
	}
	cn := e.connFlags(cmd)
	cmd.ValidArgsFunction = cn.completeServices
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if _, err := raftfsm.ParseServiceName(a[0]); err != nil {
			return &UsageError{Err: err}
		}
		c, err := cn.client()
		if err != nil {
			return err
		}
		h, err := c.ServiceHealth(cmd.Context(), a[0])
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, h)
		}
		t := newTable(out, "NODE", "CONTAINER", "STATUS", "RESTARTS", "REASON", "RECENT")
		for _, in := range h.Instances {
			t.row(in.Node, in.Container, in.Status, strconv.Itoa(in.Restarts), in.Reason, historyText(in.History, 4))
		}
		return t.flush()
	}
	return cmd
}

// historyText renders the last n health segments, oldest first: "healthy×12 degraded×2".
func historyText(h []raftfsm.Segment, n int) string {
	h = h[max(0, len(h)-n):]
	parts := make([]string, len(h))
	for i, s := range h {
		parts[i] = fmt.Sprintf("%s×%d", s.Status, s.Count)
	}
	return strings.Join(parts, " ")
}

func (e *env) eventsCmd() *cobra.Command {
	var (
		jsonOut       bool
		follow        bool
		since         uint64
		limit         int
		service, kind string
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the cluster's events (deploys, healing, nodes, DNS); -f follows them",
		Args:  args(cobra.NoArgs),
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON (with -f: one event per line)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	cmd.Flags().Uint64Var(&since, "since", 0, "only events after this sequence number")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many events (the newest, or the first after --since)")
	cmd.Flags().StringVar(&service, "service", "", "only this service")
	cmd.Flags().StringVar(&kind, "kind", "", "only kinds with this prefix, such as deploy. or heal.")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if limit < 1 || limit > control.MaxEventsPage {
			return usagef("--limit must be from 1 to %d", control.MaxEventsPage)
		}
		if service != "" {
			if _, err := raftfsm.ParseServiceName(service); err != nil {
				return &UsageError{Err: err}
			}
		}
		c, err := cn.client()
		if err != nil {
			return err
		}
		ctx, stop := e.signals(cmd.Context())
		defer stop()
		names, err := workspaceNames(ctx, c)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		var meta apiclient.Meta
		evs, err := c.Events(ctx, apiclient.EventQuery{Since: since, Limit: limit, Service: service, Kind: kind}, apiclient.StoreMeta(&meta))
		if err != nil {
			return err
		}
		if !follow {
			if jsonOut {
				return printJSON(out, evs)
			}
			for _, ev := range evs {
				printEvent(out, names, ev)
			}
			return nil
		}
		last := since
		show := func(evs []raftfsm.Event) error {
			for _, ev := range evs {
				if jsonOut {
					b, err := json.Marshal(ev)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "%s\n", b)
				} else {
					printEvent(out, names, ev)
				}
				last = max(last, ev.Seq)
			}
			return nil
		}
		if err := show(evs); err != nil {
			return err
		}
		for {
			evs, err := c.Events(ctx, apiclient.EventQuery{Since: last, Limit: control.MaxEventsPage, Service: service, Kind: kind},
				apiclient.WaitIndex(meta.Index, 5*time.Minute), apiclient.StoreMeta(&meta))
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
			if err := show(evs); err != nil {
				return err
			}
		}
	}
	return cmd
}

func printEvent(w io.Writer, names map[string]string, ev raftfsm.Event) {
	subject := ev.Node
	if ev.Service != "" {
		subject = displayName(names, ev.Service)
	}
	if subject == "" {
		subject = "-"
	}
	fmt.Fprintf(w, "%s  %-5s  %-16s  %-20s  %s\n", ev.At.Local().Format("2006-01-02 15:04:05"), ev.Severity, ev.Kind, subject, ev.Message)
}
