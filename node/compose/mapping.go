package compose

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Labels dropmesh reads on a Compose service.
const (
	// LabelHosts lists the public host names, comma-separated.
	LabelHosts = "dropmesh.hosts"
	// LabelKind overrides the kind (service, worker, cron, stateful), for a
	// database the image name does not give away.
	LabelKind = "dropmesh.kind"
)

// service maps one Compose service to a normalized spec (uses: is added by
// the caller, which knows the other services' kinds).
func (m *mapper) service(svc types.ServiceConfig) (raftfsm.ServiceSpec, error) {
	name := svc.Name
	spec := raftfsm.ServiceSpec{Project: m.project, Env: m.env, Service: m.names[name], Image: svc.Image}
	warn := func(format string, args ...any) { m.warn("service "+name+": "+format, args...) }

	// Every container runs behind a Docker bridge, where the host rules keep
	// it from the control ports and the metadata service; on the host's
	// network (or another container's) nothing could.
	if mode := svc.NetworkMode; mode == "host" || strings.HasPrefix(mode, "container:") {
		return spec, fmt.Errorf("%w: compose service %s: network_mode %s is not allowed: dropmesh runs every container on a Docker bridge, where the host rules keep it away from the cluster's control ports and the metadata service", ErrInvalid, name, mode)
	}

	if svc.Build != nil {
		dir, dockerfile, err := buildContext(svc.Build)
		if err != nil {
			return spec, fmt.Errorf("%w: compose service %s: %v", ErrInvalid, name, err)
		}
		if svc.Image != "" {
			warn("image %s is not used: the image is built from %s", svc.Image, dir)
		}
		spec.Image, spec.Build, spec.Dockerfile = "", dir, dockerfile
		m.res.Builds[spec.Service] = dir
	}
	dsPort := 0
	if spec.Image != "" {
		dsPort = datastorePort(spec.Image)
	}

	// Kind: a recognised database or cache is stateful; a label overrides.
	if dsPort > 0 {
		spec.Kind = raftfsm.KindStateful
	}
	for _, k := range slices.Sorted(maps.Keys(svc.Labels)) {
		v := svc.Labels[k]
		switch k {
		case LabelHosts:
			for _, h := range strings.Split(v, ",") {
				if h = strings.TrimSpace(h); h != "" {
					spec.Hosts = append(spec.Hosts, strings.ToLower(h))
				}
			}
		case LabelKind:
			spec.Kind = raftfsm.Kind(strings.TrimSpace(v))
		default:
			warn("label %s is not used", k)
		}
	}

	// Ports: the first container port is the service's port (routed by
	// the edge for hosts); every further one of ports and expose is
	// declared too, and other services reach them all by name.
	var ports []int
	for _, p := range svc.Ports {
		if p.Protocol != "" && p.Protocol != "tcp" {
			warn("ports: %d/%s is not routed; only TCP: other services cannot reach it by name (service discovery forwards TCP only)", p.Target, p.Protocol)
			continue
		}
		if p.Published != "" {
			warn("ports: host port %s is not published; dropmesh reaches container port %d (through the edge for hosts, by the service's name from other services)", p.Published, p.Target)
		}
		ports = append(ports, int(p.Target))
	}
	for _, e := range svc.Expose {
		port, err := exposedPort(e)
		if err != nil {
			return spec, fmt.Errorf("%w: compose service %s: expose %q: %v", ErrInvalid, name, e, err)
		}
		if _, proto, _ := strings.Cut(e, "/"); proto != "" && !strings.EqualFold(proto, "tcp") {
			warn("expose: %s is not routed; only TCP: other services cannot reach it by name (service discovery forwards TCP only)", e)
			continue
		}
		ports = append(ports, port)
	}
	for _, p := range ports {
		switch {
		case spec.Port == 0:
			spec.Port = p
		case p != spec.Port && !slices.Contains(spec.Ports, p):
			spec.Ports = append(spec.Ports, p)
		}
	}
	if spec.Port == 0 && spec.Kind == raftfsm.KindStateful && dsPort > 0 {
		spec.Port = dsPort
	}

	m.environment(svc, &spec, warn)

	if len(svc.Command) > 0 {
		spec.Command = slices.Clone([]string(svc.Command))
	}
	if len(svc.Entrypoint) > 0 {
		spec.Entrypoint = slices.Clone([]string(svc.Entrypoint))
	}
	spec.User, spec.WorkingDir = svc.User, svc.WorkingDir
	spec.CapAdd = slices.Clone(svc.CapAdd)
	switch {
	case svc.Deploy != nil && svc.Deploy.Replicas != nil:
		spec.Replicas = *svc.Deploy.Replicas
		if svc.Scale != nil && *svc.Scale != spec.Replicas {
			warn("scale %d is overridden by deploy.replicas %d", *svc.Scale, spec.Replicas)
		}
	case svc.Scale != nil:
		spec.Replicas = *svc.Scale
	}
	if spec.Replicas < 0 {
		return spec, fmt.Errorf("%w: compose service %s: replicas %d", ErrInvalid, name, spec.Replicas)
	}
	if svc.Deploy != nil && svc.Deploy.Resources.Limits != nil {
		if b := svc.Deploy.Resources.Limits.MemoryBytes; b > 0 {
			spec.Memory = strconv.FormatInt(int64(b), 10)
		}
		spec.CPUs = float64(svc.Deploy.Resources.Limits.NanoCPUs)
	}
	if svc.MemLimit > 0 && spec.Memory == "" {
		spec.Memory = strconv.FormatInt(int64(svc.MemLimit), 10)
	}
	if svc.CPUS > 0 && spec.CPUs == 0 {
		spec.CPUs = float64(svc.CPUS)
	}
	switch r, _, _ := strings.Cut(svc.Restart, ":"); r {
	case "":
	case types.RestartPolicyNo, types.RestartPolicyAlways, types.RestartPolicyUnlessStopped, types.RestartPolicyOnFailure:
		spec.Restart = r
		if r != svc.Restart {
			warn("restart: %s: the retry count is not honoured (Docker retries for ever; dropmesh also restarts unhealthy containers)", svc.Restart)
		}
	default:
		warn("restart: %s is not honoured; dropmesh restarts unhealthy containers and keeps them running", svc.Restart)
	}

	m.healthcheck(svc, &spec, warn)
	m.volumes(svc, &spec, warn)
	spec.Normalize()
	return spec, nil
}

