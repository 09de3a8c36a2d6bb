package cli

import (
	"github.com/dropmesh/dropmesh/node/compose"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// DeployOutcome is one spec's result in `deploy --json`.
type DeployOutcome struct {
	Result   raftfsm.DeployResult    `json:"result"`
	Progress *control.DeployProgress `json:"progress,omitempty"`
}

// splitDocuments splits a multi-document YAML file at its "---" lines and
// drops documents that hold nothing but blanks and comments.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur []string
	flush := func() {
		doc := strings.Join(cur, "\n")
		cur = nil
		for _, l := range strings.Split(doc, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				docs = append(docs, []byte(doc+"\n"))
				return
			}
		}
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		t := strings.TrimRight(line, " \t")
		if t == "---" || strings.HasPrefix(t, "--- ") || strings.HasPrefix(t, "---\t") {
			flush()
			continue
		}
		if t == "..." {
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return docs
}

func (e *env) deployCmd() *cobra.Command {
	var (
		file    string
		detach  bool
		jsonOut bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "deploy -f FILE",
		Short: "Deploy the service specs of a YAML or JSON file and wait until they serve",
		Long: "Deploy every spec of FILE (YAML documents separated by ---, or one JSON object) in order.\n" +
			"A spec with `build: ./dir` uploads that directory (minus its .dockerignore) as the build context.\n" +
			"Waits until every instance is healthy and routed, showing each node's progress; exits non-zero\n" +
			"with the reason when a deploy fails and rolls back. --detach returns after submitting.",
		Args: args(cobra.NoArgs),
	}
	cn := e.connFlags(cmd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "spec file (- for stdin)")
	cmd.Flags().BoolVar(&detach, "detach", false, "return once submitted, printing the deploy id")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for each deploy")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the results as JSON (no progress lines)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if file == "" {
			return usagef("give the spec file with -f FILE")
		}
		if timeout <= 0 {
			return usagef("--timeout must be positive")
		}
		specs, err := e.readSpecs(cmd.Context(), file, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		c, err := cn.client()
		if err != nil {
			return err
		}
		ctx, stop := e.signals(cmd.Context())
		defer stop()
		out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
		if jsonOut {
			errOut = io.Discard
		}
		var outcomes []DeployOutcome
		for _, s := range specs {
			body, err := e.prepareSpec(ctx, c, s, errOut)
			if err != nil {
				return err
			}
			res, err := c.Deploy(ctx, body, 0)
			if err != nil {
				return fmt.Errorf("deploy %s: %w", s.name, err)
			}
			o := DeployOutcome{Result: res}
			if res.Unchanged {
				if !jsonOut {
					fmt.Fprintf(out, "unchanged %s generation %d\n", s.name, res.Generation)
				}
				outcomes = append(outcomes, o)
				continue
			}
			if !jsonOut {
				fmt.Fprintf(out, "deploying %s generation %d (%s)\n", s.name, res.Generation, res.DeployID)
			}
			if !detach {
				p, err := e.waitDeploy(ctx, c, s.name, res, timeout, out, jsonOut)
				o.Progress = p
				if err != nil {
					if jsonOut {
						_ = printJSON(out, append(outcomes, o))
					}
					return err
				}
			}
			outcomes = append(outcomes, o)
		}
		if jsonOut {
			return printJSON(out, outcomes)
		}
		return nil
	}
	return cmd
}

// specDoc is one spec of a file, decoded to check it and find its build path.
type specDoc struct {
	name string
	raw  []byte
	spec raftfsm.ServiceSpec
	// dir is the directory relative build paths start from.
	dir string
}

// readSpecs reads and decodes every spec of a file before anything is sent.
// A docker-compose file is read with the Compose project's own library and
// mapped to specs; what it cannot map is named on stderr.
func (e *env) readSpecs(ctx context.Context, file string, errOut io.Writer) ([]specDoc, error) {
	var (
		data []byte
		err  error
		dir  = "."
	)
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(e.stdin, 16<<20))
	} else {
		data, err = os.ReadFile(file)
		dir = filepath.Dir(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if compose.IsComposeFile(file, data) {
		if file == "-" {
			// Compose resolves build contexts, env_file and extends relative
			// to the file's own directory, which standard input has not.
			return nil, usagef("a Compose file cannot be read from standard input: give its path, as in -f compose.yaml")
		}
		return e.readCompose(ctx, file, errOut)
	}
	docs := splitDocuments(data)
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no service spec in it", file)
	}
	var out []specDoc
	for i, d := range docs {
		spec, err := raftfsm.DecodeSpecBytes(d)
		if err != nil {
			return nil, &tidyError{fmt.Errorf("%s: document %d: %w", file, i+1, err)}
		}
		name := spec.Name()
		if name.Env == "" {
			name.Env = raftfsm.DefaultEnvironment
		}
		if err := name.Validate(); err != nil {
			return nil, &tidyError{fmt.Errorf("%s: document %d: %w", file, i+1, err)}
		}
		out = append(out, specDoc{name: name.String(), raw: d, spec: spec, dir: dir})
	}
	return out, nil
}

