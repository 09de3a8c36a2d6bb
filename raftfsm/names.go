package raftfsm

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// ErrInvalid marks every validation failure, so callers (the API, the CLI, the
// UI) can map it to a 400 with errors.Is and show the wrapped message as is.
var ErrInvalid = errors.New("invalid")

// invalidf builds a validation error that wraps ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Every name below reaches a container name, a Docker label, an nginx config, a
// DNS record or a shell, so each pattern is strict ASCII: unicode look-alikes,
// separators and shell or config metacharacters never pass.
var (
	// slugPattern is used for workspace names, projects, environments and
	// services: lowercase DNS-label style, no underscores (the container name
	// joins the parts with '_').
	slugPattern        = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	workspaceIDPattern = regexp.MustCompile(`^[0-9a-f]{6}$`)
	nodeIDPattern      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	userNamePattern    = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,31}$`)
	envVarPattern      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	hostLabelPattern   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	snapshotPattern    = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,62}[a-z0-9])?$`)
	regionPattern      = regexp.MustCompile(`^[a-z]{3}[0-9]$`)
)

// ValidateSlug checks a workspace name, project, environment or service name.
// what names the field in the error ("project", "service", ...).
func ValidateSlug(what, s string) error {
	if !slugPattern.MatchString(s) {
		return invalidf("%s %q: use 1-32 lowercase letters, digits and '-', starting and ending with a letter or digit", what, s)
	}
	return nil
}

// ValidateWorkspaceID checks a workspace id: exactly six lowercase hex digits.
func ValidateWorkspaceID(s string) error {
	if !workspaceIDPattern.MatchString(s) {
		return invalidf("workspace id %q: want 6 lowercase hex digits", s)
	}
	return nil
}

// IsWorkspaceID reports whether s has the shape of a workspace id, so a CLI
// argument can be told apart from a workspace name.
func IsWorkspaceID(s string) bool { return workspaceIDPattern.MatchString(s) }

// ValidateNodeID checks a node id (also the droplet's host name).
func ValidateNodeID(s string) error {
	if !nodeIDPattern.MatchString(s) {
		return invalidf("node id %q: use 1-63 lowercase letters, digits and '-'", s)
	}
	return nil
}

// ValidateUserName checks the name of a UI user.
func ValidateUserName(s string) error {
	if !userNamePattern.MatchString(s) {
		return invalidf("user name %q: use a lowercase letter then up to 31 of a-z 0-9 _ . -", s)
	}
	return nil
}

// ValidateEnvVarName checks the name of a container environment variable.
func ValidateEnvVarName(s string) error {
	if !envVarPattern.MatchString(s) {
		return invalidf("environment variable name %q: use letters, digits and '_', not starting with a digit", s)
	}
	return nil
}

// ValidateEnvVarValue checks a container environment value: any text but NUL,
// up to 32 KiB.
func ValidateEnvVarValue(name, v string) error {
	if strings.ContainsRune(v, 0) {
		return invalidf("environment variable %s: value contains a NUL byte", name)
	}
	if len(v) > 32<<10 {
		return invalidf("environment variable %s: value longer than 32 KiB", name)
	}
	return nil
}

// ValidateSnapshotName checks the name a user gives a custom snapshot.
func ValidateSnapshotName(s string) error {
	if !snapshotPattern.MatchString(s) {
		return invalidf("snapshot name %q: use 1-64 lowercase letters, digits, '.' and '-'", s)
	}
	return nil
}

// ValidateRegion checks a DigitalOcean region slug such as nyc3 or fra1.
func ValidateRegion(s string) error {
	if !regionPattern.MatchString(s) {
		return invalidf("region %q: want a region slug such as nyc3 or fra1", s)
	}
	return nil
}

