package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// Labels every dropmesh container carries. The reconciler finds its own
// containers by them, so their names never change.
const (
	LabelWorkspace  = "dropmesh.workspace"
	LabelProject    = "dropmesh.project"
	LabelEnv        = "dropmesh.env"
	LabelService    = "dropmesh.service"
	LabelNode       = "dropmesh.node"
	LabelGeneration = "dropmesh.generation"
	LabelInstance   = "dropmesh.instance"
	// LabelManaged is "true" on everything dropmesh created (containers,
	// volumes, built images); nothing without it is ever touched.
	LabelManaged = "dropmesh.managed"
)

// Sentinel errors for the conditions callers branch on. The returned errors
// wrap them and name the container, image or volume.
var (
	// ErrDockerUnreachable: New could not talk to the Docker daemon.
	ErrDockerUnreachable = errors.New("docker daemon is not reachable")
	// ErrContainerNotFound: no container has that id or name.
	ErrContainerNotFound = errors.New("container not found")
	// ErrImageNotFound: the image is not present locally (InspectImage) or
	// the registry does not have it (EnsureImage).
	ErrImageNotFound = errors.New("image not found")
	// ErrNameInUse: a running container (or one being created) already has
	// the requested name.
	ErrNameInUse = errors.New("container name in use")
	// ErrVolumeInUse: the volume is mounted by a container.
	ErrVolumeInUse = errors.New("volume in use")
	// ErrInvalid: the input (a spec, a reference, a name, a build context)
	// was refused before any change was made.
	ErrInvalid = errors.New("invalid input")
)

// Config holds the driver's timings and defaults.
type Config struct {
	// PingTimeout bounds New's first contact with the daemon. Short enough
	// that an agent without Docker fails fast with a clear message; long
	// enough for a busy daemon on a small droplet.
	PingTimeout time.Duration
	// ProgressInterval is the shortest gap between two progress lines of a
	// pull or a build. Shorter floods the deploy log; longer looks stuck.
	ProgressInterval time.Duration
	// DefaultStopTimeout is the grace period between SIGTERM and SIGKILL
	// when a ContainerSpec gives none. Longer lets apps drain; shorter makes
	// replacements and rollbacks faster.
	DefaultStopTimeout time.Duration
	// LogMaxSize and LogMaxFiles cap each container's json-file log, so a
	// chatty container cannot fill a droplet's disk. Larger keeps more
	// history for `dropmesh logs` and the health loop's log scan.
	LogMaxSize  string
	LogMaxFiles int
	// ExitResultTTL is how long the exit code of an AutoRemove container is
	// kept for a Wait that comes late. Longer costs a little memory per run.
	ExitResultTTL time.Duration
	// DefaultMemoryBytes and DefaultNanoCPUs limit a container whose spec
	// gives no limit (a spec's memory and cpus raise or lower them), so
	// one runaway service cannot starve a droplet's agent and neighbours.
	// Higher fits heavier apps without a spec change; lower packs more.
	DefaultMemoryBytes int64
	DefaultNanoCPUs    int64
	// PidsLimit caps the processes and threads of every container (a fork
	// bomb stops there). Go and JVM services use a few dozen threads.
	PidsLimit int64
	// Host is the Docker engine's address ("unix:///run/docker.sock");
	// empty takes DOCKER_HOST, else the standard socket. Tests that give
	// each agent its own engine set it.
	Host string
}

// DefaultConfig returns the defaults used by New.
func DefaultConfig() Config {
	return Config{
		PingTimeout:        10 * time.Second,
		ProgressInterval:   250 * time.Millisecond,
		DefaultStopTimeout: 10 * time.Second,
		LogMaxSize:         "10m",
		LogMaxFiles:        3,
		ExitResultTTL:      10 * time.Minute,
		DefaultMemoryBytes: 512 << 20,
		DefaultNanoCPUs:    1e9,
		PidsLimit:          512,
	}
}

// Runtime is a connection to one Docker engine. It is safe for concurrent use.
type Runtime struct {
	cli    *client.Client
	cfg    Config
	logger *slog.Logger

	// base is the context of the goroutines the Runtime owns (the exit
	// watchers of AutoRemove containers); Close cancels it and waits.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	exits map[string]*exitWatch
}

// New connects to the Docker engine named by the environment (DOCKER_HOST,
// else the local socket) with DefaultConfig, and pings it. It returns an
// error wrapping ErrDockerUnreachable when the daemon does not answer.
func New(ctx context.Context, logger *slog.Logger) (*Runtime, error) {
	return NewWithConfig(ctx, DefaultConfig(), logger)
}

// NewWithConfig is New with explicit timings.
func NewWithConfig(ctx context.Context, cfg Config, logger *slog.Logger) (*Runtime, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	copts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.Host != "" {
		copts = append(copts, client.WithHost(cfg.Host))
	}
	cli, err := client.NewClientWithOpts(copts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.PingTimeout)
	defer cancel()
	ping, err := cli.Ping(pctx)
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w at %s: %v", ErrDockerUnreachable, cli.DaemonHost(), err)
	}
	cli.NegotiateAPIVersionPing(ping)
	base, stop := context.WithCancel(context.Background())
	r := &Runtime{cli: cli, cfg: cfg, logger: logger.With("component", "runtime"), base: base, cancel: stop,
		exits: map[string]*exitWatch{}}
	r.logger.Debug("connected to docker", "host", cli.DaemonHost(), "api", cli.ClientVersion())
	return r, nil
}

// APIVersion is the Docker API version agreed with the daemon.
func (r *Runtime) APIVersion() string { return r.cli.ClientVersion() }

// Close stops the Runtime's background watchers and closes the client.
func (r *Runtime) Close() error {
	r.cancel()
	r.wg.Wait()
	if err := r.cli.Close(); err != nil {
		return fmt.Errorf("docker client close: %w", err)
	}
	return nil
}

// containerErr maps a Docker error about container what to our sentinels,
// keeping Docker's text.
func containerErr(op, what string, err error) error {
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s container %s: %w (%v)", op, what, ErrContainerNotFound, err)
	default:
		return fmt.Errorf("%s container %s: %w", op, what, err)
	}
}
