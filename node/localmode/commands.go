package localmode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// Command is `dropmesh local`: up, status, down, and the hidden supervise
// that up starts in the background.
func Command() *cobra.Command {
	root := &cobra.Command{Use: "local", Short: "Run a whole dropmesh mesh on this machine, with an embedded fake cloud"}
	var (
		dir            string
		nodes          int
		basePort       int
		sample         bool
		jsonOut        bool
		healthInterval time.Duration
		timeout        time.Duration
		ipPrefix       string
		acmeCA         string
	)
	root.PersistentFlags().StringVar(&dir, "dir", ".dropmesh", "directory of the local mesh (data, logs, env file)")

	up := &cobra.Command{
		Use:   "up",
		Short: "Start the local mesh in the background (or resume the one in --dir)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 || nodes > 20 {
				return fmt.Errorf("--nodes %d: want 1 to 20", nodes)
			}
			if basePort < 1024 || basePort > 65000 {
				return fmt.Errorf("--base-port %d: want 1024 to 65000", basePort)
			}
			if err := checkACME(acmeCA); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return Up(ctx, UpOptions{Dir: dir, Nodes: nodes, BasePort: basePort, IPPrefix: ipPrefix, Sample: sample, HealthInterval: healthInterval, Out: cmd.OutOrStdout(),
				ACME: acmeCA})
		},
	}
	up.Flags().IntVar(&nodes, "nodes", 3, "how many nodes (droplets) the mesh has")
	up.Flags().IntVar(&basePort, "base-port", 19000, "port of the fake cloud; edges and offsets count from it")
	up.Flags().BoolVar(&sample, "sample", false, "also deploy the sample service")
	up.Flags().StringVar(&acmeCA, "acme", "", "automatic HTTPS from a local CA: \"pebble\" runs Let's Encrypt's test CA in the supervisor (root in DIR/pebble-root.pem) and opens every edge's TLS port")
	up.Flags().DurationVar(&healthInterval, "health-interval", 60*time.Second, "HEALTH_CHECK_INTERVAL of the mesh (1s for demos and tests)")
	up.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the mesh to be ready")
	up.Flags().StringVar(&ipPrefix, "ip-prefix", "127.0.0.", "first three octets of the nodes' loopback addresses")
	_ = up.Flags().MarkHidden("ip-prefix")

	status := &cobra.Command{
		Use:   "status",
		Short: "Show the nodes of the local mesh",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := Status(cmd.Context(), dir)
			if err != nil {
				return err
			}
			if jsonOut {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"nodes": st.Nodes})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tDROPLET\tPID\tROLE\tAPI\tUI\tEDGE")
			for _, n := range st.Nodes {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", n.ID, n.DropletID, n.PID, n.Role, n.API, n.UI, n.Edge)
			}
			return tw.Flush()
		},
	}
	status.Flags().BoolVar(&jsonOut, "json", false, "print JSON")

	down := &cobra.Command{
		Use:   "down",
		Short: "Stop the local mesh and remove its containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Down(cmd.Context(), dir, cmd.OutOrStdout())
		},
	}

	supervise := &cobra.Command{
		Use:    "supervise",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			layout := DefaultLayout(basePort)
			if ipPrefix != "" {
				layout.IPPrefix = ipPrefix
			}
			if err := checkACME(acmeCA); err != nil {
				return err
			}
			return Supervise(ctx, Config{Dir: dir, Nodes: nodes, Layout: layout, Binary: bin, HealthInterval: healthInterval, Logger: logger, ACME: acmeCA})
		},
	}
	supervise.Flags().IntVar(&nodes, "nodes", 3, "")
	supervise.Flags().IntVar(&basePort, "base-port", 19000, "")
	supervise.Flags().DurationVar(&healthInterval, "health-interval", 60*time.Second, "")
	supervise.Flags().StringVar(&ipPrefix, "ip-prefix", "127.0.0.", "")
	supervise.Flags().StringVar(&acmeCA, "acme", "", "")

	root.AddCommand(up, status, down, supervise)
	return root
}

