package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// byName returns the spec of service name.
func byName(t *testing.T, r Result, name string) raftfsm.ServiceSpec {
	t.Helper()
	for _, s := range r.Specs {
		if s.Service == name {
			return s
		}
	}
	t.Fatalf("no spec for %s in %v", name, r.Specs)
	return raftfsm.ServiceSpec{}
}

func names(r Result) []string {
	var out []string
	for _, s := range r.Specs {
		out = append(out, s.Service)
	}
	return out
}

// hasWarning reports whether some warning contains every part.
func hasWarning(r Result, parts ...string) bool {
	return slices.ContainsFunc(r.Warnings, func(w string) bool {
		for _, p := range parts {
			if !strings.Contains(w, p) {
				return false
			}
		}
		return true
	})
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLoad(t *testing.T) {
	// The shell must not set what the files read: unset for this test
	// (t.Setenv restores the original values afterwards).
	for _, v := range []string{"SESSION_SECRET", "DB_PASSWORD"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	cases := []struct {
		name    string
		files   []string
		project string
		env     string
		check   func(t *testing.T, r Result)
		wantErr string
	}{
		{
			name: "web, worker, redis and postgres", files: []string{"testdata/shop/compose.yaml"},
			check: func(t *testing.T, r Result) {
				// Dependencies first, then by name.
				if got := strings.Join(names(r), ","); got != "db,redis,web,worker" {
					t.Errorf("deploy order = %s", got)
				}
				web := byName(t, r, "web")
				want := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "web", Kind: raftfsm.KindService,
					Build: abs(t, "testdata/shop/web"), Port: 8080, Hosts: []string{"shop.example.com", "www.shop.example.com"},
					Replicas: 2, Vars: map[string]string{"LOG_LEVEL": "info", "FEATURE_X": "on"},
					Secrets: map[string]string{"SESSION_SECRET": "dev-session", "STRIPE_API_KEY": "sk_test_123"},
					Health: raftfsm.HealthSpec{Path: "/health?full=1", Interval: raftfsm.Duration(15 * time.Second),
						StartTimeout: raftfsm.Duration(raftfsm.DefaultStartTimeout), StartChecks: raftfsm.DefaultStartChecks},
					Uses: []string{"db", "redis"}, Memory: "268435456", CPUs: 0.5, Restart: raftfsm.RestartUnlessStopped}
				if !reflect.DeepEqual(web, want) {
					t.Errorf("web =\n%+v\nwant\n%+v", web, want)
				}
				if !reflect.DeepEqual(r.Builds, map[string]string{"web": abs(t, "testdata/shop/web")}) {
					t.Errorf("builds = %v", r.Builds)
				}
				db := byName(t, r, "db")
				if db.Kind != raftfsm.KindStateful || db.Port != 5432 || db.Volume != "/var/lib/postgresql/data" ||
					db.Secrets["POSTGRES_PASSWORD"] != "from-dotenv" || db.Vars["POSTGRES_USER"] != "shop" || db.Health.Interval.D() != 5*time.Second ||
					!reflect.DeepEqual(db.Health.Command, []string{"/bin/sh", "-c", "pg_isready -U shop"}) {
					t.Errorf("db = %+v", db)
				}
				redis := byName(t, r, "redis")
				if redis.Kind != raftfsm.KindStateful || redis.Port != 6379 || redis.Volume != "/data" || redis.Image != "redis:7-alpine" {
					t.Errorf("redis = %+v", redis)
				}
				worker := byName(t, r, "worker")
				if worker.Kind != raftfsm.KindWorker || !reflect.DeepEqual(worker.Command, []string{"worker", "--queue", "emails"}) ||
					!reflect.DeepEqual(worker.Uses, []string{"db"}) {
					t.Errorf("worker = %+v", worker)
				}
				for _, w := range [][]string{
					{"service web:", "image shop-web:dev is not used"},
					{"service web:", "host port 8080"},
				} {
					if !hasWarning(r, w...) {
						t.Errorf("no warning with %q in %q", w, r.Warnings)
					}
				}
				if len(r.Warnings) != 2 {
					t.Errorf("%d warnings, want 2: %q", len(r.Warnings), r.Warnings)
				}
			},
		},
		{
			name: "project and env given", files: []string{"testdata/shop/compose.yaml"}, project: "store", env: "staging",
			check: func(t *testing.T, r Result) {
				for _, s := range r.Specs {
					if s.Project != "store" || s.Env != "staging" {
						t.Errorf("%s is in %s/%s, want store/staging", s.Service, s.Project, s.Env)
					}
				}
			},
		},
		{
			name: "unsupported keys are each named", files: []string{"testdata/unsupported/docker-compose.yml"},
			check: func(t *testing.T, r Result) {
				for _, w := range [][]string{
					{"networks (top level)"}, {"secrets (top level)"},
					{"service api: container_name"}, {"service api: deploy.placement"},
					{"service api: healthcheck.retries"}, {"service api: healthcheck.timeout"},
					{"service api: logging"}, {"service api: networks"}, {"service api: ports[].host_ip"}, {"service api: privileged"},
					{"service api: secrets"}, {"service api: volumes[].read_only"},
					{"service debug:", "profile(s) debug"},
					{"service api: label traefik.enable"},
					{"service api:", "9001/udp is not routed"},
					{"service api:", "bind mount"},
					{"service api:", "/var/cache/api is ignored"},
				} {
					if !hasWarning(r, w...) {
						t.Errorf("no warning with %q", w)
					}
				}
				if hasWarning(r, "x-common") {
					t.Error("an extension key (x-*) was reported")
				}
				if got := names(r); !reflect.DeepEqual(got, []string{"api"}) {
					t.Errorf("services = %v, want [api] (debug is behind a profile)", got)
				}
				api := byName(t, r, "api")
				// The health test calls another port than the service's:
				// it runs as written inside the container.
				if hasWarning(r, "cap_add") || !reflect.DeepEqual(api.CapAdd, []string{"NET_ADMIN"}) {
					t.Errorf("cap_add: %v (warnings %q); want [NET_ADMIN] carried into the spec", api.CapAdd, r.Warnings)
				}
				if api.Port != 9000 || api.Health.Path != "" || api.Volume != "" || api.Restart != raftfsm.RestartNo ||
					!reflect.DeepEqual(api.Entrypoint, []string{"/bin/api"}) ||
					!reflect.DeepEqual(api.Health.Command, []string{"wget", "-qO-", "http://localhost:9999/ready"}) {
					t.Errorf("api = %+v", api)
				}
			},
		},
		{
			name: "override file merged", files: []string{"testdata/override/compose.yaml", "testdata/override/compose.prod.yaml"},
			check: func(t *testing.T, r Result) {
				app := byName(t, r, "app")
				if app.Image != "127.0.0.1:5000/app:1.1" || app.Replicas != 3 || app.Port != 3000 || app.Vars["MODE"] != "prod" ||
					!reflect.DeepEqual(app.Hosts, []string{"app.example.com"}) {
					t.Errorf("app = %+v", app)
				}
				if len(r.Warnings) != 0 {
					t.Errorf("warnings = %q, want none", r.Warnings)
				}
			},
		},
		{name: "hosts without a port", files: []string{"testdata/bad-hosts/compose.yaml"}, wantErr: "cron_job: invalid: port 0"},
		{name: "remote build context", files: []string{"testdata/bad-remote-build/compose.yaml"}, wantErr: "only a local directory can be built"},
		{name: "host network", files: []string{"testdata/bad-host-network/compose.yaml"}, wantErr: "network_mode host is not allowed"},
		{name: "replicated database", files: []string{"testdata/bad-stateful-replicas/compose.yaml"}, wantErr: "a stateful service runs exactly one replica"},
		{name: "name too long", files: []string{"testdata/bad-name/compose.yaml"}, wantErr: "cannot be named"},
		{name: "broken YAML", files: []string{"testdata/bad-yaml/compose.yaml"}, wantErr: "did not find expected"},
		{name: "no file", files: nil, wantErr: "no Compose file"},
		{name: "missing file", files: []string{"testdata/nope.yaml"}, wantErr: "not a readable file"},
		{name: "bad project", files: []string{"testdata/shop/compose.yaml"}, project: "Shop!", wantErr: "project"},
		{name: "bad env", files: []string{"testdata/shop/compose.yaml"}, env: "prod_eu", wantErr: "environment"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Load(context.Background(), c.files, c.project, c.env)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want an ErrInvalid containing %q", err, c.wantErr)
				}
				if r.Specs != nil {
					t.Fatal("specs returned with an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Every spec passes the leader's checks, as given (a build
			// context is checked as the digest the CLI will put there).
			for _, s := range r.Specs {
				n := s.Clone()
				n.Normalize()
				if !reflect.DeepEqual(n, s) {
					t.Errorf("%s is not normalized", s.Service)
				}
				if n.Build != "" {
					if r.Builds[n.Service] != n.Build {
						t.Errorf("%s: build %s not in Builds", n.Service, n.Build)
					}
					n.Build = "sha256:" + strings.Repeat("a", 64)
				}
				if err := n.Validate(); err != nil {
					t.Errorf("%s: %v", n.Service, err)
				}
			}
			c.check(t, r)
		})
	}
}

// Service names Compose allows but dropmesh does not are renamed, and said so.
func TestLoadRenamesServices(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "compose.yaml")
	os.WriteFile(path, []byte("services:\n  My_App.v2:\n    image: nginx:1\n    ports: ['80']\n  my-app-v2x:\n    image: nginx:1\n"), 0o644)
	r, err := Load(context.Background(), []string{path}, "demo", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(r), ","); got != "my-app-v2,my-app-v2x" {
		t.Fatalf("services = %s", got)
	}
	if !hasWarning(r, "service My_App.v2: deployed as my-app-v2") {
		t.Fatalf("warnings = %q", r.Warnings)
	}
	os.WriteFile(path, []byte("services:\n  my_app:\n    image: nginx:1\n  my-app:\n    image: nginx:1\n"), 0o644)
	if _, err := Load(context.Background(), []string{path}, "demo", ""); err == nil || !strings.Contains(err.Error(), "would both be named") {
		t.Fatalf("colliding names: err = %v", err)
	}
}

