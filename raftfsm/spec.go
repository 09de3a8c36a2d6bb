package raftfsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"sigs.k8s.io/yaml"
)

// Kind is what sort of workload a service is.
type Kind string

// The kinds of service.
const (
	// KindService has a port and is routed by the edge.
	KindService Kind = "service"
	// KindWorker has no port and runs continuously.
	KindWorker Kind = "worker"
	// KindCron runs to completion on a schedule.
	KindCron Kind = "cron"
	// KindStateful is a database or cache: pinned to one node with a volume,
	// published only on the private network.
	KindStateful Kind = "stateful"
)

// Defaults and limits of a service spec.
const (
	DefaultWorkspaceName = "default"
	DefaultEnvironment   = "prod"
	MaxReplicas          = 100
	MaxSpecBytes         = 1 << 20
	DefaultStartTimeout  = 60 * time.Second
	DefaultStartChecks   = 3
	DefaultVolumePath    = "/data"
)

// HealthSpec tunes a service's health checks.
type HealthSpec struct {
	// Path is probed with HTTP GET; empty means a TCP connect.
	Path string `json:"path,omitempty"`
	// Interval overrides the cluster's HEALTH_CHECK_INTERVAL for this service.
	Interval Duration `json:"interval,omitempty"`
	// StartTimeout bounds how long a new generation may take to become healthy.
	StartTimeout Duration `json:"start_timeout,omitempty"`
	// StartChecks is how many consecutive passing checks make a new generation healthy.
	StartChecks int `json:"start_checks,omitempty"`
	// LogPattern overrides the regular expression (RE2, at most
	// MaxLogPatternLen bytes) that marks error lines; JSON lines are still
	// judged by their level field.
	LogPattern string `json:"log_pattern,omitempty"`
	// Command is run inside the container (Docker exec) instead of the
	// port probe; exit code 0 is healthy. A Compose `CMD-SHELL` test is
	// ["/bin/sh", "-c", "..."].
	Command []string `json:"command,omitempty"`
}

// NamedVolume is a further named volume of a stateful service: node-local,
// kept on the node the service is pinned to.
type NamedVolume struct {
	// Name tells the volumes of one service apart (1-32 of a-z, 0-9, '-').
	Name string `json:"name"`
	// Path is where it is mounted in the container.
	Path string `json:"path"`
}

// Restart policies a spec may ask for (Compose's restart:). dropmesh
// restarts unhealthy containers in every case; these add Docker's own
// immediate restart of a container that exits.
const (
	RestartNo            = "no"
	RestartAlways        = "always"
	RestartUnlessStopped = "unless-stopped"
	RestartOnFailure     = "on-failure"
)

// MaxLogPatternLen bounds health.log_pattern: long enough for any real
// pattern, short enough that compiling it on every node costs nothing.
const MaxLogPatternLen = 1024

// ServiceSpec is what a user submits to deploy a service (YAML or JSON).
// Secrets arrive in plain text and are sealed by the leader before the spec
// enters the log: a spec in the state has SealedSecrets and no Secrets.
type ServiceSpec struct {
	Workspace  string   `json:"workspace,omitempty"`
	Project    string   `json:"project"`
	Env        string   `json:"env"`
	Service    string   `json:"service"`
	Kind       Kind     `json:"kind"`
	Image      string   `json:"image,omitempty"`
	Build      string   `json:"build,omitempty"`
	Dockerfile string   `json:"dockerfile,omitempty"`
	Command    []string `json:"command,omitempty"`
	// Entrypoint overrides the image's entrypoint.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// User runs the process as this user ("name", "uid" or "uid:gid");
	// root is refused.
	User string `json:"user,omitempty"`
	// WorkingDir overrides the image's working directory.
	WorkingDir string `json:"working_dir,omitempty"`
	// CapAdd are Linux capabilities the containers keep beyond the
	// default set (node/runtime's DefaultCapabilities): "NET_ADMIN".
	// Widens the confinement, so only an admin deploys such a spec.
	CapAdd []string `json:"cap_add,omitempty"`
	Port   int      `json:"port,omitempty"`
	// Ports are further container ports the service listens on: other
	// services reach them by the service's name; only Port is routed by
	// the edge.
	Ports []int    `json:"ports,omitempty"`
	Hosts []string `json:"hosts,omitempty"`
	// Proxied puts the DNS records behind Cloudflare's proxy (TLS at
	// Cloudflare); nil means true.
	Proxied       *bool             `json:"proxied,omitempty"`
	Replicas      int               `json:"replicas,omitempty"`
	Nodes         []string          `json:"nodes,omitempty"`
	Vars          map[string]string `json:"environment,omitempty"`
	Secrets       map[string]string `json:"secrets,omitempty"`
	SealedSecrets map[string]Sealed `json:"sealed_secrets,omitempty"`
	Schedule      string            `json:"schedule,omitempty"`
	Health        HealthSpec        `json:"health"`
	// Uses names stateful services of the same project and environment whose
	// address is injected into this one's environment.
	Uses []string `json:"uses,omitempty"`
	// Volume is where a stateful service's named volume is mounted.
	Volume string `json:"volume,omitempty"`
	// Volumes are a stateful service's further named volumes.
	Volumes []NamedVolume `json:"volumes,omitempty"`
	// Restart is Docker's restart policy on exit (Restart* constants);
	// "" is no.
	Restart     string  `json:"restart,omitempty"`
	MaxParallel int     `json:"max_parallel,omitempty"`
	Memory      string  `json:"memory,omitempty"`
	CPUs        float64 `json:"cpus,omitempty"`
	// TLS tunes automatic HTTPS for the hosts (see TLSSpec); nil is the
	// default.
	TLS *TLSSpec `json:"tls,omitempty" proto:"52"`
}

