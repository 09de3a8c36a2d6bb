package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"
)

// Mount is a named volume mounted into a container.
type Mount struct {
	// Volume is the named volume (created by Docker if missing; see
	// EnsureVolume to give it labels first).
	Volume string
	// Target is the absolute path inside the container.
	Target string
}

// Restart policies a ContainerSpec may ask for.
const (
	RestartNo            = ""
	RestartUnlessStopped = "unless-stopped"
	RestartOnFailure     = "on-failure"
)

// ContainerSpec is one container to create.
type ContainerSpec struct {
	// Name is the container name (Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]+).
	Name string
	// Image is a reference or an image id.
	Image string
	// Env is the container's environment, on top of the image's.
	Env map[string]string
	// Cmd overrides the image's Cmd when not empty.
	Cmd []string
	// Entrypoint overrides the image's entrypoint when not empty.
	Entrypoint []string
	// User and WorkingDir override the image's when not empty.
	User, WorkingDir string
	// Network is the Docker network the container joins ("" is Docker's
	// default bridge); DNS and DNSSearch are its resolvers and search
	// domains (the discovery package's server on that network).
	Network   string
	DNS       []string
	DNSSearch []string
	// ExposedPorts are further container ports (TCP) the container listens
	// on: declared, not published (other containers reach them).
	ExposedPorts []int
	// Labels are set on the container (the Label* constants and any other).
	Labels map[string]string
	// Port is the container port (TCP) to publish; 0 publishes nothing.
	Port int
	// PublishIP is the host IP the port is published on (the node's
	// private IP); "" means 127.0.0.1. An unspecified address (0.0.0.0, ::)
	// is refused for containers with mounts (stateful services).
	PublishIP string
	// HostPort is the host port; 0 lets Docker choose one (reported in
	// ContainerInfo.HostPort).
	HostPort int
	Mounts   []Mount
	// RestartPolicy is RestartNo, RestartUnlessStopped or RestartOnFailure.
	RestartPolicy string
	// MemoryBytes and NanoCPUs are limits; 0 means the Config's
	// DefaultMemoryBytes and DefaultNanoCPUs.
	MemoryBytes int64
	NanoCPUs    int64
	// CapAdd are capabilities (Linux names, "NET_ADMIN" or "CAP_NET_ADMIN")
	// the container keeps beyond DefaultCapabilities. Every other one is
	// dropped; the API lets only an admin ask for any (confine.go).
	CapAdd []string
	// StopTimeout is the grace period between SIGTERM and SIGKILL; 0 means
	// Config.DefaultStopTimeout.
	StopTimeout time.Duration
	// AutoRemove removes the container when it exits (cron runs). Wait
	// still reports its exit code.
	AutoRemove bool
}

// ContainerInfo is the observed state of a container.
type ContainerInfo struct {
	ID   string
	Name string // without Docker's leading "/"
	// Image is the reference the container was created with; ImageID the
	// image id ("sha256:...") it runs.
	Image, ImageID string
	Labels         map[string]string
	Running        bool
	// Status is Docker's state: created, running, paused, restarting,
	// removing, exited or dead; CreateAndStart reports "removed" for an
	// AutoRemove container that was gone before it could be inspected.
	Status   string
	ExitCode int
	// StartedAt and FinishedAt are zero when it never started or finished.
	StartedAt, FinishedAt time.Time
	// Port is the published container port, HostIP:HostPort where it is
	// published (HostPort 0 when nothing is published or, for an ephemeral
	// port, while the container is not running).
	Port     int
	HostIP   string
	HostPort int
	// IP is the container's address on its network (its NetworkMode's
	// network, else the first one), "" when it has none or is not running:
	// from the host, Port answers there without Docker's port publishing
	// in between.
	IP           string
	RestartCount int
	OOMKilled    bool
	// Health is the image HEALTHCHECK's status ("starting", "healthy",
	// "unhealthy"), "" when the image has none.
	Health string
}

var (
	// containerNamePattern is Docker's own rule for container names.
	containerNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$`)
	// volumeNamePattern is Docker's rule for local volume names.
	volumeNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$`)
)

