package bootstrap

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Options say what cluster to bootstrap, and hold the parts tests replace.
type Options struct {
	// Name is the cluster's name (default "dropmesh"): it names the
	// droplets (NAME-node-1), the VPC, the firewall and the state dir.
	Name string
	// Domain is the Cloudflare zone; the UI is at mesh.DOMAIN.
	Domain string
	// Regions are the DigitalOcean regions: the first holds the VPC, the
	// seed and the droplets the leader adds (a VPC is regional); the base
	// snapshot is copied to all, ready for nodes added there later.
	Regions []string
	// Size is the droplets' size (default s-1vcpu-2gb).
	Size string
	// Nodes is how many nodes the leader grows the cluster to (default 3).
	Nodes int
	// DOToken and CFToken are the API tokens; the seed seals them into the
	// cluster's state.
	DOToken, CFToken string
	// StateDir is the local state (default ~/.config/dropmesh/NAME).
	StateDir string
	// Version is this binary's version; it names the base snapshot.
	Version string
	// Binary is the dropmesh binary installed on the droplets (Linux amd64;
	// default: this executable).
	Binary string
	// DOBaseURL and CFBaseURL point the clients (and the seed's) at another
	// API than DigitalOcean's and Cloudflare's: the fake in tests.
	DOBaseURL, CFBaseURL string

	// BuilderTarget says where a builder droplet's SSH server is; nil is its
	// public IPv4, port 22, as root.
	BuilderTarget func(cloudops.Droplet) SSHTarget
	// Reach lists where the seed's agent API answers from here; nil is
	// https://UIHOST (trusted) and http://SEED_PUBLIC_IP with the UI host
	// as Host header (ping only: no key over plain HTTP).
	Reach func(seed cloudops.Droplet, uiHost string) []Endpoint
	// HTTPClient talks to the agent; nil is a client with short timeouts.
	HTTPClient *http.Client

	// Out receives the progress lines a person reads; nil discards.
	Out io.Writer
	// Logger receives details; nil discards.
	Logger *slog.Logger
	// Config holds the timings; zero fields take DefaultConfig's.
	Config Config
}

// DefaultSize is the droplets' default size.
const DefaultSize = "s-1vcpu-2gb"

var (
	sizeRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,63}$`)
	tokenRe = regexp.MustCompile(`^[A-Za-z0-9_.:/@%+=-]{8,512}$`)
)

// withDefaults fills the defaults and checks everything a person typed,
// before anything is created.
func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		o.Name = "dropmesh"
	}
	if o.Size == "" {
		o.Size = DefaultSize
	}
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	o.Domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o.Domain)), ".")
	o.DOToken, o.CFToken = strings.TrimSpace(o.DOToken), strings.TrimSpace(o.CFToken)
	var errs []error
	if err := raftfsm.ValidateSlug("cluster name", o.Name); err != nil {
		errs = append(errs, fmt.Errorf("--name: %w", err))
	}
	if o.Domain == "" {
		errs = append(errs, errors.New("--domain: required (the Cloudflare zone, e.g. example.com)"))
	} else if err := raftfsm.ValidateHostname(o.Domain, false); err != nil {
		errs = append(errs, fmt.Errorf("--domain: %w", err))
	}
	if len(o.Regions) == 0 {
		errs = append(errs, errors.New("--region: required (e.g. nyc3)"))
	}
	for i, r := range o.Regions {
		if err := raftfsm.ValidateRegion(r); err != nil {
			errs = append(errs, fmt.Errorf("--region: %w", err))
		} else if slices.Contains(o.Regions[:i], r) {
			errs = append(errs, fmt.Errorf("--region: %s given twice", r))
		}
	}
	if !sizeRe.MatchString(o.Size) {
		errs = append(errs, fmt.Errorf("--size %q: not a size slug like s-1vcpu-2gb", o.Size))
	}
	if o.Nodes < 1 || o.Nodes > 100 {
		errs = append(errs, fmt.Errorf("--nodes %d: between 1 and 100", o.Nodes))
	}
	for _, t := range []struct{ flag, v string }{{"--do-token-file", o.DOToken}, {"--cf-token-file", o.CFToken}} {
		switch {
		case t.v == "":
			errs = append(errs, fmt.Errorf("%s: the token is empty", t.flag))
		case !tokenRe.MatchString(t.v):
			errs = append(errs, fmt.Errorf("%s: the file does not hold one API token (8-512 letters, digits or _.:/@%%+=-)", t.flag))
		}
	}
	for _, u := range []struct{ flag, v string }{{"DO base URL", o.DOBaseURL}, {"Cloudflare base URL", o.CFBaseURL}} {
		if u.v != "" && !regexp.MustCompile(`^https?://[A-Za-z0-9.:\[\]_-]+(/[A-Za-z0-9._/-]*)?$`).MatchString(u.v) {
			errs = append(errs, fmt.Errorf("%s %q: not a plain http(s) URL", u.flag, u.v))
		}
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			errs = append(errs, fmt.Errorf("--binary: this executable's path: %w", err))
		}
		o.Binary = exe
	}
	if o.Binary != "" {
		if err := checkLinuxBinary(o.Binary); err != nil {
			errs = append(errs, fmt.Errorf("--binary: %w", err))
		}
	}
	if o.StateDir == "" && raftfsm.ValidateSlug("", o.Name) == nil {
		dir, err := DefaultStateDir(o.Name)
		if err != nil {
			errs = append(errs, err)
		}
		o.StateDir = dir
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Config = o.Config.withDefaults()
	return o, errors.Join(errs...)
}

// uiHost is the UI's public name.
func (o Options) uiHost() string { return "mesh." + o.Domain }

// endpoints lists where the seed's agent answers.
func (o Options) endpoints(seed cloudops.Droplet) []Endpoint {
	if o.Reach != nil {
		return o.Reach(seed, o.uiHost())
	}
	eps := []Endpoint{{URL: "https://" + o.uiHost(), Trusted: true}}
	if seed.PublicIP != "" {
		eps = append(eps, Endpoint{URL: "http://" + seed.PublicIP, Host: o.uiHost()})
	}
	return eps
}

// checkLinuxBinary refuses a file that cannot run on a droplet.
func checkLinuxBinary(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a Linux executable (build one with GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -o dropmesh-linux . and pass --binary dropmesh-linux): %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s is a %s %s file; droplets need an x86-64 executable (GOARCH=amd64)", path, f.Machine, f.Type)
	}
	return nil
}

// snapshotName is the base snapshot's name for this version and binary:
// dropmesh-base-VERSION-HASH (lowercase, at most 64 characters), so a
// rebuilt binary gets its own snapshot.
func snapshotName(version, binarySum string) string {
	v := strings.ToLower(version)
	v = regexp.MustCompile(`[^a-z0-9.-]+`).ReplaceAllString(v, "-")
	v = strings.Trim(v, ".-")
	if v == "" {
		v = "dev"
	}
	const prefix = "dropmesh-base-"
	suffix := "-" + binarySum[:8]
	if max := 64 - len(prefix) - len(suffix); len(v) > max {
		v = strings.Trim(v[:max], ".-")
	}
	return prefix + v + suffix
}