// specDocument is the wire form of a spec. It exists because the DESIGN's
// example writes both the environment name and the variables under "env"; we
// accept either form of "env" and "environment" (a string is the environment
// name, a map the variables) while rejecting every unknown field by name.
type specDocument struct {
	Workspace     string            `json:"workspace"`
	Project       string            `json:"project"`
	Env           json.RawMessage   `json:"env"`
	Environment   json.RawMessage   `json:"environment"`
	Service       string            `json:"service"`
	Name          string            `json:"name"`
	Kind          Kind              `json:"kind"`
	Image         string            `json:"image"`
	Build         string            `json:"build"`
	Dockerfile    string            `json:"dockerfile"`
	Command       []string          `json:"command"`
	Entrypoint    []string          `json:"entrypoint"`
	User          string            `json:"user"`
	WorkingDir    string            `json:"working_dir"`
	CapAdd        []string          `json:"cap_add"`
	Port          int               `json:"port"`
	Ports         []int             `json:"ports"`
	Hosts         []string          `json:"hosts"`
	Proxied       *bool             `json:"proxied"`
	Replicas      int               `json:"replicas"`
	Nodes         []string          `json:"nodes"`
	Secrets       map[string]string `json:"secrets"`
	SealedSecrets map[string]Sealed `json:"sealed_secrets"`
	Schedule      string            `json:"schedule"`
	Health        *HealthSpec       `json:"health"`
	Uses          []string          `json:"uses"`
	Volume        string            `json:"volume"`
	Volumes       []NamedVolume     `json:"volumes"`
	Restart       string            `json:"restart"`
	MaxParallel   int               `json:"max_parallel"`
	Memory        string            `json:"memory"`
	CPUs          float64           `json:"cpus"`
	TLS           *TLSSpec          `json:"tls"`
}

// DecodeSpec reads one service spec in YAML or JSON, rejecting unknown fields
// (named in the error), wrong types and documents over MaxSpecBytes. It does
// not validate the values: call Normalize and Validate.
func DecodeSpec(r io.Reader) (ServiceSpec, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSpecBytes+1))
	if err != nil {
		return ServiceSpec{}, fmt.Errorf("read spec: %w", err)
	}
	if len(data) > MaxSpecBytes {
		return ServiceSpec{}, invalidf("spec is larger than %d bytes", MaxSpecBytes)
	}
	return DecodeSpecBytes(data)
}

// DecodeSpecBytes is DecodeSpec over a byte slice.
func DecodeSpecBytes(data []byte) (ServiceSpec, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return ServiceSpec{}, invalidf("spec is empty")
	}
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return ServiceSpec{}, invalidf("spec is not valid YAML or JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(jsonData))
	dec.DisallowUnknownFields()
	var doc specDocument
	if err := dec.Decode(&doc); err != nil {
		return ServiceSpec{}, invalidf("spec: %s", describeJSONError(err))
	}
	if dec.More() {
		return ServiceSpec{}, invalidf("spec: more than one document")
	}
	return doc.spec()
}