// checkName refuses names Docker would refuse, before any call.
func checkName(what, name string, pattern *regexp.Regexp) error {
	if !pattern.MatchString(name) {
		return invalidf("%s name %q: want 1-255 of [a-zA-Z0-9_.-], starting with a letter or digit", what, name)
	}
	return nil
}

func checkLabels(labels map[string]string) error {
	for k, v := range labels {
		if k == "" || len(k) > 1024 || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) || len(v) > 4096 {
			return invalidf("label %q: want a non-empty key without '=' and values without NUL bytes", k)
		}
	}
	return nil
}

// validate checks a spec completely, so that bad input changes nothing.
func (s *ContainerSpec) validate() error {
	if err := checkName("container", s.Name, containerNamePattern); err != nil {
		return err
	}
	if s.Image == "" {
		return invalidf("container %s: no image", s.Name)
	}
	for k, v := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return invalidf("container %s: env %q: want a non-empty name without '=' and values without NUL bytes", s.Name, k)
		}
	}
	if err := checkLabels(s.Labels); err != nil {
		return fmt.Errorf("container %s: %w", s.Name, err)
	}
	if s.Port < 0 || s.Port > 65535 || s.HostPort < 0 || s.HostPort > 65535 {
		return invalidf("container %s: ports %d -> %d: want 0-65535", s.Name, s.Port, s.HostPort)
	}
	for _, p := range s.ExposedPorts {
		if p < 1 || p > 65535 {
			return invalidf("container %s: exposed port %d: want 1-65535", s.Name, p)
		}
	}
	if strings.ContainsRune(s.User, 0) || strings.ContainsRune(s.WorkingDir, 0) {
		return invalidf("container %s: user and working dir must not hold NUL bytes", s.Name)
	}
	if s.WorkingDir != "" && !path.IsAbs(s.WorkingDir) {
		return invalidf("container %s: working dir %q must be absolute", s.Name, s.WorkingDir)
	}
	if s.Network != "" {
		if err := checkName("network", s.Network, containerNamePattern); err != nil {
			return fmt.Errorf("container %s: %w", s.Name, err)
		}
	}
	for _, d := range s.DNS {
		if net.ParseIP(d) == nil {
			return invalidf("container %s: DNS server %q is not an IP address", s.Name, d)
		}
	}
	for _, d := range s.DNSSearch {
		if d == "" || len(d) > 253 || strings.ContainsAny(d, " \t\n\x00/") {
			return invalidf("container %s: DNS search domain %q", s.Name, d)
		}
	}
	if s.HostPort != 0 && s.Port == 0 {
		return invalidf("container %s: a host port needs a container port", s.Name)
	}
	if s.PublishIP != "" {
		ip := net.ParseIP(s.PublishIP)
		if ip == nil {
			return invalidf("container %s: publish IP %q is not an IP address", s.Name, s.PublishIP)
		}
		if ip.IsUnspecified() && len(s.Mounts) > 0 {
			return invalidf("container %s: a container with volumes is never published on %s; give the node's private IP", s.Name, s.PublishIP)
		}
	}
	seen := map[string]bool{}
	for _, m := range s.Mounts {
		if err := checkName("volume", m.Volume, volumeNamePattern); err != nil {
			return fmt.Errorf("container %s: %w", s.Name, err)
		}
		if !path.IsAbs(m.Target) || path.Clean(m.Target) != m.Target || m.Target == "/" {
			return invalidf("container %s: mount target %q must be an absolute, clean path other than /", s.Name, m.Target)
		}
		if seen[m.Target] {
			return invalidf("container %s: two mounts on %s", s.Name, m.Target)
		}
		seen[m.Target] = true
	}
	switch s.RestartPolicy {
	case RestartNo, "no":
	case RestartUnlessStopped, RestartOnFailure:
		if s.AutoRemove {
			return invalidf("container %s: auto-remove cannot be combined with restart policy %q", s.Name, s.RestartPolicy)
		}
	default:
		return invalidf("container %s: restart policy %q: want \"\", %q or %q", s.Name, s.RestartPolicy, RestartUnlessStopped, RestartOnFailure)
	}
	for _, c := range s.CapAdd {
		if _, ok := canonicalCapability(c); !ok {
			return invalidf("container %s: capability %q: want a Linux capability name such as NET_ADMIN (not ALL)", s.Name, c)
		}
	}
	if s.MemoryBytes < 0 || s.NanoCPUs < 0 || s.StopTimeout < 0 {
		return invalidf("container %s: memory, CPUs and stop timeout must not be negative", s.Name)
	}
	return nil
}

