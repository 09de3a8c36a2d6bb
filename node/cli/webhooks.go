package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/raftfsm"
)

func (e *env) webhooksCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "List the notification webhooks; add or remove one",
		Long: "List the notification webhooks; add or remove one.\n\n" +
			"The leader posts the cluster's important events (failed deploys, rollbacks, healing,\n" +
			"nodes lost or found) to every webhook, as generic JSON or as a Slack or Discord\n" +
			"message. The list shortens the secret part of each URL; --json prints them whole.",
		Args: noArgs,
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON (URLs shortened: a webhook URL is a secret)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cn.client()
		if err != nil {
			return err
		}
		hooks, err := c.Webhooks(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, hooks)
		}
		t := newTable(out, "ID", "FORMAT", "URL", "EVENTS", "CREATED")
		for _, w := range hooks {
			t.row(w.ID, w.Format, w.ShortURL(), kindsText(w.Kinds), ago(e.now(), w.CreatedAt))
		}
		return t.flush()
	}

	var (
		format  string
		events  []string
		addJSON bool
	)
	add := &cobra.Command{
		Use:   "add URL",
		Short: "Add a webhook: the cluster posts its events to URL (http or https)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := cn.client()
			if err != nil {
				return err
			}
			// The ID is left to the API, which makes a fresh "hook-..." one;
			// the URL and the format are checked where they are stored.
			w, err := c.PutWebhook(cmd.Context(), raftfsm.Webhook{URL: a[0], Format: format, Kinds: cleanKinds(events)})
			if err != nil {
				return err
			}
			if addJSON {
				return printJSON(cmd.OutOrStdout(), w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added webhook %s (%s, events: %s) posting to %s\n", w.ID, w.Format, kindsText(w.Kinds), w.ShortURL())
			return nil
		},
	}
	add.Flags().StringVar(&format, "format", raftfsm.WebhookGeneric, "payload format: generic (JSON), slack or discord")
	add.Flags().StringSliceVar(&events, "events", nil, fmt.Sprintf("event kind prefixes to send, comma-separated, %q for all (default %s)",
		raftfsm.WebhookAllKinds, strings.Join(raftfsm.WebhookDefaultKinds(), ",")))
	add.Flags().BoolVar(&addJSON, "json", false, "print the stored webhook as JSON")

	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a webhook",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := cn.client()
			if err != nil {
				return err
			}
			if err := c.DeleteWebhook(cmd.Context(), a[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed webhook %s\n", a[0])
			return nil
		},
	}
	cmd.AddCommand(add, remove)
	return cmd
}

// cleanKinds trims the kinds given to --events and drops empty ones, so
// "deploy., heal." and a trailing comma mean what they look like.
func cleanKinds(in []string) []string {
	var out []string
	for _, k := range in {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

// kindsText is a webhook's event filter as the list shows it.
func kindsText(kinds []string) string {
	if len(kinds) == 0 {
		return "default"
	}
	return strings.Join(kinds, ",")
}
