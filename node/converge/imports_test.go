package converge

import (
	"os/exec"
	"strings"
	"testing"
)

// Per-node code stays apart from the leader's: converge imports neither
// the agent (node) nor any leader duty (node/leader/...), nor the API.
func TestConvergeImportRules(t *testing.T) {
	const mod = "github.com/dropmesh/dropmesh/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, dep := range f[1:] {
			if dep == mod+"node" || dep == mod+"node/leader" || strings.HasPrefix(dep, mod+"node/leader/") || dep == mod+"node/api" || dep == mod+"ui" {
				t.Errorf("%s depends on %s", f[0], dep)
			}
		}
	}
}
