package raftfsm

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDecodeSpecYAML(t *testing.T) {
	data, err := os.ReadFile("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := DecodeSpecBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	if spec.Workspace != "demo" || spec.Env != "prod" || spec.Vars["LOG_LEVEL"] != "info" || spec.Secrets["DB_PASSWORD"] != "s3cret" ||
		spec.Health.Interval.D() != time.Minute || spec.Health.Path != "/health" || spec.Replicas != 2 || spec.Kind != KindService {
		t.Fatalf("spec %+v", spec)
	}
}

func TestDecodeSpecEnvForms(t *testing.T) {
	cases := map[string]struct {
		doc     string
		env     string
		vars    map[string]string
		wantErr string
	}{
		"env name and environment vars": {doc: "project: a\nservice: b\nimage: x\nenv: staging\nenvironment: {K: v}", env: "staging", vars: map[string]string{"K": "v"}},
		"env vars and environment name": {doc: "project: a\nservice: b\nimage: x\nenv: {K: v}\nenvironment: staging", env: "staging", vars: map[string]string{"K": "v"}},
		"env vars only":                 {doc: "project: a\nservice: b\nimage: x\nenv: {K: v}", env: "", vars: map[string]string{"K": "v"}},
		"two names":                     {doc: "project: a\nservice: b\nimage: x\nenv: a\nenvironment: b", wantErr: "given twice"},
		"env a list":                    {doc: "project: a\nservice: b\nimage: x\nenv: [1, 2]", wantErr: `field "env"`},
		"json":                          {doc: `{"project":"a","service":"b","image":"x","env":"qa"}`, env: "qa"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec, err := DecodeSpecBytes([]byte(tc.doc))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if spec.Env != tc.env || len(spec.Vars) != len(tc.vars) {
				t.Fatalf("env %q vars %v", spec.Env, spec.Vars)
			}
		})
	}
}

func TestDecodeSpecRejectsUnknownFieldsAndWrongTypes(t *testing.T) {
	cases := map[string]string{
		"project: a\nservice: b\nimage: x\nreplica: 2":       `unknown field "replica"`,
		"project: a\nservice: b\nimage: x\nport: eighty":     `field "port" must be int`,
		"project: a\nservice: b\nimage: x\nhealth: {pth: /}": `unknown field "pth"`,
		"":                  "empty",
		"[1, 2]":            "must be a mapping",
		"project: [":        "not valid YAML",
		"a: 1\n---\nb: 2\n": "unknown field",
	}
	for doc, want := range cases {
		_, err := DecodeSpecBytes([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want it to contain %q", doc, err, want)
		}
	}
	big := strings.NewReader("project: a\nservice: b\nimage: x\ncommand: [\"" + strings.Repeat("a", MaxSpecBytes) + "\"]")
	if _, err := DecodeSpec(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversize: %v", err)
	}
}

func TestSpecValidation(t *testing.T) {
	base := func() ServiceSpec {
		return ServiceSpec{Project: "shop", Env: "prod", Service: "web", Image: "nginx:1", Port: 80}
	}
	bad := map[string]func(s *ServiceSpec){
		"service name with ;":     func(s *ServiceSpec) { s.Service = "web;rm" },
		"service name with }":     func(s *ServiceSpec) { s.Service = "web}" },
		"project with space":      func(s *ServiceSpec) { s.Project = "my shop" },
		"cyrillic look-alike":     func(s *ServiceSpec) { s.Service = "wеb" },
		"underscore":              func(s *ServiceSpec) { s.Service = "my_web" },
		"no image":                func(s *ServiceSpec) { s.Image = "" },
		"image and build":         func(s *ServiceSpec) { s.Build = "sha256:" + strings.Repeat("0", 64) },
		"bad build":               func(s *ServiceSpec) { s.Image, s.Build = "", "../ctx" },
		"bad image":               func(s *ServiceSpec) { s.Image = "Nginx Latest" },
		"port zero service":       func(s *ServiceSpec) { s.Port = 0; s.Kind = KindService },
		"port too big":            func(s *ServiceSpec) { s.Port = 70000 },
		"host with ;":             func(s *ServiceSpec) { s.Hosts = []string{"a.com;"} },
		"host with {":             func(s *ServiceSpec) { s.Hosts = []string{"a{.com"} },
		"host with space":         func(s *ServiceSpec) { s.Hosts = []string{"a .com"} },
		"host wildcard inside":    func(s *ServiceSpec) { s.Hosts = []string{"a.*.com"} },
		"host unicode":            func(s *ServiceSpec) { s.Hosts = []string{"ехаmple.com"} },
		"host twice":              func(s *ServiceSpec) { s.Hosts = []string{"a.com", "a.com"} },
		"host single label":       func(s *ServiceSpec) { s.Hosts = []string{"localhost"} },
		"replicas too many":       func(s *ServiceSpec) { s.Replicas = 1000 },
		"nodes mismatch":          func(s *ServiceSpec) { s.Replicas = 2; s.Nodes = []string{"node-1"} },
		"env var name":            func(s *ServiceSpec) { s.Vars = map[string]string{"BAD-NAME": "x"} },
		"env var NUL":             func(s *ServiceSpec) { s.Vars = map[string]string{"A": "x\x00"} },
		"secret also var":         func(s *ServiceSpec) { s.Vars = map[string]string{"A": "1"}; s.Secrets = map[string]string{"A": "2"} },
		"worker with port":        func(s *ServiceSpec) { s.Kind = KindWorker },
		"cron without schedule":   func(s *ServiceSpec) { s.Kind, s.Port = KindCron, 0 },
		"cron bad schedule":       func(s *ServiceSpec) { s.Kind, s.Port, s.Schedule = KindCron, 0, "every day" },
		"schedule on service":     func(s *ServiceSpec) { s.Schedule = "* * * * *" },
		"stateful with hosts":     func(s *ServiceSpec) { s.Kind = KindStateful; s.Hosts = []string{"db.example.com"} },
		"stateful two replicas":   func(s *ServiceSpec) { s.Kind, s.Replicas = KindStateful, 2 },
		"stateful relative mount": func(s *ServiceSpec) { s.Kind, s.Volume = KindStateful, "data" },
		"volume on service":       func(s *ServiceSpec) { s.Volume = "/data" },
		"health path relative":    func(s *ServiceSpec) { s.Health.Path = "health" },
		"health path space":       func(s *ServiceSpec) { s.Health.Path = "/he alth" },
		"health interval":         func(s *ServiceSpec) { s.Health.Interval = Duration(time.Millisecond) },
		"uses itself":             func(s *ServiceSpec) { s.Uses = []string{"web"} },
		"memory":                  func(s *ServiceSpec) { s.Memory = "lots" },
		"memory tiny":             func(s *ServiceSpec) { s.Memory = "1k" },
		"kind":                    func(s *ServiceSpec) { s.Kind = "lambda" },
		"dockerfile escape": func(s *ServiceSpec) {
			s.Image, s.Build, s.Dockerfile = "", "sha256:"+strings.Repeat("0", 64), "../Dockerfile"
		},
	}
	ok := base()
	ok.Normalize()
	if err := ok.Validate(); err != nil {
		t.Fatalf("base spec: %v", err)
	}
	for name, mut := range bad {
		t.Run(name, func(t *testing.T) {
			s := base()
			mut(&s)
			s.Normalize()
			err := s.Validate()
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("accepted (err %v)", err)
			}
		})
	}
}

