// Package cli is dropmesh's command line for talking to a cluster: status,
// nodes, services, workspaces, deploy, undeploy, restart, logs, health,
// events, state export and import, snapshots, users, notification webhooks,
// the edge's TLS certificates, gossip keys and their rotation,
// cluster settings and shell completion.
// Every command talks to any agent's API through node/apiclient; every read
// command takes --json and then prints pure JSON on stdout.
//
// AddCommands registers the commands on the root command; Execute runs the
// root and turns an error into "dropmesh: <message>" on stderr and an exit
// code (1, or 2 for usage errors).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// UsageError is a mistake in how a command was called (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return tidyMessage(e.Err.Error()) }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// tidyMessage drops the "invalid: " of validation errors: on a command
// line the word adds nothing to the message that follows it.
func tidyMessage(msg string) string {
	return strings.ReplaceAll(msg, raftfsm.ErrInvalid.Error()+": ", "")
}

// tidyError shows its error's message tidied; errors.Is still sees through it.
type tidyError struct{ err error }

func (e *tidyError) Error() string { return tidyMessage(e.err.Error()) }
func (e *tidyError) Unwrap() error { return e.err }

// ExitCode is the process exit code for an error of Execute: 0 for none, 2
// for usage errors, 1 otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var u *UsageError
	if errors.As(err, &u) {
		return 2
	}
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "invalid argument", "flag needs an argument", "required flag", "accepts ", "requires "} {
		if strings.HasPrefix(msg, p) {
			return 2
		}
	}
	return 1
}

// Execute runs root and reports an error as "dropmesh: <message>" on
// stderr; it returns the exit code, never a stack trace.
func Execute(root *cobra.Command, stderr io.Writer) int {
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "dropmesh:", tidyMessage(err.Error()))
	code := ExitCode(err)
	if code == 2 {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", root.CommandPath())
	}
	return code
}

// env is what the commands take from the process, replaceable in tests.
type env struct {
	version string
	getenv  func(string) string
	stdin   io.Reader
	// isTTY reports whether w is a terminal (progress lines update in place).
	isTTY func(w io.Writer) bool
	// configDir is where config.json is looked for.
	configDir func() (string, error)
	now       func() time.Time
	// signals makes a context that ends on Ctrl-C.
	signals func(ctx context.Context) (context.Context, context.CancelFunc)
}

func defaultEnv(version string) *env {
	return &env{
		version: version,
		getenv:  os.Getenv,
		stdin:   os.Stdin,
		isTTY: func(w io.Writer) bool {
			f, ok := w.(*os.File)
			if !ok {
				return false
			}
			st, err := f.Stat()
			return err == nil && st.Mode()&os.ModeCharDevice != 0
		},
		configDir: func() (string, error) {
			if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
				return d, nil
			}
			return os.UserConfigDir()
		},
		now: time.Now,
		signals: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		},
	}
}

// AddCommands registers the CLI commands on root. version is this binary's.
func AddCommands(root *cobra.Command, version string) {
	addCommands(root, defaultEnv(version))
}

func addCommands(root *cobra.Command, e *env) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		e.statusCmd(),
		e.nodesCmd(),
		e.servicesCmd(),
		e.workspacesCmd(),
		e.deployCmd(),
		e.pushCmd(),
		e.undeployCmd(),
		e.restartCmd(),
		e.logsCmd(),
		e.healthCmd(),
		e.eventsCmd(),
		e.stateCmd(),
		e.snapshotsCmd(),
		e.usersCmd(),
		e.tokensCmd(),
		e.webhooksCmd(),
		e.certsCmd(),
		e.caCmd(),
		e.keysCmd(),
		e.joinTokenCmd(),
		e.settingsCmd(),
		completionCmd(),
	)
}

// args wraps a cobra argument check so its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return &UsageError{Err: fmt.Errorf("%w (usage: %s)", err, cmd.UseLine())}
		}
		return nil
	}
}

// noArgs refuses arguments, naming an unknown subcommand as such.
func noArgs(cmd *cobra.Command, a []string) error {
	if len(a) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return usagef("unknown command %q for %q", a[0], cmd.CommandPath())
	}
	return usagef("%s takes no arguments", cmd.CommandPath())
}
