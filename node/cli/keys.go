package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
)

func (e *env) keysCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Show the gossip keys (by id) and what every member has installed; rotate them",
		Long: "Show the gossip keys and what every member has installed; rotate them.\n\n" +
			"Gossip is encrypted with a key derived from the cluster secret until the first\n" +
			"rotation. `keys rotate` moves every agent to a new random key without a restart:\n" +
			"each installs it, then encrypts with it, then drops the old one, every step\n" +
			"taken once every alive member has taken the one before.",
		Args: noArgs,
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cn.client()
		if err != nil {
			return err
		}
		info, err := c.GossipKeys(cmd.Context(), apiclient.Consistent())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, info)
		}
		origin := "rotated"
		if info.Derived {
			origin = "derived from the cluster secret"
		}
		fmt.Fprintf(out, "primary: %s (%s)\n", info.Primary, origin)
		if r := info.Rotation; r != nil {
			fmt.Fprintf(out, "rotation to %s: %s phase, started %s\n", r.NewID, r.Phase, ago(e.now(), r.StartedAt))
		}
		t := newTable(out, "MEMBER", "STATUS", "KEYS (PRIMARY FIRST)")
		for _, m := range info.Members {
			t.row(m.ID, m.Status, strings.Join(m.Keys, ","))
		}
		return t.flush()
	}

	var detach bool
	var timeout time.Duration
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Move the cluster to a new gossip key; waits until every alive member uses it",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cn.client()
			if err != nil {
				return err
			}
			info, err := c.RotateGossipKey(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			target := info.Primary
			if info.Rotation != nil {
				target = info.Rotation.NewID
			}
			fmt.Fprintf(out, "rotating the gossip key to %s\n", target)
			if detach {
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return waitRotation(ctx, c, target, out)
		},
	}
	rotate.Flags().BoolVar(&detach, "detach", false, "return once the rotation has started")
	rotate.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for every member")
	cmd.AddCommand(rotate)
	return cmd
}

// waitRotation prints each phase of the rotation to target as it comes,
// and returns once the cluster's only key is target.
func waitRotation(ctx context.Context, c *apiclient.Client, target string, out io.Writer) error {
	last := ""
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := c.GossipKeys(ctx, apiclient.Consistent())
		if err != nil {
			return err
		}
		phase := "done"
		if info.Rotation != nil {
			phase = info.Rotation.Phase
		}
		if phase != last {
			fmt.Fprintf(out, "  %s\n", rotationLine(phase, info, target))
			last = phase
		}
		if info.Rotation == nil && info.Primary == target {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the rotation to %s is not done (%s phase): %w; `dropmesh keys` shows which members lag", target, phase, ctx.Err())
		case <-tick.C:
		}
	}
}

func rotationLine(phase string, info control.GossipKeysInfo, target string) string {
	switch phase {
	case "install":
		return "every agent installs " + target + " (the old key still encrypts)"
	case "use":
		return "every agent encrypts with " + target + " (the old key still decrypts)"
	}
	return fmt.Sprintf("done: %s is the only gossip key of %d members", info.Primary, len(info.Members))
}
