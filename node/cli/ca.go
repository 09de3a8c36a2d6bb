package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func (e *env) caCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Show the cluster CA (subject, fingerprint, expiry) and every node certificate",
		Long: "Show the cluster CA and every node certificate.\n\n" +
			"Every node has its own key and a short-lived certificate from the cluster CA,\n" +
			"naming its node id and address; raft and agent-to-agent calls run over mutual\n" +
			"TLS with them. Nodes renew their certificates on their own after two thirds of\n" +
			"their lifetime; removing a node revokes its certificates. The fingerprint is\n" +
			"what a new droplet pins the CA with.",
		Args: noArgs,
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cn.client()
		if err != nil {
			return err
		}
		info, err := c.CA(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, info)
		}
		now := e.now()
		fmt.Fprintf(out, "CA:          %s\n", info.Subject)
		fmt.Fprintf(out, "fingerprint: %s\n", info.Fingerprint)
		fmt.Fprintf(out, "expires:     %s (%s)\n", info.NotAfter.UTC().Format(time.DateOnly), until(now, info.NotAfter))
		t := newTable(out, "NODE", "SERIAL", "EXPIRES", "REVOKED")
		for _, nc := range info.Certs {
			revoked := "-"
			if nc.Revoked && nc.RevokedAt != nil {
				revoked = ago(now, *nc.RevokedAt) + " ago"
				if nc.Reason != "" {
					revoked += ": " + nc.Reason
				}
			}
			t.row(nc.Node, nc.Serial, nc.NotAfter.UTC().Format(time.DateTime)+" ("+until(now, nc.NotAfter)+")", revoked)
		}
		return t.flush()
	}
	return cmd
}

// until is ago's counterpart for a time ahead: "in 29d", or "expired".
func until(now, t time.Time) string {
	if !t.After(now) {
		return "expired"
	}
	return "in " + ago(t, now)
}
