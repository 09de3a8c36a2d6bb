// Command testapp is the sample app as a static binary: the program inside
// every test image (FROM scratch) that node/runtime's test kit builds.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dropmesh/dropmesh/node/sampleapp"
)

// version is set at build time with -ldflags "-X main.version=..." (the
// test kit's BuildStaticBinary does).
var version = "dev"

func main() {
	if code, ok := probe(os.Args[1:]); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := sampleapp.Run(ctx, sampleapp.Options{Args: os.Args[1:], Version: version}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
