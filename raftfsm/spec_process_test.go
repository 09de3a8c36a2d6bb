package raftfsm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestSpecProcessFields checks the Compose-derived fields: good values are
// accepted and survive a YAML round trip; unsafe or malformed ones are
// refused with ErrInvalid naming the field.
func TestSpecProcessFields(t *testing.T) {
	good := `project: shop
env: prod
service: db
kind: stateful
image: postgres:16
port: 5432
ports: [9187]
entrypoint: [docker-entrypoint.sh]
command: [postgres, -c, fsync=off]
user: "999:999"
working_dir: /var/lib/postgresql
volumes: [{name: wal, path: /wal}]
restart: unless-stopped
health: {command: [pg_isready, -U, postgres]}
`
	s, err := DecodeSpecBytes([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		t.Fatalf("good spec refused: %v", err)
	}
	want := ServiceSpec{Entrypoint: []string{"docker-entrypoint.sh"}, User: "999:999", WorkingDir: "/var/lib/postgresql",
		Ports: []int{9187}, Volumes: []NamedVolume{{Name: "wal", Path: "/wal"}}, Restart: RestartUnlessStopped}
	got := ServiceSpec{Entrypoint: s.Entrypoint, User: s.User, WorkingDir: s.WorkingDir, Ports: s.Ports, Volumes: s.Volumes, Restart: s.Restart}
	if !reflect.DeepEqual(got, want) || strings.Join(s.Health.Command, " ") != "pg_isready -U postgres" {
		t.Fatalf("decoded %+v health %v", got, s.Health.Command)
	}
	c := s.Clone()
	c.Ports[0], c.Volumes[0].Name, c.Health.Command[0] = 1, "x", "x"
	if s.Ports[0] != 9187 || s.Volumes[0].Name != "wal" || s.Health.Command[0] != "pg_isready" {
		t.Fatal("Clone shares slices with the original")
	}

	bad := map[string]func(s *ServiceSpec){
		"user root":            func(s *ServiceSpec) { s.User = "root" },
		"user 0":               func(s *ServiceSpec) { s.User = "0" },
		"user 0:0":             func(s *ServiceSpec) { s.User = "0:0" },
		"user 000":             func(s *ServiceSpec) { s.User = "000:1000" },
		"user root:wheel":      func(s *ServiceSpec) { s.User = "root:wheel" },
		"user shell":           func(s *ServiceSpec) { s.User = "app;id" },
		"working dir relative": func(s *ServiceSpec) { s.WorkingDir = "app" },
		"working dir dots":     func(s *ServiceSpec) { s.WorkingDir = "/app/../etc" },
		"port out of range":    func(s *ServiceSpec) { s.Ports = []int{70000} },
		"port repeats main":    func(s *ServiceSpec) { s.Ports = []int{5432} },
		"port twice":           func(s *ServiceSpec) { s.Ports = []int{1, 1} },
		"volume name":          func(s *ServiceSpec) { s.Volumes = []NamedVolume{{Name: "A B", Path: "/x"}} },
		"volume path":          func(s *ServiceSpec) { s.Volumes = []NamedVolume{{Name: "x", Path: "x"}} },
		"volume on main path":  func(s *ServiceSpec) { s.Volumes = []NamedVolume{{Name: "x", Path: DefaultVolumePath}} },
		"restart":              func(s *ServiceSpec) { s.Restart = "sometimes" },
		"entrypoint NUL":       func(s *ServiceSpec) { s.Entrypoint = []string{"a\x00"} },
		"health both":          func(s *ServiceSpec) { s.Health.Path = "/h" },
		"health command NUL":   func(s *ServiceSpec) { s.Health.Command = []string{"\x00"} },
		"volumes on service":   func(s *ServiceSpec) { s.Kind, s.Volume = KindService, "" },
		"ports on worker":      func(s *ServiceSpec) { s.Kind, s.Port, s.Volume, s.Volumes = KindWorker, 0, "", nil },
	}
	for name, mut := range bad {
		t.Run(name, func(t *testing.T) {
			b := s.Clone()
			mut(&b)
			if err := b.Validate(); err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("accepted (err %v)", err)
			}
		})
	}
}
