package localmode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/atomicfile"
	"github.com/dropmesh/dropmesh/node/bootstrap"
	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/scripts"
)

// Files in the local mesh's directory.
const (
	EnvFile = "env"
	// CACertFile is the cluster CA's certificate (PEM): DIR/env exports it
	// as DROPMESH_CACERT, so the CLI verifies the agents' API with it.
	CACertFile        = "ca.pem"
	AdminPasswordFile = "admin-password"
	StateFile         = "local.json"
	PIDFile           = "supervisor.pid"
	SupervisorLog     = "supervisor.log"
	FakeCloudState    = "fakecloud.json"
	cloudTokenFile    = "cloud-token"
	// ClusterName is the name of every local mesh (its droplets are
	// local-node-N, its VPC local-vpc).
	ClusterName = "local"
	// Zone is the fake Cloudflare zone local services are published under.
	Zone = "example.test"
	// Region is the fake region of every local droplet.
	Region = "nyc3"
	// BaseSnapshot is the image local droplets "boot" from: a custom image
	// the fake cloud accepts (fakeapi.DefaultOptions).
	BaseSnapshot = fakeapi.LocalBaseImage
)

// Config configures a local mesh.
type Config struct {
	Dir            string
	Nodes          int
	Layout         Layout
	Binary         string
	HealthInterval time.Duration
	Logger         *slog.Logger
	// ACME is "" or ACMEPebble (acme.go).
	ACME string
}

// NodeStatus is one node of `dropmesh local status --json`.
type NodeStatus struct {
	ID        string `json:"id"`
	DropletID int    `json:"droplet_id"`
	PID       int    `json:"pid"`
	API       string `json:"api"`
	UI        string `json:"ui"`
	Edge      string `json:"edge"`
	// EdgeTLS is the edge's TLS address (with --acme).
	EdgeTLS string `json:"edge_tls,omitempty"`
	Gossip  string `json:"gossip"`
	Raft    string `json:"raft"`
	Role    string `json:"role,omitempty"`
	Status  string `json:"status,omitempty"`
}

// State is what the supervisor writes to DIR/local.json for `local status`.
type State struct {
	SupervisorPID int          `json:"supervisor_pid"`
	FakeCloud     string       `json:"fake_cloud"`
	Nodes         []NodeStatus `json:"nodes"`
	UpdatedAt     time.Time    `json:"updated_at"`
}

// Suffix is the container-name suffix of this directory's mesh: it keeps
// the containers of two local meshes on one Docker engine apart.
func Suffix(dir string) string {
	abs, _ := filepath.Abs(dir)
	sum := sha256.Sum256([]byte(abs))
	return "." + hex.EncodeToString(sum[:])[:6] + "-"
}

