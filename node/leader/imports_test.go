package leader

import (
	"os/exec"
	"strings"
	"testing"
)

// The leader's packages stay leader-only: none imports the agent (node),
// the per-node Docker and edge code, or the API's HTTP stack; the cluster
// reaches them only through their narrow interfaces.
func TestLeaderPackagesImportRules(t *testing.T) {
	const mod = "github.com/dropmesh/dropmesh/"
	forbidden := []string{mod + "node", mod + "node/runtime", mod + "node/edge", mod + "node/api", mod + "ui", "github.com/gin-gonic/gin", "github.com/docker/docker/client"}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 5 {
		t.Fatalf("go list found %d packages under node/leader, want the loop and its duties", len(lines))
	}
	for _, line := range lines {
		f := strings.Fields(line)
		for _, dep := range f[1:] {
			for _, bad := range forbidden {
				if dep == bad {
					t.Errorf("%s depends on %s", f[0], dep)
				}
			}
		}
	}
}
