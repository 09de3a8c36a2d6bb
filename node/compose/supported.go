package compose

import (
	"fmt"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/tree"
)

// supported lists the Compose attributes dropmesh maps (see doc.go), as
// compose-go attribute paths. Every other attribute in a file is reported
// by compose-go's check, so a key added to the specification later is
// reported until it is deliberately mapped here. Paths are of the model
// after compose-go's canonical form (short syntaxes expanded, defaults set).
var supported = []tree.Path{
	"name",
	"services.*.image",
	"services.*.build.context",
	"services.*.build.dockerfile",
	"services.*.ports.[].target",
	"services.*.ports.[].published",
	"services.*.ports.[].protocol",
	"services.*.ports.[].mode",
	"services.*.expose",
	"services.*.environment.*",
	"services.*.env_file.[].path",
	"services.*.env_file.[].required",
	"services.*.env_file.[].format",
	"services.*.depends_on.*.condition",
	"services.*.depends_on.*.required",
	"services.*.deploy.replicas",
	"services.*.deploy.resources.limits.memory",
	"services.*.deploy.resources.limits.cpus",
	"services.*.scale",
	"services.*.mem_limit",
	"services.*.cpus",
	"services.*.healthcheck.test",
	"services.*.healthcheck.interval",
	"services.*.healthcheck.disable",
	"services.*.labels.*",
	"services.*.command",
	"services.*.entrypoint",
	"services.*.user",
	"services.*.working_dir",
	// cap_add widens the container's confinement: the API deploys such a
	// spec for an admin only. privileged, cap_drop and security_opt stay
	// unsupported (every container is confined the same way).
	"services.*.cap_add",
	"services.*.restart",
	"services.*.profiles",
	// Volumes are looked at one by one in the mapping (bind mounts and
	// volumes of stateless services get their own warning there).
	"services.*.volumes.[].type",
	"services.*.volumes.[].source",
	"services.*.volumes.[].target",
	"services.*.volumes.[].volume",
	"services.*.volumes.[].bind",
	"services.*.volumes.[].bind.*",
	"volumes.*",
	"volumes.*.name",
}

// hints say what to do instead of an unsupported key, where there is
// something to say.
var hints = map[string]string{
	"networks":       "every service reaches the others of its project/environment by name on dropmesh's own network of the workspace",
	"container_name": "dropmesh names containers itself",
	"secrets":        "pass secrets as environment variables; names like *_PASSWORD or *_TOKEN are sealed",
	"links":          "depend on the database with depends_on instead",
	"extra_hosts":    "name other services by the address injected through depends_on",
	"network_mode":   "",
}

// findingsToWarnings turns compose-go's findings into warnings naming each
// key and its service, in path order.
func findingsToWarnings(findings []loader.UnsupportedAttribute) []string {
	var out []string
	for _, f := range findings {
		// Split on the path's own separators: a key may hold a dot.
		var parts []string
		for _, p := range f.Path.Parts() {
			parts = append(parts, tree.Path(p).String())
		}
		if parts[0] == "services" && len(parts) >= 3 {
			key := strings.ReplaceAll(strings.Join(parts[2:], "."), ".[]", "[]")
			msg := fmt.Sprintf("service %s: %s is not supported; ignored", parts[1], key)
			if h := hints[parts[2]]; h != "" && len(parts) == 3 {
				msg += " (" + h + ")"
			}
			out = append(out, msg)
			continue
		}
		key := strings.Join(parts, ".")
		msg := fmt.Sprintf("%s (top level) is not supported; ignored", key)
		if h := hints[parts[0]]; h != "" && len(parts) == 1 {
			msg += " (" + h + ")"
		}
		out = append(out, msg)
	}
	return out
}
