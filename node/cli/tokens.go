package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func (e *env) tokensCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "List the API tokens; create or revoke one",
		Long: "List the API tokens; create or revoke one.\n\n" +
			"A token is a credential for the agent API (DROPMESH_API_KEY) with a role: viewer\n" +
			"reads, deployer also deploys, undeploys and restarts, admin may do everything (users,\n" +
			"tokens, settings, keys, nodes). The cluster only keeps a hash of each token: it is\n" +
			"printed once, when it is created. The cluster API key stays the admin credential.",
		Args: noArgs,
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cn.client()
		if err != nil {
			return err
		}
		tokens, err := c.Tokens(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, tokens)
		}
		t := newTable(out, "ID", "NAME", "ROLE", "USER", "CREATED", "LAST USED")
		for _, tk := range tokens {
			used := "never"
			if !tk.LastUsedAt.IsZero() {
				used = ago(e.now(), tk.LastUsedAt)
			}
			owner := tk.User
			if owner == "" {
				owner = "-"
			}
			t.row(tk.ID, tk.Name, string(tk.Role), owner, ago(e.now(), tk.CreatedAt), used)
		}
		return t.flush()
	}
	var (
		role, name, user string
		createJSON       bool
	)
	create := &cobra.Command{
		Use:   "create --name NAME --role viewer|deployer|admin",
		Short: "Create an API token and print it (the only time it is shown)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := raftfsm.ValidateTokenName(name); err != nil {
				return &UsageError{Err: err}
			}
			if !raftfsm.Role(role).Valid() {
				return usagef("--role %q: want admin, deployer or viewer", role)
			}
			c, err := cn.client()
			if err != nil {
				return err
			}
			created, err := c.CreateToken(cmd.Context(), control.TokenRequest{Name: name, Role: raftfsm.Role(role), User: user})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if createJSON {
				return printJSON(out, created)
			}
			fmt.Fprintln(out, created.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "created token %s (%s, %s); it is not shown again\n", created.Info.Name, created.Info.ID, created.Info.Role)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "the token's name (what it is for, such as ci)")
	create.Flags().StringVar(&role, "role", string(raftfsm.RoleViewer), "admin, deployer or viewer")
	create.Flags().StringVar(&user, "user", "", "the UI user the token belongs to: it never has more than the user's role and goes with the user")
	create.Flags().BoolVar(&createJSON, "json", false, "print JSON")
	revoke := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke an API token: requests with it are refused from then on",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := cn.client()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), a[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s\n", a[0])
			return nil
		},
	}
	cmd.AddCommand(create, revoke)
	return cmd
}
