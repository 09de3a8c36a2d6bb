package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Command is `dropmesh bootstrap`: it creates a cluster on DigitalOcean
// (see Run). version is this binary's version; it names the base snapshot.
func Command(version string) *cobra.Command {
	var (
		o                    Options
		doTokenFile, cfToken string
		verbose              bool
	)
	cmd := &cobra.Command{
		Use:   "bootstrap --do-token-file F --cf-token-file F --domain D --region R",
		Short: "Create a dropmesh cluster on DigitalOcean: network, base snapshot, seed droplet",
		Long: `Create a dropmesh cluster on DigitalOcean.

bootstrap ensures the VPC and the cluster firewall (80 and 443 from anywhere;
the agent API, gossip and raft only from the VPC; no SSH), builds the base
snapshot if this version has none (a temporary droplet reached over SSH, the
only time SSH is open), creates the seed droplet, and waits until the leader
has grown the cluster to --nodes. It prints the UI's address and the admin
login, and writes an env file for the CLI into the state dir.

Every step looks up what exists first: after a failure, run it again.

The tokens are read from files (never from the command line, where ps shows
them): a DigitalOcean token with write access, and a Cloudflare token with
Zone:Read and DNS:Edit on the domain's zone.`,
		Example: `  dropmesh bootstrap --do-token-file ~/.do-token --cf-token-file ~/.cf-token \
      --domain example.com --region nyc3 --nodes 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var errs []error
			var err error
			if o.DOToken, err = readToken(doTokenFile, "--do-token-file"); err != nil {
				errs = append(errs, err)
			}
			if o.CFToken, err = readToken(cfToken, "--cf-token-file"); err != nil {
				errs = append(errs, err)
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			o.Version = version
			o.Out = cmd.OutOrStdout()
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelDebug
			}
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			_, err = Run(ctx, o)
			if errors.Is(err, context.Canceled) {
				return fmt.Errorf("interrupted; run the same command again to resume: %w", err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&doTokenFile, "do-token-file", "", "file holding the DigitalOcean API token (required)")
	f.StringVar(&cfToken, "cf-token-file", "", "file holding the Cloudflare API token (required)")
	f.StringVar(&o.Domain, "domain", "", "the Cloudflare zone; the UI is at mesh.DOMAIN (required)")
	f.StringSliceVar(&o.Regions, "region", nil, "DigitalOcean region of the VPC and the seed; more, comma-separated, also get the base snapshot (required)")
	f.StringVar(&o.Size, "size", DefaultSize, "droplet size")
	f.IntVar(&o.Nodes, "nodes", 3, "grow the cluster to this many nodes")
	f.StringVar(&o.Name, "name", "dropmesh", "cluster name (droplets are NAME-node-1, ...)")
	f.StringVar(&o.StateDir, "state-dir", "", "local state: secret, admin password, env file (default ~/.config/dropmesh/NAME)")
	f.StringVar(&o.Binary, "binary", "", "dropmesh binary for the droplets, Linux amd64 (default: this executable)")
	f.BoolVarP(&verbose, "verbose", "v", false, "log every cloud call")
	f.StringVar(&o.DOBaseURL, "do-base-url", "", "DigitalOcean API base URL (for a fake)")
	f.StringVar(&o.CFBaseURL, "cf-base-url", "", "Cloudflare API base URL (for a fake)")
	_ = f.MarkHidden("do-base-url")
	_ = f.MarkHidden("cf-base-url")
	return cmd
}

// readToken reads an API token from a file (one line, at most 4 KiB).
func readToken(path, flag string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%s: required", flag)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4<<10+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	if len(data) > 4<<10 {
		return "", fmt.Errorf("%s: %s is larger than a token", flag, path)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" || strings.ContainsAny(tok, "\n\r\t ") {
		return "", fmt.Errorf("%s: %s must hold exactly one token", flag, path)
	}
	return tok, nil
}
