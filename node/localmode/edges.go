package localmode

import (
	"context"
	"path/filepath"
	"time"

	"github.com/dropmesh/dropmesh/node/edge"
)

// StopEdges stops the nginx masters of the mesh's nodes: an agent leaves its
// nginx serving across its own restarts, and local down is the end of it.
func StopEdges(dir string) {
	dirs, _ := filepath.Glob(filepath.Join(dir, "node-*", "nginx"))
	for _, d := range dirs {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_ = edge.StopNginxDir(ctx, d)
		cancel()
	}
}
