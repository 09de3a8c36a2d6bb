package runtime_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

// TestExecAndProcessOptions runs a container with an entrypoint, a user, a
// working directory and a further exposed port, then runs commands inside
// it: the test app's one-shot mode (exit 0, its line in the output) and a
// missing binary (a non-zero exit, not an error of Exec).
func TestExecAndProcessOptions(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, 2*time.Minute)
	c := startApp(t, runtime.ContainerSpec{Entrypoint: []string{"/testapp"}, User: "1234:1234", WorkingDir: "/tmp", ExposedPorts: []int{9999}})
	cj, err := rt.Docker().ContainerInspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cj.Config.User != "1234:1234" || cj.Config.WorkingDir != "/tmp" || len(cj.Config.Entrypoint) != 1 {
		t.Fatalf("config = user %q dir %q entrypoint %v", cj.Config.User, cj.Config.WorkingDir, cj.Config.Entrypoint)
	}
	if _, ok := cj.Config.ExposedPorts["9999/tcp"]; !ok {
		t.Fatalf("exposed ports %v lack 9999/tcp", cj.Config.ExposedPorts)
	}
	res, err := rt.Exec(ctx, c.ID, []string{"/testapp", "once"})
	if err != nil || res.ExitCode != 0 || !strings.Contains(res.Output, "sample-app once") {
		t.Fatalf("exec once = %+v, %v; want exit 0 with its line", res, err)
	}
	res, err = rt.Exec(ctx, c.ID, []string{"/no/such/binary"})
	if err != nil || res.ExitCode == 0 {
		t.Fatalf("exec of a missing binary = %+v, %v; want a non-zero exit", res, err)
	}
	if _, err := rt.Exec(ctx, c.ID, nil); err == nil {
		t.Fatal("exec without a command accepted")
	}
	if _, err := rt.Exec(ctx, "dmtest-no-such-container-"+runtimetest.RandomSuffix(), []string{"/testapp"}); err == nil {
		t.Fatal("exec in a missing container succeeded")
	}
}