func TestSpecNormalizeDefaults(t *testing.T) {
	cases := []struct {
		in   ServiceSpec
		kind Kind
	}{
		{ServiceSpec{Port: 80}, KindService},
		{ServiceSpec{}, KindWorker},
		{ServiceSpec{Schedule: "@hourly"}, KindCron},
	}
	for _, c := range cases {
		c.in.Normalize()
		if c.in.Kind != c.kind || c.in.Env != DefaultEnvironment || c.in.Replicas != 1 || c.in.Health.StartChecks != DefaultStartChecks {
			t.Fatalf("normalized %+v, want kind %s", c.in, c.kind)
		}
	}
	s := ServiceSpec{Kind: KindStateful, Nodes: []string{"a", "b"}}
	s.Normalize()
	if s.Volume != DefaultVolumePath || s.Replicas != 2 {
		t.Fatalf("stateful %+v", s)
	}
}

func TestSealedSecretsRoundTrip(t *testing.T) {
	aead := testAEAD(t)
	spec := ServiceSpec{Secrets: map[string]string{"A": "1", "B": "2"}}
	if err := SealSecrets(aead, "k", &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Secrets != nil || len(spec.SealedSecrets) != 2 || strings.Contains(string(spec.SealedSecrets["A"]), "1") && len(spec.SealedSecrets["A"]) < 10 {
		t.Fatalf("sealed %+v", spec)
	}
	plain, err := OpenSecrets(aead, "k", spec)
	if err != nil || plain["A"] != "1" || plain["B"] != "2" {
		t.Fatalf("open %v %v", plain, err)
	}
	if _, err := OpenSecrets(aead, "other-service", spec); !errors.Is(err, ErrUnseal) {
		t.Fatalf("opened under another service key: %v", err)
	}
}

// TestSpecValidationLogPattern: health.log_pattern must compile as the
// health checks compile it, stay under its length cap and not match an
// empty line; the error names the field.
func TestSpecValidationLogPattern(t *testing.T) {
	bad := map[string]string{
		"does not compile":    `(oops`,
		"not RE2":             `(?<=ERROR)x`,
		"too long":            "ERROR" + strings.Repeat("x", MaxLogPatternLen),
		"matches empty lines": `(?i)error|`,
		"matches every line":  `.*`,
	}
	for name, p := range bad {
		t.Run(name, func(t *testing.T) {
			s := ServiceSpec{Project: "shop", Env: "prod", Service: "web", Image: "nginx:1", Port: 80, Health: HealthSpec{LogPattern: p}}
			s.Normalize()
			err := s.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "health.log_pattern") {
				t.Fatalf("pattern %.40q: err %v, want an invalid health.log_pattern", p, err)
			}
		})
	}
	s := ServiceSpec{Project: "shop", Env: "prod", Service: "web", Image: "nginx:1", Port: 80,
		Health: HealthSpec{LogPattern: `^\S+ (?:OOPS|BOOM)\b` + strings.Repeat(" ?", 100)}}
	s.Normalize()
	if err := s.Validate(); err != nil {
		t.Fatalf("a valid pattern: %v", err)
	}
}