// seconds rounds a duration up to whole seconds, as Docker's API wants them.
func seconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}

// dockerConfig turns a validated spec into Docker's create request.
func (r *Runtime) dockerConfig(s ContainerSpec) (*container.Config, *container.HostConfig) {
	env := make([]string, 0, len(s.Env))
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	stop := s.StopTimeout
	if stop == 0 {
		stop = r.cfg.DefaultStopTimeout
	}
	stopSec := seconds(stop)
	cfg := &container.Config{Image: s.Image, Env: env, Cmd: s.Cmd, Entrypoint: s.Entrypoint, User: s.User, WorkingDir: s.WorkingDir,
		Labels: s.Labels, StopTimeout: &stopSec}
	mem, cpus := s.MemoryBytes, s.NanoCPUs
	if mem == 0 {
		mem = r.cfg.DefaultMemoryBytes
	}
	if cpus == 0 {
		cpus = r.cfg.DefaultNanoCPUs
	}
	var pids *int64
	if r.cfg.PidsLimit > 0 {
		pids = &r.cfg.PidsLimit
	}
	hc := &container.HostConfig{
		AutoRemove: s.AutoRemove,
		// Confinement (confine.go): never loosened by a flag.
		CapDrop:     []string{"ALL"},
		CapAdd:      capabilities(s.CapAdd),
		SecurityOpt: []string{"no-new-privileges:true"},
		Resources:   container.Resources{Memory: mem, NanoCPUs: cpus, PidsLimit: pids},
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{
			"max-size": r.cfg.LogMaxSize, "max-file": strconv.Itoa(r.cfg.LogMaxFiles)}},
		DNS: s.DNS, DNSSearch: s.DNSSearch,
	}
	if s.Network != "" {
		hc.NetworkMode = container.NetworkMode(s.Network)
	}
	switch s.RestartPolicy {
	case RestartUnlessStopped:
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
	case RestartOnFailure:
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyOnFailure}
	default:
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	}
	if s.Port > 0 {
		p := nat.Port(strconv.Itoa(s.Port) + "/tcp")
		ip := s.PublishIP
		if ip == "" {
			ip = "127.0.0.1"
		}
		hostPort := ""
		if s.HostPort > 0 {
			hostPort = strconv.Itoa(s.HostPort)
		}
		cfg.ExposedPorts = nat.PortSet{p: {}}
		hc.PortBindings = nat.PortMap{p: {{HostIP: ip, HostPort: hostPort}}}
	}
	for _, p := range s.ExposedPorts {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
		}
		cfg.ExposedPorts[nat.Port(strconv.Itoa(p)+"/tcp")] = struct{}{}
	}
	for _, m := range s.Mounts {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Volume, Target: m.Target})
	}
	return cfg, hc
}