// Supervise runs the fake cloud and the droplets' agents until ctx ends,
// then stops them all and removes their containers. A directory that holds a
// mesh already resumes it.
func Supervise(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("local mesh dir %s: %w", dir, err)
	}
	token, err := readOrCreate(filepath.Join(dir, cloudTokenFile), func() (string, error) {
		s, err := clusterconf.NewClusterSecret()
		return "local-" + s.String()[:32], err
	})
	if err != nil {
		return err
	}
	backend := &processBackend{dir: dir, binary: cfg.Binary, layout: cfg.Layout, suffix: Suffix(dir), logger: log, procs: map[int]*agentProc{},
		edgeTLS: cfg.ACME != ""}
	layout := cfg.Layout
	opts := fakeapi.DefaultOptions()
	opts.Logger, opts.Backend, opts.StatePath, opts.Token, opts.Zones = log, backend, filepath.Join(dir, FakeCloudState), token, []string{Zone}
	opts.IPAllocator = func(n int) (string, string) { ip := layout.Node(n).IP; return ip, ip }
	fake, err := fakeapi.New(opts)
	if err != nil {
		return fmt.Errorf("fake cloud: %w", err)
	}
	defer fake.Close()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(layout.BasePort)))
	if err != nil {
		return fmt.Errorf("fake cloud: listen on port %d (is another local mesh running? try --base-port): %w", layout.BasePort, err)
	}
	fakeURL := "http://" + l.Addr().String()
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	defer srv.Close()
	if err := os.WriteFile(filepath.Join(dir, PIDFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(dir, PIDFile))

	s := &supervisor{cfg: cfg, dir: dir, fakeURL: fakeURL, token: token, fake: fake, backend: backend, log: log}
	if cfg.ACME == ACMEPebble {
		if s.acme, err = s.startACME(); err != nil {
			return fmt.Errorf("local ACME CA: %w", err)
		}
		defer s.acme.close()
	}
	backend.onStart = func(int, string, int) { s.writeState() }
	defer s.shutdown()

	do := cloudops.NewDigitalOcean(cloudops.DOConfig{Token: token, BaseURL: fakeURL, PollInterval: 100 * time.Millisecond})
	existing, err := do.ListDroplets(ctx, "")
	if err != nil {
		return fmt.Errorf("fake cloud: %w", err)
	}
	if len(existing) == 0 {
		if err := s.createSeed(ctx, do); err != nil {
			return err
		}
	} else {
		log.Info("resuming the local mesh", "droplets", len(existing))
		for _, d := range fake.Droplets() {
			if d.Status == "active" {
				if err := backend.Start(ctx, d); err != nil {
					log.Error("restart droplet", "droplet", d.Name, "err", err)
				}
			}
		}
	}
	if err := s.configure(ctx); err != nil {
		return err
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		s.writeState()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type supervisor struct {
	cfg     Config
	dir     string
	fakeURL string
	token   string
	fake    *fakeapi.Server
	backend *processBackend
	log     *slog.Logger
	acme    *localACME // with --acme pebble

	mu         sync.Mutex
	apiKey     string // known once the seed made the cluster secret
	caPEM      []byte // the cluster CA's certificate, once the seed made it
	envContent string // what DIR/env holds
}

// createSeed creates the seed droplet through the real DigitalOcean client,
// with user data that starts `dropmesh agent --bootstrap`. As bootstrap
// does, it first ensures the VPC the leader will ensure (same name, region
// and range) and chooses the cluster id, so the seed is in the cluster's VPC
// and carries the cluster tag the leader's firewall applies to.
func (s *supervisor) createSeed(ctx context.Context, do *cloudops.DigitalOcean) error {
	clusterID, err := bootstrap.NewClusterID()
	if err != nil {
		return err
	}
	vpc, err := do.EnsureVPC(ctx, bootstrap.VPCName(ClusterName), Region, bootstrap.VPCRange)
	if err != nil {
		return fmt.Errorf("the cluster's VPC: %w", err)
	}
	env := []string{
		"DROPMESH_NODE_ID=node-1",
		"DROPMESH_CLUSTER_NAME=" + ClusterName,
		"DROPMESH_CLUSTER_ID=" + clusterID,
		"DROPMESH_BOOTSTRAP=true",
		"DROPMESH_DOMAIN=" + Zone,
		"DROPMESH_NODES=" + strconv.Itoa(s.cfg.Nodes),
		"DROPMESH_DO_BASE_URL=" + s.fakeURL,
		"DROPMESH_CF_BASE_URL=" + s.fakeURL + "/client/v4/",
		"DROPMESH_BASE_SNAPSHOT=" + BaseSnapshot,
		"DROPMESH_ADMIN_PASSWORD_FILE=" + filepath.Join(s.dir, AdminPasswordFile),
		"DROPMESH_DEAD_NODE_GRACE=" + (15 * s.cfg.HealthInterval).String(),
		"HEALTH_CHECK_INTERVAL=" + s.cfg.HealthInterval.String(),
	}
	userData, err := scripts.RenderUserData(scripts.UserData{NodeID: "node-1", ClusterName: ClusterName, Env: env})
	if err != nil {
		return err
	}
	d, err := do.CreateDroplet(ctx, cloudops.DropletSpec{Name: ClusterName + "-node-1", Region: Region, Size: "s-1vcpu-2gb",
		ImageSlug: BaseSnapshot, VPCUUID: vpc.ID, Tags: []string{bootstrap.ClusterTag(ClusterName, clusterID)}, UserData: userData})
	if err != nil {
		return fmt.Errorf("create the seed droplet: %w", err)
	}
	s.log.Info("seed droplet created", "droplet", d.ID, "ip", d.PrivateIP, "vpc", vpc.ID, "cluster", clusterID)
	return nil
}

// configure waits for the seed's API, stores the fake cloud's tokens in the
// cluster settings (the leader then grows the cluster), and writes DIR/env
// and DIR/ca.pem.
func (s *supervisor) configure(ctx context.Context) error {
	secretPath := filepath.Join(s.dir, "node-1", "cluster-secret")
	caPath := filepath.Join(s.dir, "node-1", clusterconf.TLSDir, pki.CAFile)
	var (
		keys  clusterconf.Keys
		caPEM []byte
	)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		secret, err := clusterconf.ReadClusterSecretFile(secretPath)
		if err == nil {
			caPEM, err = os.ReadFile(caPath)
		}
		if err == nil {
			if keys, err = clusterconf.DeriveKeys(secret); err != nil {
				return err
			}
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the seed agent did not create its cluster secret and CA (see %s): %w", filepath.Join(s.dir, "node-1.log"), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := atomicfile.Write(filepath.Join(s.dir, CACertFile), caPEM, 0o600); err != nil {
		return err
	}
	s.mu.Lock()
	s.apiKey, s.caPEM = keys.APIKey, caPEM
	err := s.writeEnvLocked(s.fake.Droplets())
	s.mu.Unlock()
	if err != nil {
		return err
	}
	client, err := apiclient.New(apiclient.Config{Addrs: []string{s.cfg.Layout.Node(1).APIURL}, APIKey: keys.APIKey, CACert: caPEM, Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	if err := s.storeTokens(ctx, client, deadline); err != nil {
		return err
	}
	if s.acme != nil {
		return s.configureACME(ctx, client, s.acme, deadline)
	}
	return nil
}

// storeTokens stores the fake cloud's tokens in the cluster settings once.
func (s *supervisor) storeTokens(ctx context.Context, client *apiclient.Client, deadline time.Time) error {
	marker := filepath.Join(s.dir, ".tokens-stored")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	token := s.token
	req := control.SettingsRequest{DOToken: &token, CFToken: &token, Regions: []string{Region}}
	for {
		err := client.UpdateSettings(ctx, req)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("store the cloud tokens in the cluster: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return os.WriteFile(marker, nil, 0o600)
}

// writeEnvLocked writes DIR/env, shell lines that point the CLI at this
// mesh: DROPMESH_ADDR lists the API of every droplet the fake cloud holds
// (after a replace or a remove, droplet and node numbers differ). It
// rewrites the file only when that list changed; before the seed made the
// cluster secret (no API key yet) it writes nothing.
func (s *supervisor) writeEnvLocked(droplets []fakeapi.BackedDroplet) error {
	if s.apiKey == "" {
		return nil
	}
	var addrs []string
	for _, d := range droplets {
		if env, err := scripts.ParseUserData(d.UserData); err == nil {
			addrs = append(addrs, s.cfg.Layout.For(d, seqOf(env)).APIURL)
		}
	}
	if len(addrs) == 0 {
		return nil // keep the last list: a CLI pointed at nothing helps no one
	}
	content := fmt.Sprintf("# dropmesh local mesh in %s: . this file to point the CLI at it\nexport DROPMESH_ADDR=%s\nexport DROPMESH_API_KEY=%s\nexport DROPMESH_CACERT=%s\nexport DROPMESH_FAKE_CLOUD=%s\n",
		s.dir, strings.Join(addrs, ","), s.apiKey, filepath.Join(s.dir, CACertFile), s.fakeURL)
	if content == s.envContent {
		return nil
	}
	if err := atomicfile.Write(filepath.Join(s.dir, EnvFile), []byte(content), 0o600); err != nil {
		return err
	}
	s.envContent = content
	return nil
}

// writeState writes DIR/local.json from the fake cloud's droplets, and
// DIR/env when the set of droplets changed.
func (s *supervisor) writeState() {
	s.mu.Lock()
	defer s.mu.Unlock()
	pids := s.backend.pids()
	droplets := s.fake.Droplets()
	st := State{SupervisorPID: os.Getpid(), FakeCloud: s.fakeURL, UpdatedAt: time.Now().UTC()}
	for _, d := range droplets {
		env, err := scripts.ParseUserData(d.UserData)
		if err != nil {
			continue
		}
		a := s.cfg.Layout.For(d, seqOf(env))
		ns := NodeStatus{ID: env["DROPMESH_NODE_ID"], DropletID: d.ID, PID: pids[d.ID], API: a.APIURL,
			UI: a.UIURL, Edge: a.EdgeAddr, Gossip: a.GossipAddr, Raft: a.RaftAddr, Status: d.Status}
		if s.backend.edgeTLS {
			ns.EdgeTLS = edgeTLSAddr(s.cfg.Layout, a)
		}
		st.Nodes = append(st.Nodes, ns)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].DropletID < st.Nodes[j].DropletID })
	data, _ := json.MarshalIndent(st, "", "  ")
	if err := atomicfile.Write(filepath.Join(s.dir, StateFile), data, 0o600); err != nil {
		s.log.Warn("write the local mesh's state", "err", err)
	}
	if err := s.writeEnvLocked(droplets); err != nil {
		s.log.Warn("write the local mesh's env file", "err", err)
	}
}

// shutdown stops every agent and removes this mesh's containers.
func (s *supervisor) shutdown() {
	s.log.Info("stopping the local mesh")
	s.backend.stopAll()
	s.writeState()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := RemoveContainers(ctx, s.dir, s.log); err != nil {
		s.log.Warn("remove containers", "err", err)
	}
	StopEdges(s.dir)
}

// RemoveContainers removes every container of the mesh in dir (by its
// name suffix), also those of nodes that no longer exist.
func RemoveContainers(ctx context.Context, dir string, log *slog.Logger) error {
	rt, err := runtime.New(ctx, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	list, err := rt.List(ctx, map[string]string{runtime.LabelManaged: "true"})
	if err != nil {
		return err
	}
	suffix := Suffix(dir)
	var errs []error
	for _, c := range list {
		if strings.Contains(c.Name, suffix) {
			errs = append(errs, rt.Remove(ctx, c.ID))
		}
	}
	// The nodes' workspace networks (service discovery), once empty.
	nets, err := rt.ListNetworks(ctx, map[string]string{runtime.LabelManaged: "true"})
	errs = append(errs, err)
	for _, n := range nets {
		if strings.Contains(n.Name, suffix) {
			errs = append(errs, rt.RemoveNetwork(ctx, n.Name))
		}
	}
	return errors.Join(errs...)
}

func readOrCreate(path string, make func() (string, error)) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	v, err := make()
	if err != nil {
		return "", err
	}
	return v, os.WriteFile(path, []byte(v+"\n"), 0o600)
}