// The dropmesh.kind label makes a database the image does not give away stateful.
func TestKindLabelAndExpose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "compose.yaml")
	os.WriteFile(path, []byte(`
services:
  app:
    image: 127.0.0.1:5000/app:1
    ports: ["8000"]
    depends_on: [mongo]
  mongo:
    image: mongo:7
    expose: ["27017/tcp", "27018/udp"]
    labels: {dropmesh.kind: stateful}
    volumes: [data:/data/db]
volumes: {data: {}}
`), 0o644)
	r, err := Load(context.Background(), []string{path}, "demo", "")
	if err != nil {
		t.Fatal(err)
	}
	mongo := byName(t, r, "mongo")
	if mongo.Kind != raftfsm.KindStateful || mongo.Port != 27017 || len(mongo.Ports) != 0 || mongo.Volume != "/data/db" {
		t.Fatalf("mongo = %+v", mongo)
	}
	if !hasWarning(r, "service mongo:", "27018/udp is not routed") {
		t.Fatalf("no warning for a UDP expose: %q", r.Warnings)
	}
	if app := byName(t, r, "app"); !reflect.DeepEqual(app.Uses, []string{"mongo"}) {
		t.Fatalf("app uses %v", app.Uses)
	}
	if names(r)[0] != "mongo" {
		t.Fatalf("order = %v, want mongo first", names(r))
	}
}