func (d specDocument) spec() (ServiceSpec, error) {
	s := ServiceSpec{
		Workspace: d.Workspace, Project: d.Project, Service: d.Service, Kind: d.Kind,
		Image: d.Image, Build: d.Build, Dockerfile: d.Dockerfile, Command: d.Command,
		Port: d.Port, Hosts: d.Hosts, Proxied: d.Proxied, Replicas: d.Replicas, Nodes: d.Nodes,
		Secrets: d.Secrets, SealedSecrets: d.SealedSecrets, Schedule: d.Schedule, Uses: d.Uses,
		Volume: d.Volume, MaxParallel: d.MaxParallel, Memory: d.Memory, CPUs: d.CPUs,
		Entrypoint: d.Entrypoint, User: d.User, WorkingDir: d.WorkingDir, CapAdd: d.CapAdd, Ports: d.Ports, Volumes: d.Volumes, Restart: d.Restart,
		TLS: d.TLS,
	}
	if d.Name != "" {
		if s.Service != "" && s.Service != d.Name {
			return ServiceSpec{}, invalidf("spec: both service %q and name %q given", s.Service, d.Name)
		}
		s.Service = d.Name
	}
	if d.Health != nil {
		s.Health = *d.Health
	}
	for _, f := range []struct {
		field string
		raw   json.RawMessage
	}{{"env", d.Env}, {"environment", d.Environment}} {
		if len(f.raw) == 0 || string(f.raw) == "null" {
			continue
		}
		var name string
		var vars map[string]string
		switch {
		case json.Unmarshal(f.raw, &name) == nil:
			if s.Env != "" {
				return ServiceSpec{}, invalidf("spec: the environment name is given twice (env and environment)")
			}
			s.Env = name
		case json.Unmarshal(f.raw, &vars) == nil:
			if s.Vars != nil {
				return ServiceSpec{}, invalidf("spec: the variables are given twice (env and environment)")
			}
			s.Vars = vars
		default:
			return ServiceSpec{}, invalidf("spec: field %q must be an environment name or a map of string variables", f.field)
		}
	}
	return s, nil
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return fmt.Sprintf("the document must be a mapping of fields, not %s", typeErr.Value)
		}
		return fmt.Sprintf("field %q must be %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	msg := err.Error()
	return strings.TrimPrefix(msg, "json: ")
}

// Normalize fills in defaults: kind, environment, replicas, health timings,
// the stateful volume path. It is idempotent.
func (s *ServiceSpec) Normalize() {
	if s.Kind == "" {
		switch {
		case s.Schedule != "":
			s.Kind = KindCron
		case s.Port == 0 && len(s.Hosts) == 0:
			s.Kind = KindWorker
		default:
			s.Kind = KindService
		}
	}
	if s.Env == "" {
		s.Env = DefaultEnvironment
	}
	if len(s.Nodes) > 0 && s.Replicas == 0 {
		s.Replicas = len(s.Nodes)
	}
	if s.Replicas == 0 {
		s.Replicas = 1
	}
	if s.Kind == KindStateful && s.Volume == "" {
		s.Volume = DefaultVolumePath
	}
	if s.Health.StartTimeout == 0 {
		s.Health.StartTimeout = Duration(DefaultStartTimeout)
	}
	if s.Health.StartChecks == 0 {
		s.Health.StartChecks = DefaultStartChecks
	}
	if len(s.Vars) == 0 {
		s.Vars = nil
	}
	if len(s.Secrets) == 0 {
		s.Secrets = nil
	}
	if len(s.SealedSecrets) == 0 {
		s.SealedSecrets = nil
	}
	var caps []string // a new slice: the caller's spec may share the old one
	for _, c := range s.CapAdd {
		caps = append(caps, canonicalCapability(c))
	}
	slices.Sort(caps)
	s.CapAdd = slices.Compact(caps)
}

// Name returns the service's name as the user wrote it.
func (s ServiceSpec) Name() ServiceName {
	return ServiceName{Workspace: s.Workspace, Project: s.Project, Env: s.Env, Service: s.Service}
}

// IsProxied reports whether the service's DNS records go through Cloudflare's proxy.
func (s ServiceSpec) IsProxied() bool { return s.Proxied == nil || *s.Proxied }

// Routed reports whether the edge routes hosts to this service.
func (s ServiceSpec) Routed() bool { return s.Kind == KindService && s.Port > 0 }

