package bootstrap

import (
	"fmt"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/dropmesh/dropmesh/node"
	"github.com/dropmesh/dropmesh/scripts"
)

// SeedAdminPasswordPath is where the seed's user data puts the admin
// password the CLI made (mode 0600); DROPMESH_ADMIN_PASSWORD_FILE points
// the seed at it.
const SeedAdminPasswordPath = "/etc/dropmesh/admin-password"

// SeedNodeID is the seed's node id; the leader names the next ones node-2,
// node-3, ...
const SeedNodeID = "node-1"

// seedParams is everything the seed's user data carries.
type seedParams struct {
	ClusterName, ClusterID string
	Secret                 node.ClusterSecret
	DOToken, CFToken       string
	Domain                 string
	Nodes                  int
	Snapshot               string
	Region, Size           string
	DOBaseURL, CFBaseURL   string
	AdminPassword          string
}

// seedEnv is the seed agent's settings (agent.env).
func seedEnv(p seedParams) []string {
	env := []string{
		"DROPMESH_NODE_ID=" + SeedNodeID,
		"DROPMESH_CLUSTER_NAME=" + p.ClusterName,
		"DROPMESH_CLUSTER_ID=" + p.ClusterID,
		"DROPMESH_BOOTSTRAP=true",
		"DROPMESH_CLUSTER_SECRET=" + p.Secret.String(),
		"DROPMESH_DO_TOKEN=" + p.DOToken,
		"DROPMESH_CF_TOKEN=" + p.CFToken,
		"DROPMESH_DOMAIN=" + p.Domain,
		"DROPMESH_NODES=" + strconv.Itoa(p.Nodes),
		"DROPMESH_BASE_SNAPSHOT=" + p.Snapshot,
		"DROPMESH_REGION=" + p.Region,
		"DROPMESH_DROPLET_SIZE=" + p.Size,
		"DROPMESH_ADMIN_PASSWORD_FILE=" + SeedAdminPasswordPath,
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
// template (agent.env, then the unit started) plus a write_files entry that
// puts the admin password where DROPMESH_ADMIN_PASSWORD_FILE says.
func seedUserData(p seedParams) (string, error) {
	ud, err := scripts.RenderUserData(scripts.UserData{NodeID: SeedNodeID, ClusterName: p.ClusterName, Env: seedEnv(p)})
	if err != nil {
		return "", fmt.Errorf("seed user data: %w", err)
	}
	return addFile(ud, SeedAdminPasswordPath, p.AdminPassword)
}

// addFile adds a root-only file to user data's write_files list, leaving the
// rest of the text (and its comments) as it is, and checks the result.
func addFile(userData, path, content string) (string, error) {
	if strings.ContainsAny(content, "\n\r") || strings.TrimSpace(content) != content || content == "" {
		return "", fmt.Errorf("user data file %s: content must be one non-empty line", path)
	}
	const list = "\nwrite_files:\n"
	i := strings.Index(userData, list)
	if i < 0 {
		return "", fmt.Errorf("user data file %s: the template has no write_files list", path)
	}
	entry := fmt.Sprintf("  - path: %s\n    owner: root:root\n    permissions: \"0600\"\n    content: |\n      %s\n", path, content)
	out := userData[:i+len(list)] + entry + userData[i+len(list):]
	files, err := userDataFiles(out)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(files[path]) != content {
		return "", fmt.Errorf("user data file %s: did not survive parsing", path)
	}
	if _, err := scripts.ParseUserData(out); err != nil {
		return "", err
	}
	return out, nil
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
