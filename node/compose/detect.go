package compose

import (
	"path/filepath"
	"regexp"

	"github.com/dropmesh/dropmesh/raftfsm"
	"sigs.k8s.io/yaml"
)

// datastorePort returns the default port of the datastore image runs, or 0
// when image is not a recognised database or cache (raftfsm decides, as it
// does for node's stateful injection).
func datastorePort(image string) int {
	return raftfsm.DetectDatastore(image, nil, 0).DefaultPort()
}

// composeFileName matches the names Docker Compose looks for and the usual
// override files: compose.yaml, docker-compose.yml, compose.prod.yaml,
// docker-compose.override.yml, app.compose.yaml.
var composeFileName = regexp.MustCompile(`^((docker-)?compose([.-][A-Za-z0-9_.-]+)?|[A-Za-z0-9_.-]+\.compose)\.ya?ml$`)

// IsComposeFile reports whether a file is a Compose file rather than a
// dropmesh spec: by its name, else by its content (a top-level "services"
// mapping, which a dropmesh spec never has).
func IsComposeFile(p string, data []byte) bool {
	if composeFileName.MatchString(filepath.Base(p)) {
		return true
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return false
	}
	services, ok := doc["services"].(map[string]any)
	return ok && len(services) > 0
}
