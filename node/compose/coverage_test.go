package compose

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// TestLoadProcessKeys: entrypoint, command, user, working_dir, every port
// of ports and expose, env_file, a CMD-SHELL healthcheck, restart and a
// stateful service's named volumes are all mapped, and none is warned of.
func TestLoadProcessKeys(t *testing.T) {
	r, err := Load(context.Background(), []string{"testdata/coverage/compose.yaml"}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	api := byName(t, r, "api")
	if !reflect.DeepEqual(api.Entrypoint, []string{"/bin/api", "--serve"}) || !reflect.DeepEqual(api.Command, []string{"--verbose"}) ||
		api.User != "1000:1000" || api.WorkingDir != "/srv" || api.Restart != raftfsm.RestartOnFailure || api.Vars["API_MODE"] != "fast" {
		t.Errorf("api process = %+v", api)
	}
	if api.Port != 8000 || !reflect.DeepEqual(api.Ports, []int{8001, 9100}) {
		t.Errorf("api ports = %d + %v, want 8000 + [8001 9100]", api.Port, api.Ports)
	}
	if !reflect.DeepEqual(api.Health.Command, []string{"/bin/sh", "-c", "api-health --quick"}) || api.Health.Path != "" {
		t.Errorf("api health = %+v", api.Health)
	}
	q := byName(t, r, "queue")
	want := []raftfsm.NamedVolume{{Name: "qlogs", Path: "/var/log/queue"}, {Name: "volume-3", Path: "/var/spool/queue"}}
	if q.Kind != raftfsm.KindStateful || q.Port != 5672 || q.Volume != "/var/lib/queue" || !reflect.DeepEqual(q.Volumes, want) {
		t.Errorf("queue = kind %s port %d volume %s volumes %+v", q.Kind, q.Port, q.Volume, q.Volumes)
	}
	// Every dependency comes first; only the stateful one is in uses.
	if order := names(r); !reflect.DeepEqual(api.Uses, []string{"queue"}) || order[len(order)-1] != "api" {
		t.Errorf("api uses %v, order %v: want queue only, api last", api.Uses, order)
	}
	if !hasWarning(r, "service api: depends_on migrate", "service_completed_successfully") {
		t.Errorf("the completion condition is not warned of: %q", r.Warnings)
	}
	for _, w := range r.Warnings {
		if !strings.Contains(w, "host port 8001") && !strings.Contains(w, "host_ip") && !strings.Contains(w, "retry count") &&
			!strings.Contains(w, "service_completed_successfully") {
			t.Errorf("unexpected warning %q", w)
		}
	}
	if !hasWarning(r, "on-failure:3", "retry count") {
		t.Errorf("the restart retry count is not warned of: %q", r.Warnings)
	}
}

// TestLoadRefusesRoot: user root would undo the container's confinement.
func TestLoadRefusesRoot(t *testing.T) {
	_, err := Load(context.Background(), []string{"testdata/bad-root/compose.yaml"}, "", "")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "root") {
		t.Fatalf("user root: %v", err)
	}
}
