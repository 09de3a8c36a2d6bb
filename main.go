// Command dropmesh is the single binary of dropmesh: the agent every droplet
// runs, the local mesh, and the CLI that talks to any agent.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"
	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node"
	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/node/bootstrap"
	"github.com/dropmesh/dropmesh/node/cli"
	"github.com/dropmesh/dropmesh/node/localmode"
	"github.com/dropmesh/dropmesh/node/sampleapp"
	"github.com/dropmesh/dropmesh/ui"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// Gin's mode is a package global; the agent never wants its debug banner.
	gin.SetMode(gin.ReleaseMode)
	root := &cobra.Command{
		Use:           "dropmesh",
		Short:         "Deploy containers onto your own droplets, with no central server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the dropmesh version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version) },
	})
	root.AddCommand(node.AgentCommand(version, node.Options{API: apiHandler, UI: uiHandler})...)
	root.AddCommand(node.APIKeyCommand())
	root.AddCommand(localmode.Command())
	root.AddCommand(bootstrap.Command(version))
	cli.AddCommands(root, version)
	root.AddCommand(sampleAppCommand())
	os.Exit(cli.Execute(root, os.Stderr))
}

// apiHandler serves the agent API of a.
func apiHandler(a *node.Agent) (http.Handler, error) {
	cfg := a.Config()
	return api.NewMeasured(api.Options{Controller: a, APIKey: a.Keys().APIKey, RequireAuthAlways: cfg.RequireAuthAlways, TrustedNets: cfg.TrustedNets, Logger: a.Logger(),
		HTTPClient: a.PeerHTTPClient(), VerifyNode: a.VerifyNode, Enroller: a, Extra: a.ImageRoutes()}, a.Metrics())
}

// uiHandler serves the web UI of a. Its cookies are Secure when the browser
// came over TLS (the UI decides per request; see ui.Options.Secure).
func uiHandler(a *node.Agent) (http.Handler, error) {
	return ui.New(ui.Options{Node: a, SessionKey: a.Keys().SessionKey, Logger: a.Logger()})
}

// The agent offers the UI its optional views: other nodes' figures and logs.
var _ interface {
	ui.PeerStatser
	ui.PeerAgentLogser
} = (*node.Agent)(nil)

// sampleAppCommand is `dropmesh sample-app`, the tiny service local mode
// deploys (and tests use): health switch, error logs, exit codes.
func sampleAppCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "sample-app [once]",
		Short: "Run the sample HTTP service (listens on :8080 or $PORT)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return sampleapp.Run(ctx, sampleapp.Options{Args: args, Stdout: cmd.OutOrStdout(), Version: version})
		},
	}
}
