package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/backup"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/passseal"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// maxStateFile bounds a state document read by `state import`.
const maxStateFile = 32 << 20

func (e *env) stateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Export the deployments to a file, or import them from one",
		Args:  noArgs,
	}
	cn := e.connFlags(cmd)
	var (
		secrets  bool
		output   string
		passFile string
	)
	export := &cobra.Command{
		Use:   "export",
		Short: "Write the deployments (workspaces, services, users, webhooks) as a JSON document",
		Long: "Write the deployments as a JSON document. Without --with-secrets it carries no secret: no\n" +
			"service secrets, users, registry credentials or webhooks. With --with-secrets (admin only)\n" +
			"the secrets are included and the whole document is sealed with a passphrase (Argon2id,\n" +
			"AES-256-GCM): `state import` asks for it.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pass []byte
			if secrets {
				p, err := e.passphrase(cmd, passFile, true)
				if err != nil {
					return err
				}
				pass = p
			}
			c, err := cn.client()
			if err != nil {
				return err
			}
			doc, err := c.ExportState(cmd.Context(), secrets)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := printJSON(&buf, doc); err != nil {
				return err
			}
			data := buf.Bytes()
			if secrets {
				if data, err = passseal.Seal(raftfsm.ExportKind, pass, data); err != nil {
					return &UsageError{Err: err}
				}
			}
			if output == "" || output == "-" {
				_, err := cmd.OutOrStdout().Write(data)
				return err
			}
			mode := os.FileMode(0o644)
			if secrets {
				mode = 0o600
			}
			if err := os.WriteFile(output, data, mode); err != nil {
				return fmt.Errorf("write %s: %w", output, err)
			}
			if secrets {
				// WriteFile keeps the mode of an existing file.
				if err := os.Chmod(output, mode); err != nil {
					return fmt.Errorf("write %s: %w", output, err)
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d services to %s\n", len(doc.Services), output)
			return nil
		},
	}
	export.Flags().BoolVar(&secrets, "with-secrets", false, "include the secrets (admin only; needed to import into another cluster), sealed with a passphrase")
	export.Flags().BoolVar(&secrets, "secrets", false, "")
	_ = export.Flags().MarkDeprecated("secrets", "use --with-secrets (the file is now sealed with a passphrase)")
	export.Flags().StringVarP(&output, "output", "o", "", "write to this file (mode 0600 with --with-secrets) instead of stdout")
	export.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from this file (else $DROPMESH_STATE_PASSPHRASE, else the first line of stdin)")

	var jsonOut bool
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Replace the deployments with those of an exported document",
		Long: "Replace the deployments with those of a `state export` document. A document exported\n" +
			"--with-secrets is sealed: give its passphrase (--passphrase-file, $DROPMESH_STATE_PASSPHRASE,\n" +
			"or the first line of stdin).",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			data, err := e.readInput(a[0], maxStateFile)
			if err != nil {
				return err
			}
			if passseal.IsSealed(data) {
				if a[0] == "-" && passFile == "" && e.getenv("DROPMESH_STATE_PASSPHRASE") == "" {
					return usagef("%s is sealed and read from stdin: give the passphrase with --passphrase-file or $DROPMESH_STATE_PASSPHRASE", a[0])
				}
				pass, err := e.passphrase(cmd, passFile, false)
				if err != nil {
					return err
				}
				plain, content, err := passseal.Open(data, pass)
				if err != nil {
					return &tidyError{fmt.Errorf("%s: %w", a[0], err)}
				}
				if content != raftfsm.ExportKind {
					return &tidyError{fmt.Errorf("%s: sealed %q, not a state document", a[0], content)}
				}
				data = plain
			}
			// Check it here first: a bad document fails before any network.
			if _, err := raftfsm.ReadExport(bytes.NewReader(data), maxStateFile); err != nil {
				return &tidyError{fmt.Errorf("%s: %w", a[0], err)}
			}
			c, err := cn.client()
			if err != nil {
				return err
			}
			res, err := c.ImportState(cmd.Context(), data)
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d services; they roll out now (watch: dropmesh services)\n", len(res.Services))
			return nil
		},
	}
	imp.Flags().StringVar(&passFile, "passphrase-file", "", "the passphrase of a sealed document, from this file (else $DROPMESH_STATE_PASSPHRASE, else the first line of stdin)")
	imp.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	restore := backup.RestoreCommand(func() (backup.Importer, error) {
		c, err := cn.client()
		if err != nil {
			return nil, err // not the typed nil: the interface would not be nil
		}
		return c, nil
	})
	cmd.AddCommand(export, imp, restore, backup.BackupsCommand())
	return cmd
}