// buildContext returns the local directory and the Dockerfile (relative to
// it, "" for the default) of a build.
func buildContext(b *types.BuildConfig) (dir, dockerfile string, err error) {
	dir = b.Context
	if dir == "" {
		dir = "."
	}
	if strings.Contains(dir, "://") || strings.HasPrefix(dir, "git@") {
		return "", "", fmt.Errorf("build context %s: only a local directory can be built (the CLI uploads it)", dir)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("build context %s: %w", b.Context, err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", "", fmt.Errorf("build context %s is not a directory", dir)
	}
	df := b.Dockerfile
	if filepath.IsAbs(df) {
		rel, err := filepath.Rel(dir, df)
		if err != nil || strings.HasPrefix(rel, "..") {
			return "", "", fmt.Errorf("dockerfile %s is outside the build context %s (only the context is uploaded)", df, dir)
		}
		df = rel
	}
	df = filepath.ToSlash(df)
	if df == "Dockerfile" {
		df = ""
	}
	return dir, df, nil
}

// exposedPort reads the first port of an expose entry ("3000", "3000/tcp", "3000-3005").
func exposedPort(s string) (int, error) {
	s, _, _ = strings.Cut(s, "/")
	s, _, _ = strings.Cut(s, "-")
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("not a port")
	}
	return p, nil
}

