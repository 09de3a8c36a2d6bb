package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/control"
)

func (e *env) joinTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "join-token",
		Short: "Make one-time join tokens for hosts joined by hand (join.sh)",
		Long: "Make one-time join tokens for hosts joined by hand (join.sh).\n\n" +
			"A new node proves a join token to a member over TLS (the member's certificate\n" +
			"checked against the CA fingerprint given with the token) and receives its node\n" +
			"certificate and the cluster's keys. A token works once and expires; only its hash\n" +
			"is kept in the replicated state. Droplets the leader creates get their own.",
		Args: noArgs,
	}
	cn := e.connFlags(cmd)
	var (
		jsonOut bool
		ttl     time.Duration
		node    string
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Make a join token (shown once) and print it with the CA fingerprint",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl <= 0 || ttl > 7*24*time.Hour {
				return usagef("--ttl %s: want a duration from 1s to 168h", ttl)
			}
			c, err := cn.client()
			if err != nil {
				return err
			}
			info, err := c.CreateJoinToken(cmd.Context(), control.JoinTokenRequest{TTL: ttl.String(), Node: node, Purpose: "join.sh"})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonOut {
				return printJSON(out, info)
			}
			fmt.Fprintf(out, "join token:     %s\nca fingerprint: %s\nexpires:        %s (once used, it is spent)\n",
				info.Token, info.CAFingerprint, info.ExpiresAt.Format(time.RFC3339))
			fmt.Fprintf(out, "\non the new host: join.sh --join-token %s --ca-fingerprint %s --join MEMBER:7946\n", info.Token, info.CAFingerprint)
			return nil
		},
	}
	create.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token stays usable")
	create.Flags().StringVar(&node, "node", "", "allow only this node id to join with it")
	create.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.AddCommand(create)
	return cmd
}
