// Package scripts holds the shell and cloud-init files dropmesh puts on
// droplets, embedded so the binary carries them: the cloud-init user data
// template (cloud-init.yaml), the base snapshot's install script
// (install-agent.sh) and the join script (join.sh).
package scripts

import (
	"bytes"
	_ "embed"
	"fmt"
	"regexp"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

//go:embed cloud-init.yaml
var cloudInit string

// UserData is what a droplet's cloud-init needs to start its agent.
type UserData struct {
	NodeID      string
	ClusterName string
	// Env are the agent's settings as KEY=value lines (DROPMESH_*).
	Env []string
}

var envLine = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=[A-Za-z0-9_.,:/@%+=-]*$`)

// RenderUserData renders the cloud-init user data. Every value must be plain
// (no quotes, spaces or shell characters): they reach a shell and systemd.
func RenderUserData(d UserData) (string, error) {
	for _, e := range d.Env {
		if !envLine.MatchString(e) {
			return "", fmt.Errorf("user data: unsafe environment line %q", e)
		}
	}
	t, err := template.New("cloud-init").Parse(cloudInit)
	if err != nil {
		return "", fmt.Errorf("user data template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("render user data: %w", err)
	}
	return b.String(), nil
}

// AgentEnvPath is where the user data writes the agent's settings.
const AgentEnvPath = "/etc/dropmesh/agent.env"

// ParseUserData reads the agent settings back out of user data (local mode
// starts agents from them).
func ParseUserData(userData string) (map[string]string, error) {
	var doc struct {
		WriteFiles []struct {
			Path    string `json:"path"`
			Content string `json:"content"`
		} `json:"write_files"`
	}
	if err := yaml.Unmarshal([]byte(userData), &doc); err != nil {
		return nil, fmt.Errorf("user data: %w", err)
	}
	for _, f := range doc.WriteFiles {
		if f.Path != AgentEnvPath {
			continue
		}
		env := map[string]string{}
		for _, line := range strings.Split(f.Content, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("user data: bad line %q in %s", line, AgentEnvPath)
			}
			env[k] = v
		}
		return env, nil
	}
	return nil, fmt.Errorf("user data: no %s", AgentEnvPath)
}
