//go:build ignore

// gen rewrites install-agent.sh and join.sh so that every host file they
// carry as a here-document is its canonical file (package
// scripts/internal/inline). Run it with `go generate ./scripts` after
// editing metadata-guard.sh, metadata-env.sh or a unit in systemd/.
package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/dropmesh/dropmesh/scripts/internal/inline"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	read := func(f string) (string, error) {
		b, err := os.ReadFile(f)
		return string(b), err
	}
	copies := inline.Copies()
	names := make([]string, 0, len(copies))
	for n := range copies {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		old, err := read(name)
		if err != nil {
			return err
		}
		filled, err := inline.Fill(old, copies[name], read)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if filled == old {
			continue
		}
		if err := os.WriteFile(name, []byte(filled), 0o755); err != nil {
			return err
		}
		fmt.Printf("gen: rewrote %s\n", name)
	}
	return nil
}