// readCompose maps a docker-compose file to specs, dependencies first.
func (e *env) readCompose(ctx context.Context, file string, errOut io.Writer) ([]specDoc, error) {
	res, err := compose.Load(ctx, []string{file}, "", "")
	if err != nil {
		return nil, &tidyError{fmt.Errorf("%s: %w", file, err)}
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(errOut, "compose: %s\n", w)
	}
	var out []specDoc
	for _, spec := range res.Specs {
		raw, err := json.Marshal(spec)
		if err != nil {
			return nil, err
		}
		out = append(out, specDoc{name: spec.Name().String(), raw: raw, spec: spec, dir: filepath.Dir(file)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no service in it", file)
	}
	return out, nil
}

// prepareSpec uploads a local build directory and returns the body to send.
func (e *env) prepareSpec(ctx context.Context, c *apiclient.Client, s specDoc, errOut io.Writer) ([]byte, error) {
	if s.spec.Build == "" || raftfsm.ValidateContextDigest(s.spec.Build) == nil {
		return s.raw, nil
	}
	dir := s.spec.Build
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(s.dir, dir)
	}
	f, err := tarToTemp(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	st, _ := f.Stat()
	fmt.Fprintf(errOut, "uploading build context %s (%d KiB)\n", dir, st.Size()>>10)
	info, err := c.UploadContext(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("%s: upload build context %s: %w", s.name, dir, err)
	}
	spec := s.spec.Clone()
	spec.Build = info.Digest
	body, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: encode spec: %w", s.name, err)
	}
	return body, nil
}

// DeployFailedError is a deploy that ended in failure (and rolled back).
type DeployFailedError struct {
	Service  string
	DeployID string
	Reason   string
	// RolledBackTo is the generation the instances went back to (0: none).
	RolledBackTo int64
}

func (e *DeployFailedError) Error() string {
	msg := fmt.Sprintf("deploy %s of %s failed: %s", e.DeployID, e.Service, e.Reason)
	if e.RolledBackTo > 0 {
		msg += fmt.Sprintf("; rolled back to generation %d", e.RolledBackTo)
	}
	return msg
}

// waitDeploy follows a deploy with blocking reads until it ends.
func (e *env) waitDeploy(ctx context.Context, c *apiclient.Client, name string, res raftfsm.DeployResult, timeout time.Duration, out io.Writer, quiet bool) (*control.DeployProgress, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pr := newProgress(out, e.isTTY(out))
	var (
		meta apiclient.Meta
		last control.DeployProgress
	)
	for {
		opts := []apiclient.ReadOption{apiclient.StoreMeta(&meta)}
		if meta.Index > 0 {
			opts = append(opts, apiclient.WaitIndex(meta.Index, 30*time.Second))
		}
		p, err := c.DeployProgress(ctx, res.DeployID, opts...)
		if err != nil {
			switch {
			case errors.Is(ctx.Err(), context.DeadlineExceeded):
				return &last, fmt.Errorf("%s: still rolling out after %s (%s continues in the cluster; follow it with dropmesh services)", name, timeout, res.DeployID)
			case ctx.Err() != nil:
				return &last, fmt.Errorf("%s: stopped waiting (%s continues in the cluster)", name, res.DeployID)
			}
			return &last, fmt.Errorf("follow %s: %w", res.DeployID, err)
		}
		last = p
		if !quiet {
			pr.update(p)
		}
		if !p.Done {
			continue
		}
		if p.Deploy.Status == raftfsm.DeploySucceeded {
			if !quiet {
				fmt.Fprintf(out, "%s generation %d is live\n", name, p.Deploy.Generation)
			}
			return &p, nil
		}
		reason := p.Deploy.Reason
		if reason == "" {
			reason = "no reason given"
		}
		return &p, &DeployFailedError{Service: name, DeployID: res.DeployID, Reason: reason, RolledBackTo: p.Deploy.PrevGeneration}
	}
}

func (e *env) serviceAction(use, short, done string, do func(c *apiclient.Client, ctx context.Context, name string) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Args:  args(cobra.ExactArgs(1)),
	}
	cn := e.connFlags(cmd)
	cmd.ValidArgsFunction = cn.completeServices
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if _, err := raftfsm.ParseServiceName(a[0]); err != nil {
			return &UsageError{Err: err}
		}
		c, err := cn.client()
		if err != nil {
			return err
		}
		if err := do(c, cmd.Context(), a[0]); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", done, a[0])
		return nil
	}
	return cmd
}

func (e *env) undeployCmd() *cobra.Command {
	return e.serviceAction("undeploy", "Remove a service ([workspace/]project/env/service) from every node", "undeploying",
		func(c *apiclient.Client, ctx context.Context, name string) error { return c.Undeploy(ctx, name) })
}

func (e *env) restartCmd() *cobra.Command {
	return e.serviceAction("restart", "Restart every instance of a service", "restarting",
		func(c *apiclient.Client, ctx context.Context, name string) error { return c.Restart(ctx, name) })
}

// completeServices offers the cluster's service names for shell completion.
func (c *conn) completeServices(cmd *cobra.Command, a []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(a) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cl, err := c.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	rows, err := serviceRows(ctx, cl, "")
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, r := range rows {
		if strings.HasPrefix(r.Name, prefix) {
			out = append(out, r.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