// Validate checks a normalized spec completely; every error wraps ErrInvalid
// and names the field. The endpoints (the controller, before it commits)
// call it. Apply calls only validateShape: the image reference and the
// cron schedule are parsed by libraries (distribution/reference,
// robfig/cron) whose versions may differ between the replicas of a
// rolling upgrade, and a replica that refused what another applied would
// diverge from it.
func (s ServiceSpec) Validate() error {
	if err := s.validateShape(); err != nil {
		return err
	}
	if s.Image != "" && s.Build == "" {
		if err := ValidateImageRef(s.Image); err != nil {
			return err
		}
	}
	if s.Kind == KindCron {
		if err := ValidateSchedule(s.Schedule); err != nil {
			return err
		}
	}
	return nil
}

// validateShape is Validate without what a library parses: the checks
// every release makes the same way, so Apply may make them.
func (s ServiceSpec) validateShape() error {
	if err := s.Name().Validate(); err != nil {
		return err
	}
	switch s.Kind {
	case KindService, KindWorker, KindCron, KindStateful:
	default:
		return invalidf("kind %q: want service, worker, cron or stateful", s.Kind)
	}
	switch {
	case s.Image == "" && s.Build == "":
		return invalidf("image: give an image or a build context")
	case s.Image != "" && s.Build != "":
		return invalidf("image and build: give one, not both")
	case s.Image != "":
		if err := validateImageShape(s.Image); err != nil {
			return err
		}
	default:
		if err := ValidateContextDigest(s.Build); err != nil {
			return err
		}
	}
	if s.Dockerfile != "" && (strings.Contains(s.Dockerfile, "..") || strings.HasPrefix(s.Dockerfile, "/") || strings.ContainsAny(s.Dockerfile, " \t\n;'\"$`\\")) {
		return invalidf("dockerfile %q: want a relative path inside the context", s.Dockerfile)
	}
	if err := validateArgs("command", s.Command); err != nil {
		return err
	}
	if err := s.validateProcess(); err != nil {
		return err
	}
	if err := s.validateKind(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, h := range s.Hosts {
		if err := ValidateHostname(h, true); err != nil {
			return err
		}
		if seen[h] {
			return invalidf("hosts: %q listed twice", h)
		}
		seen[h] = true
	}
	if s.Replicas < 1 || s.Replicas > MaxReplicas {
		return invalidf("replicas %d: want 1 to %d", s.Replicas, MaxReplicas)
	}
	if len(s.Nodes) > 0 {
		if len(s.Nodes) != s.Replicas {
			return invalidf("nodes: %d nodes listed but replicas is %d", len(s.Nodes), s.Replicas)
		}
		dup := map[string]bool{}
		for _, n := range s.Nodes {
			if err := ValidateNodeID(n); err != nil {
				return err
			}
			if dup[n] {
				return invalidf("nodes: %q listed twice", n)
			}
			dup[n] = true
		}
	}
	for k, v := range s.Vars {
		if err := ValidateEnvVarName(k); err != nil {
			return err
		}
		if err := ValidateEnvVarValue(k, v); err != nil {
			return err
		}
	}
	for k, v := range s.Secrets {
		if err := ValidateEnvVarName(k); err != nil {
			return err
		}
		if err := ValidateEnvVarValue(k, v); err != nil {
			return err
		}
		if _, ok := s.Vars[k]; ok {
			return invalidf("secrets: %s is also a plain variable", k)
		}
	}
	for k := range s.SealedSecrets {
		if err := ValidateEnvVarName(k); err != nil {
			return err
		}
	}
	if len(s.Vars)+len(s.Secrets) > 512 {
		return invalidf("environment: at most 512 variables")
	}
	for _, u := range s.Uses {
		if err := ValidateSlug("uses", u); err != nil {
			return err
		}
		if u == s.Service {
			return invalidf("uses: a service cannot use itself")
		}
	}
	if err := s.Health.validate(); err != nil {
		return err
	}
	if s.MaxParallel < 0 || s.MaxParallel > MaxReplicas {
		return invalidf("max_parallel %d: want 0 (one at a time) to %d", s.MaxParallel, MaxReplicas)
	}
	if _, err := s.MemoryBytes(); err != nil {
		return err
	}
	if s.CPUs < 0 || s.CPUs > 256 {
		return invalidf("cpus %v: want 0 (no limit) to 256", s.CPUs)
	}
	return nil
}

func (s ServiceSpec) validateKind() error {
	switch s.Kind {
	case KindService:
		if s.Port < 1 || s.Port > 65535 {
			return invalidf("port %d: a service needs a port from 1 to 65535", s.Port)
		}
	case KindStateful:
		if s.Port < 1 || s.Port > 65535 {
			return invalidf("port %d: a stateful service needs a port from 1 to 65535", s.Port)
		}
		if len(s.Hosts) > 0 {
			return invalidf("hosts: a stateful service is never published on a public host")
		}
		if s.Replicas != 1 {
			return invalidf("replicas %d: a stateful service runs exactly one replica", s.Replicas)
		}
		if err := ValidateMountPath(s.Volume); err != nil {
			return err
		}
	case KindWorker, KindCron:
		if s.Port != 0 || len(s.Ports) > 0 {
			return invalidf("port: a %s has no port", s.Kind)
		}
		if len(s.Hosts) > 0 {
			return invalidf("hosts: a %s is not routed", s.Kind)
		}
	}
	if s.Kind == KindCron {
		if s.Schedule == "" {
			return invalidf("schedule: a cron service needs a schedule such as \"*/5 * * * *\"")
		}
	} else if s.Schedule != "" {
		return invalidf("schedule: only a cron service has a schedule")
	}
	if s.Kind != KindStateful && (s.Volume != "" || len(s.Volumes) > 0) {
		return invalidf("volume: only a stateful service has a volume")
	}
	return nil
}

// validateArgs checks a command line (command, entrypoint, health.command).
func validateArgs(field string, args []string) error {
	if len(args) > 64 {
		return invalidf("%s: at most 64 arguments", field)
	}
	for _, a := range args {
		if strings.ContainsRune(a, 0) || len(a) > 4096 {
			return invalidf("%s: arguments must be under 4 KiB without NUL bytes", field)
		}
	}
	return nil
}

// userPattern is a user name or id, with an optional group name or id.
var userPattern = regexp.MustCompile(`^([a-z_][a-z0-9_.-]{0,31}|[0-9]{1,10})(:([a-z_][a-z0-9_.-]{0,31}|[0-9]{1,10}))?$`)

// validateProcess checks how the process runs: entrypoint, user, working
// directory, further ports, volumes and restart policy. Root is refused as
// user: it would undo the container's confinement (a spec that needs it
// runs as the image's own user, which is left to the image).
func (s ServiceSpec) validateProcess() error {
	if err := validateArgs("entrypoint", s.Entrypoint); err != nil {
		return err
	}
	if s.User != "" {
		if !userPattern.MatchString(s.User) {
			return invalidf("user %q: want a user name or id, optionally with :group", s.User)
		}
		if u, _, _ := strings.Cut(s.User, ":"); u == "root" || strings.Trim(u, "0") == "" {
			return invalidf("user %q: root (uid 0) is not allowed; give an unprivileged user or leave user out to run as the image's user", s.User)
		}
	}
	if err := validateCapAdd(s.CapAdd); err != nil {
		return err
	}
	if s.WorkingDir != "" {
		if err := ValidateMountPath(s.WorkingDir); err != nil {
			return invalidf("working_dir %q: want a clean absolute path", s.WorkingDir)
		}
	}
	if len(s.Ports) > 32 {
		return invalidf("ports: at most 32 further ports")
	}
	seen := map[int]bool{s.Port: true}
	for _, p := range s.Ports {
		if p < 1 || p > 65535 {
			return invalidf("ports: %d is not a port from 1 to 65535", p)
		}
		if seen[p] {
			return invalidf("ports: %d listed twice (or is the main port)", p)
		}
		seen[p] = true
	}
	names, paths := map[string]bool{}, map[string]bool{s.Volume: true}
	for _, v := range s.Volumes {
		if err := ValidateSlug("volume name", v.Name); err != nil {
			return err
		}
		if err := ValidateMountPath(v.Path); err != nil {
			return err
		}
		if names[v.Name] || paths[v.Path] {
			return invalidf("volumes: %s (%s) is given twice", v.Name, v.Path)
		}
		names[v.Name], paths[v.Path] = true, true
	}
	if len(s.Volumes) > 16 {
		return invalidf("volumes: at most 16 further volumes")
	}
	switch s.Restart {
	case "", RestartNo, RestartAlways, RestartUnlessStopped, RestartOnFailure:
	default:
		return invalidf("restart %q: want no, always, unless-stopped or on-failure", s.Restart)
	}
	return nil
}

func (h HealthSpec) validate() error {
	if h.Path != "" {
		if !strings.HasPrefix(h.Path, "/") || len(h.Path) > 256 {
			return invalidf("health.path %q: want an absolute URL path under 256 characters", h.Path)
		}
		for _, r := range h.Path {
			if r <= 0x20 || r >= 0x7f || r == '"' || r == '\'' || r == '\\' {
				return invalidf("health.path %q: only printable ASCII without spaces or quotes", h.Path)
			}
		}
	}
	if err := validateArgs("health.command", h.Command); err != nil {
		return err
	}
	if len(h.Command) > 0 && h.Path != "" {
		return invalidf("health: give a path or a command, not both")
	}
	if h.Interval != 0 && (h.Interval.D() < time.Second || h.Interval.D() > time.Hour) {
		return invalidf("health.interval %s: want 1s to 1h", h.Interval)
	}
	if h.StartTimeout.D() < time.Second || h.StartTimeout.D() > time.Hour {
		return invalidf("health.start_timeout %s: want 1s to 1h", h.StartTimeout)
	}
	if h.StartChecks < 1 || h.StartChecks > 20 {
		return invalidf("health.start_checks %d: want 1 to 20", h.StartChecks)
	}
	return validateLogPattern(h.LogPattern)
}

// validateLogPattern checks health.log_pattern the way the health checks
// compile it (Go's RE2 syntax), so a pattern the checks could not use is
// refused at the door. A pattern that matches an empty line is refused too:
// it would call every line of every log an error.
func validateLogPattern(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > MaxLogPatternLen {
		return invalidf("health.log_pattern: %d bytes, longer than %d", len(p), MaxLogPatternLen)
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return invalidf("health.log_pattern: not a valid regular expression (RE2 syntax): %v", err)
	}
	if re.MatchString("") {
		return invalidf("health.log_pattern %q: matches an empty line, so every log line would count as an error", p)
	}
	return nil
}

// ValidateSchedule checks a cron schedule: five fields or a descriptor such as
// @hourly or @every 5m.
func ValidateSchedule(s string) error {
	if s == "" {
		return invalidf("schedule: a cron service needs a schedule such as \"*/5 * * * *\"")
	}
	if _, err := cron.ParseStandard(s); err != nil {
		return invalidf("schedule %q: %v", s, err)
	}
	return nil
}

// MemoryBytes parses Memory ("512m", "1g", "268435456"); 0 means no limit.
func (s ServiceSpec) MemoryBytes() (int64, error) {
	if s.Memory == "" {
		return 0, nil
	}
	m := strings.ToLower(strings.TrimSpace(s.Memory))
	mult := int64(1)
	switch {
	case strings.HasSuffix(m, "k"):
		mult, m = 1<<10, strings.TrimSuffix(m, "k")
	case strings.HasSuffix(m, "m"):
		mult, m = 1<<20, strings.TrimSuffix(m, "m")
	case strings.HasSuffix(m, "g"):
		mult, m = 1<<30, strings.TrimSuffix(m, "g")
	}
	n, err := strconv.ParseInt(m, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, invalidf("memory %q: want a size such as 256m or 2g", s.Memory)
	}
	if n*mult < 6<<20 {
		return 0, invalidf("memory %q: Docker needs at least 6m", s.Memory)
	}
	return n * mult, nil
}

// Clone returns a deep copy of the spec.
func (s ServiceSpec) Clone() ServiceSpec {
	c := s
	c.Command = slices.Clone(s.Command)
	c.Entrypoint = slices.Clone(s.Entrypoint)
	c.CapAdd = slices.Clone(s.CapAdd)
	c.Ports = slices.Clone(s.Ports)
	c.Volumes = slices.Clone(s.Volumes)
	c.Health.Command = slices.Clone(s.Health.Command)
	c.Hosts = slices.Clone(s.Hosts)
	c.Nodes = slices.Clone(s.Nodes)
	c.Uses = slices.Clone(s.Uses)
	c.Vars = maps.Clone(s.Vars)
	c.Secrets = maps.Clone(s.Secrets)
	c.SealedSecrets = maps.Clone(s.SealedSecrets)
	if s.Proxied != nil {
		p := *s.Proxied
		c.Proxied = &p
	}
	c.TLS = s.TLS.clone()
	return c
}

// Duration is a time.Duration that reads and writes as "60s" in specs and
// state, and also accepts a bare number of seconds.
type Duration time.Duration

// D returns the standard library duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string such as "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts "90s", "1m30s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration: want a string such as \"60s\" or a number of seconds")
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }
