package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// peerClient is how an agent talks to one peer's API at a time: reports to
// the leader, the leader's pings, second-opinion probes, build-context
// fetches, and logs, health and stats of containers on other nodes. It is
// apiclient with one address and no retries of its own: the callers have
// their own rhythm (the next ping, the next report). Every call is mutual
// TLS: this node's certificate as client certificate, the peer's checked
// against the cluster CA.
type peerClient struct {
	key  string
	http *http.Client
}

// newPeerClient calls other agents with the API key over hc (mutual TLS
// with this node's certificate: newPeerHTTPClient).
func newPeerClient(apiKey string, hc *http.Client) *peerClient {
	return &peerClient{key: apiKey, http: hc}
}

func (p *peerClient) to(api string) (*apiclient.Client, error) {
	return apiclient.New(apiclient.Config{Addrs: []string{api}, APIKey: p.key, HTTPClient: p.http, Timeout: 30 * time.Second, RetryFor: time.Millisecond})
}

func (p *peerClient) commit(ctx context.Context, leaderAPI string, cmd raftfsm.Command) error {
	c, err := p.to(leaderAPI)
	if err == nil {
		_, err = c.Commit(ctx, cmd)
	}
	return err
}

func (p *peerClient) ping(ctx context.Context, api string) error {
	c, err := p.to(api)
	if err == nil {
		_, err = c.Ping(ctx)
	}
	return err
}

func (p *peerClient) probe(ctx context.Context, api, addr, path string) error {
	c, err := p.to(api)
	if err != nil {
		return err
	}
	return c.Probe(ctx, addr, path)
}

func (p *peerClient) fetchContext(ctx context.Context, api, digest string) (io.ReadCloser, error) {
	c, err := p.to(api)
	if err != nil {
		return nil, err
	}
	return c.FetchContext(ctx, digest)
}

// containerNode finds the API of the node running a container, by name.
func (a *Agent) containerNode(name string) (string, bool) {
	api := ""
	a.fsm.View(func(s *raftfsm.State) {
		for _, in := range s.Instances {
			if in.Container == name || in.ContainerID == name {
				if n, ok := s.Nodes[in.Node]; ok && in.Node != a.cfg.NodeID {
					api = n.API
				}
			}
		}
	})
	return api, api != ""
}

// remoteLogs streams the log of a container on another node.
func (a *Agent) remoteLogs(ctx context.Context, name string, opts control.LogOptions, w io.Writer) error {
	api, ok := a.containerNode(name)
	if !ok {
		return fmt.Errorf("container %s: %w", name, raftfsm.ErrNotFound)
	}
	q := apiclient.LogsQuery{Tail: opts.Tail, Follow: opts.Follow}
	if !opts.Since.IsZero() {
		q.Since = strconv.FormatInt(opts.Since.Unix(), 10)
	}
	c, err := a.peers.to(api)
	if err != nil {
		return err
	}
	rc, err := c.ContainerLogs(ctx, name, q)
	if err != nil {
		return err
	}
	defer rc.Close()
	var r io.Reader = rc
	if opts.MaxBytes > 0 {
		r = io.LimitReader(rc, opts.MaxBytes)
	}
	_, err = io.Copy(w, r)
	if ctx.Err() != nil {
		return nil // the reader went away: the end of a follow
	}
	return err
}

// PeerStats asks another node's agent for its figures (the UI's infrastructure page).
func (a *Agent) PeerStats(ctx context.Context, nodeID string) (control.NodeStats, error) {
	if nodeID == a.cfg.NodeID {
		return a.Stats(ctx)
	}
	var api string
	a.fsm.View(func(s *raftfsm.State) {
		if n, ok := s.Nodes[nodeID]; ok {
			api = n.API
		}
	})
	if api == "" {
		return control.NodeStats{}, fmt.Errorf("node %s: %w", nodeID, raftfsm.ErrNotFound)
	}
	c, err := a.peers.to(api)
	if err != nil {
		return control.NodeStats{}, err
	}
	return c.AgentStats(ctx, "")
}
