package bootstrap

import (
	"fmt"
	"strconv"

	"sigs.k8s.io/yaml"

	"github.com/dropmesh/dropmesh/node/bootclaim"
	"github.com/dropmesh/dropmesh/scripts"
)

// SeedNodeID is the seed's node id; the leader names the next ones node-2,
// node-3, ...
const SeedNodeID = "node-1"

// seedParams is everything the seed's user data carries: settings and the
// one-time bootstrap token, no secret. The tokens and the admin password
// reach the seed over its API once it runs (claimSeed), because anything
// on a droplet can read its user data from the metadata service.
type seedParams struct {
	ClusterName, ClusterID string
	BootstrapToken         string
	Domain                 string
	Nodes                  int
	Snapshot               string
	Region, Size           string
	DOBaseURL, CFBaseURL   string
}

// seedEnv is the seed agent's settings (agent.env).
func seedEnv(p seedParams) []string {
	env := []string{
		"DROPMESH_NODE_ID=" + SeedNodeID,
		"DROPMESH_CLUSTER_NAME=" + p.ClusterName,
		"DROPMESH_CLUSTER_ID=" + p.ClusterID,
		"DROPMESH_BOOTSTRAP=true",
		"DROPMESH_BOOTSTRAP_TOKEN=" + p.BootstrapToken,
		"DROPMESH_DOMAIN=" + p.Domain,
		"DROPMESH_NODES=" + strconv.Itoa(p.Nodes),
		"DROPMESH_BASE_SNAPSHOT=" + p.Snapshot,
		"DROPMESH_REGION=" + p.Region,
		"DROPMESH_DROPLET_SIZE=" + p.Size,
	}
	if p.DOBaseURL != "" {
		env = append(env, "DROPMESH_DO_BASE_URL="+p.DOBaseURL)
	}
	if p.CFBaseURL != "" {
		env = append(env, "DROPMESH_CF_BASE_URL="+p.CFBaseURL)
	}
	return env
}

// seedUserData renders the seed's cloud-init: the cluster's user data
// template (agent.env, then the unit started).
func seedUserData(p seedParams) (string, error) {
	if err := bootclaim.CheckHex("bootstrap token", p.BootstrapToken); err != nil {
		return "", fmt.Errorf("seed user data: %w", err)
	}
	ud, err := scripts.RenderUserData(scripts.UserData{NodeID: SeedNodeID, ClusterName: p.ClusterName, Env: seedEnv(p)})
	if err != nil {
		return "", fmt.Errorf("seed user data: %w", err)
	}
	return ud, nil
}

// userDataFiles returns the write_files of user data by path.
func userDataFiles(userData string) (map[string]string, error) {
	var doc struct {
		WriteFiles []struct {
			Path    string `json:"path"`
			Content string `json:"content"`
		} `json:"write_files"`
	}
	if err := yaml.Unmarshal([]byte(userData), &doc); err != nil {
		return nil, fmt.Errorf("user data: %w", err)
	}
	out := map[string]string{}
	for _, f := range doc.WriteFiles {
		out[f.Path] = f.Content
	}
	return out, nil
}