// passphrase reads the passphrase of a sealed state document: from file,
// else $DROPMESH_STATE_PASSPHRASE, else the first line of stdin (with a
// prompt on stderr). sealing checks its length before anything is fetched.
func (e *env) passphrase(cmd *cobra.Command, file string, sealing bool) ([]byte, error) {
	var pass string
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil || len(b) > 4096 {
			return nil, usagef("--passphrase-file %s: unreadable or larger than 4 KiB (%v)", file, err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	case e.getenv("DROPMESH_STATE_PASSPHRASE") != "":
		pass = e.getenv("DROPMESH_STATE_PASSPHRASE")
	default:
		fmt.Fprint(cmd.ErrOrStderr(), "passphrase: ")
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && line == "" {
			return nil, usagef("no passphrase: give --passphrase-file, $DROPMESH_STATE_PASSPHRASE, or a line on stdin")
		}
		pass = strings.TrimRight(line, "\r\n")
	}
	if pass == "" {
		return nil, usagef("empty passphrase")
	}
	if sealing && utf8.RuneCountInString(pass) < passseal.MinPassphrase {
		return nil, &UsageError{Err: passseal.ErrWeak}
	}
	return []byte(pass), nil
}

// readInput reads a file, or stdin for "-", up to limit bytes.
func (e *env) readInput(path string, limit int64) ([]byte, error) {
	var (
		data []byte
		err  error
	)
	if path == "-" {
		data, err = readLimited(e.stdin, limit)
	} else {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			data, err = readLimited(f, limit)
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

func (e *env) snapshotsCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List droplet snapshots; create a custom one from a build context",
		Args:  noArgs,
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cn.client()
		if err != nil {
			return err
		}
		snaps, err := c.Snapshots(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, snaps)
		}
		t := newTable(out, "NAME", "KIND", "STATUS", "PROGRESS", "REGIONS", "ERROR")
		for _, s := range snaps {
			status := s.Status
			if s.Phase != "" && s.Status == raftfsm.SnapshotBuilding {
				status += " (" + s.Phase + ")"
			}
			t.row(s.Name, s.Kind, status, fmt.Sprintf("%d%%", s.Progress), strings.Join(s.Regions, ","), s.Error)
		}
		return t.flush()
	}
	var (
		contextDir string
		regions    []string
	)
	create := &cobra.Command{
		Use:   "create NAME --context DIR",
		Short: "Build a custom snapshot: the base one plus what DIR's Dockerfile adds",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := raftfsm.ValidateSnapshotName(a[0]); err != nil {
				return &UsageError{Err: err}
			}
			if contextDir == "" {
				return usagef("give the build context with --context DIR")
			}
			for _, r := range regions {
				if err := raftfsm.ValidateRegion(r); err != nil {
					return &UsageError{Err: err}
				}
			}
			c, err := cn.client()
			if err != nil {
				return err
			}
			f, err := tarToTemp(contextDir)
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			defer f.Close()
			info, err := c.UploadContext(cmd.Context(), f)
			if err != nil {
				return fmt.Errorf("upload %s: %w", contextDir, err)
			}
			if err := c.CreateSnapshot(cmd.Context(), control.SnapshotRequest{Name: a[0], Context: info.Digest, Regions: regions}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "building snapshot %s from %s (watch: dropmesh snapshots)\n", a[0], shortDigest(info.Digest))
			return nil
		},
	}
	create.Flags().StringVar(&contextDir, "context", "", "directory with the Dockerfile")
	create.Flags().StringSliceVar(&regions, "region", nil, "also make it available in these regions")
	cmd.AddCommand(create)
	return cmd
}

func (e *env) usersCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "users",
		Short: "List the web UI's users; add or remove one",
		Args:  noArgs,
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cn.client()
		if err != nil {
			return err
		}
		users, err := c.Users(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, users)
		}
		t := newTable(out, "NAME", "ROLE", "CREATED")
		for _, u := range users {
			t.row(u.Name, string(u.Role), ago(e.now(), u.CreatedAt))
		}
		return t.flush()
	}
	var (
		role          string
		passwordStdin bool
	)
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user, or change one's role or password",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := raftfsm.ValidateUserName(a[0]); err != nil {
				return &UsageError{Err: err}
			}
			if !raftfsm.Role(role).Valid() {
				return usagef("--role %q: want admin, deployer or viewer", role)
			}
			var password string
			if passwordStdin {
				line, err := bufio.NewReader(e.stdin).ReadString('\n')
				if err != nil && line == "" {
					return usagef("--password-stdin: no password on stdin")
				}
				password = strings.TrimRight(line, "\r\n")
			}
			c, err := cn.client()
			if err != nil {
				return err
			}
			if err := c.PutUser(cmd.Context(), control.UserRequest{Name: a[0], Password: password, Role: raftfsm.Role(role)}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "saved user %s (%s)\n", a[0], role)
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", string(raftfsm.RoleDeployer), "admin, deployer or viewer")
	add.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin (without it, an existing user keeps theirs)")
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a user",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := raftfsm.ValidateUserName(a[0]); err != nil {
				return &UsageError{Err: err}
			}
			c, err := cn.client()
			if err != nil {
				return err
			}
			if err := c.DeleteUser(cmd.Context(), a[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed user %s\n", a[0])
			return nil
		},
	}
	cmd.AddCommand(add, remove)
	return cmd
}

func completionCmd() *cobra.Command {
	return &cobra.Command{
		Use:       "completion bash|zsh|fish",
		Short:     "Print a shell completion script",
		Long:      "Print a completion script; for bash: source <(dropmesh completion bash)",
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      args(cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs)),
		RunE: func(cmd *cobra.Command, a []string) error {
			root, out := cmd.Root(), cmd.OutOrStdout()
			switch a[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			default:
				return root.GenFishCompletion(out, true)
			}
		},
	}
}
