package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Endpoint is one way to reach the cluster's agent API from where the CLI
// runs: the API is served on the UI port too, which the edge routes the UI
// host to, so outside the VPC it is https://mesh.DOMAIN, or the seed's
// public address with the UI host as Host header.
type Endpoint struct {
	// URL is the base URL, without a path.
	URL string
	// Host is the Host header to send; "" keeps the URL's.
	Host string
	// Trusted endpoints may carry the API key: HTTPS, or a network the user
	// controls. The others only get GET /ping, which needs no key.
	Trusted bool
}

func (e Endpoint) String() string {
	if e.Host != "" && !strings.Contains(e.URL, "://"+e.Host) {
		return e.URL + " (Host: " + e.Host + ")"
	}
	return e.URL
}

// errNoTrustedEndpoint: no endpoint may carry the API key.
var errNoTrustedEndpoint = errors.New("no endpoint may carry the API key")

// agentClient talks to the seed's (then the cluster's) agent API.
type agentClient struct {
	hc        *http.Client
	endpoints []Endpoint
	apiKey    string
}

// pingAnswer is GET /ping's answer.
type pingAnswer struct {
	Node    string `json:"node"`
	Version string `json:"version"`
}

// clusterAnswer is the part of GET /v1/cluster the bootstrap reads.
type clusterAnswer struct {
	Leader struct {
		ID string `json:"id"`
	} `json:"leader"`
	Members []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Raft   string `json:"raft"`
	} `json:"members"`
}

// settingsAnswer is the part of GET /v1/settings the bootstrap reads.
type settingsAnswer struct {
	Initialized  bool     `json:"initialized"`
	ClusterID    string   `json:"cluster_id"`
	ClusterName  string   `json:"cluster_name"`
	UIHost       string   `json:"ui_host"`
	Regions      []string `json:"regions"`
	DesiredNodes int      `json:"desired_nodes"`
	BaseSnapshot string   `json:"base_snapshot"`
	DOToken      string   `json:"do_token"`
	CFToken      string   `json:"cf_token"`
}

// ping asks every endpoint for GET /ping and returns the first answer.
func (c *agentClient) ping(ctx context.Context) (pingAnswer, Endpoint, error) {
	var errs []error
	for _, e := range c.endpoints {
		var p pingAnswer
		err := c.do(ctx, e, http.MethodGet, "/ping", nil, &p, false)
		if err == nil && p.Node != "" {
			return p, e, nil
		}
		if err == nil {
			err = errors.New("the answer names no node")
		}
		errs = append(errs, fmt.Errorf("%s: %w", e, err))
	}
	return pingAnswer{}, Endpoint{}, errors.Join(errs...)
}

// call sends an authenticated request to the first trusted endpoint that
// answers.
func (c *agentClient) call(ctx context.Context, method, path string, body, out any) error {
	var errs []error
	for _, e := range c.endpoints {
		if !e.Trusted {
			continue
		}
		err := c.do(ctx, e, method, path, body, out, true)
		if err == nil {
			return nil
		}
		var he *httpError
		if errors.As(err, &he) && he.status < 500 && he.status != http.StatusTooManyRequests {
			return err // the agent answered: another endpoint reaches the same agent
		}
		errs = append(errs, fmt.Errorf("%s: %w", e, err))
	}
	if len(errs) == 0 {
		return errNoTrustedEndpoint
	}
	return errors.Join(errs...)
}

// httpError is a non-2xx answer.
type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.body)
}

func (c *agentClient) do(ctx context.Context, e Endpoint, method, path string, body, out any, auth bool) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(e.URL, "/")+path, rd)
	if err != nil {
		return err
	}
	if e.Host != "" {
		req.Host = e.Host
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &httpError{status: resp.StatusCode, body: strings.TrimSpace(string(data[:min(len(data), 300)]))}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: answer is not the JSON expected: %w", method, path, err)
	}
	return nil
}