// ValidateHostname checks a public host name for a service or the UI. It must
// be lowercase ASCII (internationalised names in their xn-- form), have at
// least two labels, and may only use a wildcard as the whole leftmost label
// ("*.example.com") when allowWildcard is set.
func ValidateHostname(h string, allowWildcard bool) error {
	if h == "" {
		return invalidf("host name is empty")
	}
	if len(h) > 253 {
		return invalidf("host name %q: longer than 253 characters", h)
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return invalidf("host name %q: needs at least two labels, such as app.example.com", h)
	}
	for i, l := range labels {
		if l == "*" && i == 0 {
			if !allowWildcard {
				return invalidf("host name %q: wildcards are not allowed here", h)
			}
			continue
		}
		if !hostLabelPattern.MatchString(l) {
			return invalidf("host name %q: label %q must be 1-63 lowercase letters, digits and '-' (use the xn-- form for non-ASCII names)", h, l)
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return invalidf("host name %q: the last label cannot be numeric", h)
	}
	return nil
}

// ValidateImageRef checks a container image reference such as
// "127.0.0.1:5000/shop/web:1.4" or "redis:7".
func ValidateImageRef(ref string) error {
	if err := validateImageShape(ref); err != nil {
		return err
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return invalidf("image %q: %v", ref, err)
	}
	return nil
}

// validateImageShape is what ValidateImageRef checks without parsing the
// reference (which distribution/reference does, in a version that may
// differ between replicas): Apply checks only this.
func validateImageShape(ref string) error {
	if ref == "" {
		return invalidf("image is empty")
	}
	if len(ref) > 512 {
		return invalidf("image %q: longer than 512 characters", ref)
	}
	for _, r := range ref {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:/@+", r)) {
			return invalidf("image %q: %q is not allowed in an image reference", ref, r)
		}
	}
	return nil
}

// ValidateMountPath checks where a stateful service's volume is mounted.
func ValidateMountPath(p string) error {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
		return invalidf("volume path %q: want a clean absolute path other than /", p)
	}
	for _, r := range p {
		if r < 0x21 || r > 0x7e || strings.ContainsRune(`;{}"'\$`+"`", r) {
			return invalidf("volume path %q: only printable ASCII without quotes, braces, ';', '$' or '\\'", p)
		}
	}
	return nil
}

// ServiceName is the full name of a service: workspace / project / env /
// service. Workspace is a workspace id or name as the user wrote it; the leader
// resolves names to ids.
type ServiceName struct {
	Workspace string `json:"workspace,omitempty"`
	Project   string `json:"project"`
	Env       string `json:"env"`
	Service   string `json:"service"`
}

// ParseServiceName parses "[workspace/]project/env/service", the form the CLI
// and the API use. An absent workspace stays empty (the default workspace).
func ParseServiceName(s string) (ServiceName, error) {
	parts := strings.Split(s, "/")
	var n ServiceName
	switch len(parts) {
	case 3:
		n = ServiceName{Project: parts[0], Env: parts[1], Service: parts[2]}
	case 4:
		n = ServiceName{Workspace: parts[0], Project: parts[1], Env: parts[2], Service: parts[3]}
	default:
		return ServiceName{}, invalidf("service name %q: want [workspace/]project/env/service", s)
	}
	return n, n.Validate()
}

// Validate checks every part of the name.
func (n ServiceName) Validate() error {
	if n.Workspace != "" && !IsWorkspaceID(n.Workspace) {
		if err := ValidateSlug("workspace", n.Workspace); err != nil {
			return err
		}
	}
	if err := ValidateSlug("project", n.Project); err != nil {
		return err
	}
	if err := ValidateSlug("environment", n.Env); err != nil {
		return err
	}
	return ValidateSlug("service", n.Service)
}

// String renders the name as the CLI writes it.
func (n ServiceName) String() string {
	if n.Workspace == "" {
		return n.Project + "/" + n.Env + "/" + n.Service
	}
	return n.Workspace + "/" + n.Project + "/" + n.Env + "/" + n.Service
}

// ServiceKey is the key of a service in the state: "wsid/project/env/service",
// always with the resolved workspace id.
func ServiceKey(workspaceID, project, env, service string) string {
	return workspaceID + "/" + project + "/" + env + "/" + service
}

// ContainerBaseName is the Docker container name of a service's instance:
// "<ws>_<project>_<env>_<service>" (for example 9fe5e6_shop_prod_redis).
func ContainerBaseName(workspaceID, project, env, service string) string {
	return workspaceID + "_" + project + "_" + env + "_" + service
}