// supervisorPID returns the pid of the live supervisor of dir, or 0. The
// pid file may be stale (a crash, a reboot) and its pid reused by another
// process, so the pid counts only while that process runs `local supervise
// --dir DIR` for this very dir.
func supervisorPID(dir string) int {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(dir, PIDFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !isSupervisorOf(pid, dir) {
		return 0
	}
	return pid
}

// isSupervisorOf reports whether pid is alive and runs `dropmesh local
// supervise --dir dir` (as startSupervisor starts it).
func isSupervisorOf(pid int, dir string) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	args, err := processArgs(pid)
	if err != nil {
		return false
	}
	supervise, ofDir := false, false
	for i, a := range args {
		if a == "supervise" && i > 0 && args[i-1] == "local" {
			supervise = true
		}
		if (a == "--dir" && i+1 < len(args) && args[i+1] == dir) || a == "--dir="+dir {
			ofDir = true
		}
	}
	return supervise && ofDir
}

// isAgentOf reports whether pid is alive and runs the agent of node id of
// the mesh in dir: `dropmesh agent` with the data dir processBackend gives
// that node in its environment. A pid in a stale local.json may belong to
// anyone by now, even to another mesh's agent.
func isAgentOf(pid int, dir, id string) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	args, err := processArgs(pid)
	if err != nil || len(args) < 2 || !slices.Contains(args[1:], "agent") {
		return false
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	want := "DROPMESH_DATA_DIR=" + filepath.Join(dir, id)
	for _, kv := range strings.Split(string(env), "\x00") {
		if kv == want {
			return true
		}
	}
	return false
}

// processArgs returns a process's command line, from /proc where there is
// one, else from ps (macOS; arguments with spaces are split there, which
// only makes a match less likely).
func processArgs(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil {
		return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
	}
	if _, perr := os.Stat("/proc/self"); perr == nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	out, err := exec.Command("ps", "-o", "command=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return nil, fmt.Errorf("process %d: ps: %w", pid, err)
	}
	return strings.Fields(string(out)), nil
}

// startSupervisor starts `dropmesh local supervise` detached from this
// terminal, logging to DIR/supervisor.log.
//
// The returned channel is closed when the supervisor exits: Up watches its
// own child through it, not through /proc/PID/cmdline, which reads empty
// for a moment right after exec (the kernel sets a new program's argument
// area after the exec has already been reported to the parent): that
// window made `local up` fail now and then with "the supervisor stopped
// before the mesh was up" and an empty supervisor log.
func startSupervisor(o UpOptions) (int, <-chan struct{}, error) {
	bin, err := os.Executable()
	if err != nil {
		return 0, nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return 0, nil, fmt.Errorf("local mesh dir %s: %w", o.Dir, err)
	}
	logf, err := os.OpenFile(filepath.Join(o.Dir, SupervisorLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "local", "supervise", "--dir", o.Dir, "--nodes", strconv.Itoa(o.Nodes),
		"--base-port", strconv.Itoa(o.BasePort), "--health-interval", o.HealthInterval.String(), "--ip-prefix", o.IPPrefix)
	if o.ACME != "" {
		// Pebble reads its switches from the environment: validate at once
		// instead of after a random wait of up to five seconds.
		cmd.Args = append(cmd.Args, "--acme", o.ACME)
		cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1")
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("start the local mesh supervisor: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		// Reaps the child when it exits; when `local up` returns first, the
		// supervisor (its own session) keeps running.
		_ = cmd.Wait()
		close(exited)
	}()
	return cmd.Process.Pid, exited, nil
}

// Down stops the supervisor of dir (which stops the agents and removes the
// containers), then sweeps anything a crashed supervisor left behind.
func Down(ctx context.Context, dir string, out io.Writer) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no local mesh in %s", dir)
	}
	if pid := supervisorPID(dir); pid != 0 {
		fmt.Fprintf(out, "stopping the local mesh in %s (supervisor pid %d)...\n", dir, pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(90 * time.Second)
		for isSupervisorOf(pid, dir) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		if isSupervisorOf(pid, dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// Agents a killed supervisor could not stop.
	if st, err := readState(dir); err == nil {
		for _, n := range st.Nodes {
			if n.PID > 0 && isAgentOf(n.PID, dir, n.ID) {
				_ = syscall.Kill(n.PID, syscall.SIGKILL)
			}
		}
	}
	if err := RemoveContainers(ctx, dir, slog.New(slog.DiscardHandler)); err != nil {
		fmt.Fprintf(out, "warning: removing containers: %v\n", err)
	}
	StopEdges(dir)
	fmt.Fprintln(out, "local mesh stopped; its data stays in", dir, "(local up resumes it)")
	return nil
}

func readState(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}
