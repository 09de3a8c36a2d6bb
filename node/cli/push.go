package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/imagepeer"
	"github.com/dropmesh/dropmesh/node/runtime"
)

func (e *env) pushCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "push IMAGE[:TAG]",
		Short: "Send an image from your local Docker to the cluster, without a registry",
		Long: "Send IMAGE from the local Docker engine (DOCKER_HOST, else the standard socket) to the agent the CLI\n" +
			"talks to, one line per layer; layers that node already has are not sent. The other nodes get it\n" +
			"from the peers when a deploy names it: `image: IMAGE[:TAG]` in a spec.",
		Args: args(cobra.ExactArgs(1)),
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the result as JSON (no progress lines)")
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		ref, err := runtime.ParseImageRef(a[0])
		if err != nil {
			return &UsageError{Err: err}
		}
		if strings.HasPrefix(a[0], "local/") {
			return usagef("%s: local/ images are node-local and never move; tag it under another name", a[0])
		}
		cl, err := cn.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		rt, err := runtime.New(ctx, nil)
		if err != nil {
			return fmt.Errorf("your local Docker: %w", err)
		}
		defer rt.Close()
		dir, err := os.MkdirTemp("", "dropmesh-push-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		out := cmd.OutOrStdout()
		progress := func(s string) { fmt.Fprintln(out, s) }
		if jsonOut {
			progress = func(string) {}
		}
		res, err := imagepeer.Push(ctx, imagepeer.NewStore(dir, rt), cl, ref, progress)
		if err != nil {
			return err
		}
		if jsonOut {
			return printJSON(out, res)
		}
		fmt.Fprintf(out, "pushed %s (%s) to %s: %d layers, %d new there; deploy it with image: %s\n", res.Ref, res.ID, res.Node, res.Layers, res.Loaded, a[0])
		return nil
	}
	return cmd
}