// CreateAndStart creates and starts a container. A stopped container left
// over with the same name is removed first; a running one is an error
// wrapping ErrNameInUse. If the container cannot start (a port already
// taken, a missing binary), it is removed again and Docker's message is
// returned. The result is inspected after the start, so HostPort is the
// port Docker chose.
func (r *Runtime) CreateAndStart(ctx context.Context, spec ContainerSpec) (ContainerInfo, error) {
	if err := spec.validate(); err != nil {
		return ContainerInfo{}, err
	}
	// Docker resolves an inspect by name, then by id prefix: only a
	// container that really has this name is a leftover.
	if old, err := r.Inspect(ctx, spec.Name); err == nil && old.Name == spec.Name {
		if old.Running || old.Status == "restarting" || old.Status == "paused" {
			return ContainerInfo{}, fmt.Errorf("create container %s: %w by running container %.12s", spec.Name, ErrNameInUse, old.ID)
		}
		r.logger.Info("removing leftover container", "container", spec.Name, "id", old.ID[:12], "status", old.Status)
		if err := r.Remove(ctx, old.ID); err != nil {
			return ContainerInfo{}, err
		}
	} else if err != nil && !errors.Is(err, ErrContainerNotFound) {
		return ContainerInfo{}, err
	}
	cfg, hc := r.dockerConfig(spec)
	created, err := r.cli.ContainerCreate(ctx, cfg, hc, nil, nil, spec.Name)
	if cerrdefs.IsConflict(err) {
		return ContainerInfo{}, fmt.Errorf("create container %s: %w (%v)", spec.Name, ErrNameInUse, err)
	}
	if cerrdefs.IsNotFound(err) {
		return ContainerInfo{}, fmt.Errorf("create container %s: image %s: %w (%v)", spec.Name, spec.Image, ErrImageNotFound, err)
	}
	if err != nil {
		return ContainerInfo{}, fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	if spec.AutoRemove {
		// Registered before the start, so even an instant exit is seen.
		if err := r.watchExit(created.ID); err != nil {
			r.removeQuietly(created.ID)
			return ContainerInfo{}, fmt.Errorf("create container %s: watch exit: %w", spec.Name, err)
		}
	}
	if err := r.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		r.forgetExit(created.ID)
		r.removeQuietly(created.ID)
		return ContainerInfo{}, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	info, err := r.Inspect(ctx, created.ID)
	if errors.Is(err, ErrContainerNotFound) && spec.AutoRemove {
		// It already ran and was removed; Wait has its exit code.
		return ContainerInfo{ID: created.ID, Name: spec.Name, Image: spec.Image, Labels: spec.Labels, Status: "removed"}, nil
	}
	if err != nil {
		return ContainerInfo{}, err
	}
	r.logger.Debug("container started", "container", spec.Name, "id", created.ID[:12], "host_port", info.HostPort)
	return info, nil
}

// removeQuietly cleans up after a failed create or start; the caller
// reports the original error.
func (r *Runtime) removeQuietly(id string) {
	ctx, cancel := context.WithTimeout(r.base, 30*time.Second)
	defer cancel()
	if err := r.Remove(ctx, id); err != nil {
		r.logger.Warn("cleanup of failed container", "id", id, "err", err)
	}
}

// Start starts a stopped container; starting a running one does nothing.
func (r *Runtime) Start(ctx context.Context, id string) error {
	if id == "" {
		return invalidf("start container: empty id")
	}
	return containerErr("start", id, r.cli.ContainerStart(ctx, id, container.StartOptions{}))
}

// stopOptions gives Docker a whole-second grace period; timeout <= 0 means
// the container's own StopTimeout (set at create).
func stopOptions(timeout time.Duration) container.StopOptions {
	if timeout <= 0 {
		return container.StopOptions{}
	}
	s := seconds(timeout)
	return container.StopOptions{Timeout: &s}
}

// Stop sends SIGTERM, then SIGKILL after timeout (<= 0: the container's own
// stop timeout). Stopping a stopped container does nothing.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	if id == "" {
		return invalidf("stop container: empty id")
	}
	return containerErr("stop", id, r.cli.ContainerStop(ctx, id, stopOptions(timeout)))
}

// Restart stops (as Stop does) and starts a container.
func (r *Runtime) Restart(ctx context.Context, id string, timeout time.Duration) error {
	if id == "" {
		return invalidf("restart container: empty id")
	}
	return containerErr("restart", id, r.cli.ContainerRestart(ctx, id, stopOptions(timeout)))
}

// Remove force-removes a container (a running one is killed) and its
// anonymous volumes; named volumes stay. A container that is already gone,
// or being removed, is not an error.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	if id == "" {
		return invalidf("remove container: empty id")
	}
	err := r.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err == nil || cerrdefs.IsNotFound(err) || (cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress")) {
		return nil
	}
	return fmt.Errorf("remove container %s: %w", id, err)
}