// secretWords mark a variable whose value is a secret: it goes to secrets
// (sealed by the leader before it reaches the log) instead of environment.
var secretWords = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "PRIVATE_KEY", "API_KEY", "ACCESS_KEY"}

func isSecretName(k string) bool {
	u := strings.ToUpper(k)
	for _, w := range secretWords {
		if strings.Contains(u, w) {
			return true
		}
	}
	return strings.HasSuffix(u, "_KEY")
}

// environment maps environment and env_file (compose-go has merged them).
func (m *mapper) environment(svc types.ServiceConfig, spec *raftfsm.ServiceSpec, warn func(string, ...any)) {
	for _, k := range slices.Sorted(maps.Keys(svc.Environment)) {
		v := svc.Environment[k]
		if v == nil {
			warn("environment %s has no value (not set in the shell or .env); not set", k)
			continue
		}
		if isSecretName(k) {
			if spec.Secrets == nil {
				spec.Secrets = map[string]string{}
			}
			spec.Secrets[k] = *v
			continue
		}
		if spec.Vars == nil {
			spec.Vars = map[string]string{}
		}
		spec.Vars[k] = *v
	}
}

// healthcheck maps a curl or wget of localhost to health.path, and the interval.
func (m *mapper) healthcheck(svc types.ServiceConfig, spec *raftfsm.ServiceSpec, warn func(string, ...any)) {
	hc := svc.HealthCheck
	if hc == nil {
		return
	}
	if hc.Disable || (len(hc.Test) > 0 && hc.Test[0] == "NONE") {
		warn("healthcheck: disabled in Compose, but dropmesh always checks health")
		return
	}
	what := "that the container runs"
	if spec.Port > 0 {
		what = fmt.Sprintf("that port %d answers", spec.Port)
	}
	if len(hc.Test) > 0 {
		p, port, ok := httpCheck(hc.Test)
		switch {
		case !ok || spec.Port == 0 || (port != 0 && port != spec.Port):
			// Anything else is run as written inside the container.
			cmd, isCmd := execCheck(hc.Test)
			if !isCmd {
				warn("healthcheck: test %q is neither CMD nor CMD-SHELL; dropmesh checks %s instead", strings.Join(hc.Test, " "), what)
				break
			}
			spec.Health.Command = cmd
		default:
			// An HTTP check of the service's own port: dropmesh probes
			// it from outside, which needs no curl in the image.
			spec.Health.Path = p
		}
	}
	if hc.Interval != nil {
		d := time.Duration(*hc.Interval)
		if d < time.Second || d > time.Hour {
			warn("healthcheck: interval %s is outside 1s-1h; the cluster's interval applies", d)
		} else {
			spec.Health.Interval = raftfsm.Duration(d)
		}
	}
}

// volumes keeps the named and anonymous volumes of a stateful service: the
// first is its volume path, the others further node-local volumes (named
// after their Compose volume), all staying with the service on its node.
// Everything else is reported.
func (m *mapper) volumes(svc types.ServiceConfig, spec *raftfsm.ServiceSpec, warn func(string, ...any)) {
	for i, v := range svc.Volumes {
		switch {
		case v.Type == types.VolumeTypeBind:
			warn("volumes: bind mount %s:%s is not supported (the node has no copy of %s); ignored", v.Source, v.Target, v.Source)
		case v.Type != types.VolumeTypeVolume:
			warn("volumes: %s mount at %s is not supported; ignored", v.Type, v.Target)
		case spec.Kind != raftfsm.KindStateful:
			warn("volumes: %s is ignored: only stateful services (databases and caches) keep a volume", v.Target)
		case spec.Volume == "":
			spec.Volume = v.Target
		default:
			name := slugify(v.Source)
			if name == "" || raftfsm.ValidateSlug("volume name", name) != nil {
				name = "volume-" + strconv.Itoa(i+1)
			}
			spec.Volumes = append(spec.Volumes, raftfsm.NamedVolume{Name: name, Path: v.Target})
		}
	}
}
