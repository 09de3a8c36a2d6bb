package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/apiclient"
)

// FileConfig is the CLI's config file, $XDG_CONFIG_HOME/dropmesh/config.json.
type FileConfig struct {
	// Addr is one agent address or a comma-separated list.
	Addr  string   `json:"addr,omitempty"`
	Addrs []string `json:"addrs,omitempty"`
	// APIKey is the cluster's API key.
	APIKey string `json:"api_key,omitempty"`
	// CACert is the path of the cluster CA's certificate (PEM) the agents'
	// API certificates are checked against.
	CACert string `json:"cacert,omitempty"`
}

// conn holds the connection flags of a command tree.
type conn struct {
	e      *env
	addr   string
	key    string
	cacert string
	stale  bool
}

// connFlags adds --addr and --api-key to cmd and its subcommands.
func (e *env) connFlags(cmd *cobra.Command) *conn {
	c := &conn{e: e}
	cmd.PersistentFlags().StringVar(&c.addr, "addr", "", "agent API address(es), comma-separated (default $DROPMESH_ADDR)")
	cmd.PersistentFlags().StringVar(&c.key, "api-key", "", "cluster API key (default $DROPMESH_API_KEY)")
	cmd.PersistentFlags().StringVar(&c.cacert, "cacert", "", "the cluster CA's certificate (PEM file) to verify the agents' API with (default $DROPMESH_CACERT; none: the system's roots)")
	cmd.PersistentFlags().BoolVar(&c.stale, "stale", false, "read the answering agent's replica without asking the leader (faster, may be behind; reads are linearizable without it)")
	return c
}

// configPath is where the config file is read from.
func (c *conn) configPath() (string, error) {
	dir, err := c.e.configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "dropmesh", "config.json"), nil
}

// readFileConfig reads the config file; a missing file is no error.
func (c *conn) readFileConfig() (FileConfig, string, error) {
	path, err := c.configPath()
	if err != nil {
		return FileConfig{}, "", nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return FileConfig{}, path, nil
	}
	if err != nil {
		return FileConfig{}, path, fmt.Errorf("read config %s: %w", path, err)
	}
	var fc FileConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return FileConfig{}, path, fmt.Errorf("config %s: %w", path, err)
	}
	return fc, path, nil
}

// resolve finds the addresses and the key: flags, then the environment,
// then the config file.
func (c *conn) resolve() ([]string, string, error) {
	fc, path, err := c.readFileConfig()
	if err != nil {
		return nil, "", err
	}
	addr := firstNonEmpty(c.addr, c.e.getenv("DROPMESH_ADDR"), fc.Addr)
	var addrs []string
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		addrs = fc.Addrs
	}
	key := firstNonEmpty(c.key, c.e.getenv("DROPMESH_API_KEY"), fc.APIKey)
	if path == "" {
		path = "$XDG_CONFIG_HOME/dropmesh/config.json"
	}
	var missing []string
	if len(addrs) == 0 {
		missing = append(missing, "no agent address (DROPMESH_ADDR or --addr)")
	}
	if key == "" {
		missing = append(missing, "no API key (DROPMESH_API_KEY or --api-key)")
	}
	if len(missing) > 0 {
		return nil, "", fmt.Errorf("%s; set DROPMESH_ADDR and DROPMESH_API_KEY (for a local mesh: . .dropmesh/env), pass --addr and --api-key, or write {\"addr\": ..., \"api_key\": ...} to %s",
			strings.Join(missing, " and "), path)
	}
	return addrs, key, nil
}

// caCert reads the CA certificate named by --cacert, DROPMESH_CACERT or the
// config file; none is no error (the system's roots verify the API).
func (c *conn) caCert() ([]byte, error) {
	fc, _, err := c.readFileConfig()
	if err != nil {
		return nil, err
	}
	path := firstNonEmpty(c.cacert, c.e.getenv("DROPMESH_CACERT"), fc.CACert)
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("the cluster CA certificate (--cacert / DROPMESH_CACERT): %w", err)}
	}
	return data, nil
}

// client builds the API client.
func (c *conn) client() (*apiclient.Client, error) {
	addrs, key, err := c.resolve()
	if err != nil {
		return nil, err
	}
	ca, err := c.caCert()
	if err != nil {
		return nil, err
	}
	cl, err := apiclient.New(apiclient.Config{Addrs: addrs, APIKey: key, CACert: ca, Timeout: 30 * time.Second, RetryFor: 30 * time.Second, Stale: c.stale})
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	return cl, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
