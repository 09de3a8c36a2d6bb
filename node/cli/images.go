package cli

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// nodeImageBytes asks every node at once for the disk its images take
// (`dropmesh nodes`, column IMAGES); a node that does not answer within a
// few seconds shows "?".
func nodeImageBytes(ctx context.Context, c *apiclient.Client, nodes []raftfsm.Node) map[string]string {
	out := make(map[string]string, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range nodes {
		out[n.ID] = "?" // before any answer can arrive
	}
	for _, n := range nodes {
		if n.Status == raftfsm.NodeDead {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			st, err := c.AgentStats(sctx, n.ID)
			if err != nil {
				return
			}
			mu.Lock()
			out[n.ID] = humanSize(st.ImageBytes)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func humanSize(n uint64) string {
	switch {
	case n < 1<<20:
		return fmt.Sprintf("%d KiB", n>>10)
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
}