// Rename renames a container. The new name must be free (ErrNameInUse).
func (r *Runtime) Rename(ctx context.Context, id, newName string) error {
	if id == "" {
		return invalidf("rename container: empty id")
	}
	if err := checkName("container", newName, containerNamePattern); err != nil {
		return err
	}
	err := r.cli.ContainerRename(ctx, id, newName)
	if cerrdefs.IsConflict(err) {
		return fmt.Errorf("rename container %s to %s: %w (%v)", id, newName, ErrNameInUse, err)
	}
	return containerErr("rename", id, err)
}

// Inspect describes a container by id or name; ErrContainerNotFound when
// there is none.
func (r *Runtime) Inspect(ctx context.Context, idOrName string) (ContainerInfo, error) {
	if idOrName == "" {
		return ContainerInfo{}, invalidf("inspect container: empty id")
	}
	cj, err := r.cli.ContainerInspect(ctx, idOrName)
	if err != nil {
		return ContainerInfo{}, containerErr("inspect", idOrName, err)
	}
	return containerInfo(cj), nil
}

func parseDockerTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// containerInfo converts Docker's inspect answer.
func containerInfo(cj container.InspectResponse) ContainerInfo {
	info := ContainerInfo{}
	if cj.ContainerJSONBase != nil {
		info.ID, info.Name, info.ImageID = cj.ID, strings.TrimPrefix(cj.Name, "/"), cj.Image
		info.RestartCount = cj.RestartCount
		if st := cj.State; st != nil {
			info.Running, info.Status, info.ExitCode, info.OOMKilled = st.Running, string(st.Status), st.ExitCode, st.OOMKilled
			info.StartedAt, info.FinishedAt = parseDockerTime(st.StartedAt), parseDockerTime(st.FinishedAt)
			if st.Health != nil {
				info.Health = string(st.Health.Status)
			}
		}
	}
	if cj.Config != nil {
		info.Image, info.Labels = cj.Config.Image, cj.Config.Labels
	}
	if cj.NetworkSettings != nil {
		mode := ""
		if cj.HostConfig != nil {
			mode = string(cj.HostConfig.NetworkMode)
		}
		if ep, ok := cj.NetworkSettings.Networks[mode]; ok && ep != nil {
			info.IP = ep.IPAddress
		} else {
			names := make([]string, 0, len(cj.NetworkSettings.Networks))
			for n := range cj.NetworkSettings.Networks {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if ep := cj.NetworkSettings.Networks[n]; ep != nil && ep.IPAddress != "" {
					info.IP = ep.IPAddress
					break
				}
			}
		}
	}
	if info.Labels == nil {
		info.Labels = map[string]string{}
	}
	// The live binding (with an ephemeral port resolved) when running,
	// else the configured one.
	var bindings nat.PortMap
	if cj.NetworkSettings != nil && len(cj.NetworkSettings.Ports) > 0 {
		bindings = cj.NetworkSettings.Ports
	} else if cj.HostConfig != nil {
		bindings = cj.HostConfig.PortBindings
	}
	ports := make([]string, 0, len(bindings))
	for p, b := range bindings {
		if p.Proto() == "tcp" && len(b) > 0 {
			ports = append(ports, string(p))
		}
	}
	sort.Strings(ports)
	if len(ports) > 0 {
		p := nat.Port(ports[0])
		info.Port = p.Int()
		b := bindings[p][0]
		info.HostIP = b.HostIP
		info.HostPort, _ = strconv.Atoi(b.HostPort)
	}
	return info
}

// List returns every container (running or not) carrying all the given
// labels, sorted by name. An empty value matches any value of that label.
func (r *Runtime) List(ctx context.Context, labels map[string]string) ([]ContainerInfo, error) {
	if err := checkLabels(labels); err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: labelFilters(labels)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]ContainerInfo, 0, len(list))
	for _, c := range list {
		info, err := r.Inspect(ctx, c.ID)
		if errors.Is(err, ErrContainerNotFound) {
			continue // removed since the list was made
		}
		if err != nil {
			return nil, fmt.Errorf("list containers: %w", err)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func labelFilters(labels map[string]string) filters.Args {
	f := filters.NewArgs()
	for k, v := range labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	return f
}
