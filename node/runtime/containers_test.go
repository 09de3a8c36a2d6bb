package runtime_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

func TestContainerLifecycle(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, 2*time.Minute)
	svc := "web-" + runtimetest.RandomSuffix()
	c := startApp(t, runtime.ContainerSpec{Env: map[string]string{"VERSION": "v-lifecycle"}, Labels: map[string]string{runtime.LabelService: svc, runtime.LabelManaged: "true"}})

	if !c.Running || c.Status != "running" || c.HostIP != "127.0.0.1" || c.HostPort == 0 || c.Port != runtimetest.TestAppPort {
		t.Fatalf("started container = %+v; want running, published on 127.0.0.1:<ephemeral> from %d", c, runtimetest.TestAppPort)
	}
	if c.Labels[runtime.LabelService] != svc || c.Labels[runtimetest.LabelTest] != t.Name() || c.StartedAt.IsZero() || !strings.HasPrefix(c.ImageID, "sha256:") {
		t.Fatalf("started container = %+v; want labels, start time and image id", c)
	}
	if code, body := runtimetest.HTTPGet(appURL(c) + "/"); code != 200 || !strings.Contains(body, "v-lifecycle") {
		t.Fatalf("GET / = %d %q; want the app's answer with its VERSION", code, body)
	}
	// Its own network address answers too (what the edge uses, skipping
	// the published port).
	if net.ParseIP(c.IP) == nil {
		t.Fatalf("started container has network address %q", c.IP)
	}
	if code, body := runtimetest.HTTPGet("http://" + net.JoinHostPort(c.IP, strconv.Itoa(c.Port)) + "/"); code != 200 || !strings.Contains(body, "v-lifecycle") {
		t.Fatalf("GET / on the network address = %d %q; want the app's answer", code, body)
	}

	list, err := rt.List(ctx, map[string]string{runtime.LabelService: svc})
	if err != nil || len(list) != 1 || list[0].ID != c.ID || list[0].HostPort != c.HostPort {
		t.Fatalf("List by service label = %+v, %v; want just %s", list, err, c.Name)
	}
	if list, err := rt.List(ctx, map[string]string{runtime.LabelService: svc, runtime.LabelManaged: ""}); err != nil || len(list) != 1 {
		t.Fatalf("List by label presence = %d, %v; want 1", len(list), err)
	}
	if list, err := rt.List(ctx, map[string]string{runtime.LabelService: svc, runtime.LabelManaged: "false"}); err != nil || len(list) != 0 {
		t.Fatalf("List with a label that does not match = %d, %v; want none", len(list), err)
	}

	if err := rt.Stop(ctx, c.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	stopped, err := rt.Inspect(ctx, c.Name)
	if err != nil || stopped.Running || stopped.Status != "exited" || stopped.ExitCode != 0 || stopped.FinishedAt.IsZero() || stopped.IP != "" {
		t.Fatalf("after Stop = %+v, %v; want exited with 0 (the app ends cleanly on SIGTERM)", stopped, err)
	}
	if code, _ := runtimetest.HTTPGet(appURL(c) + "/health"); code != 0 {
		t.Fatalf("a stopped container still answers (%d)", code)
	}
	if err := rt.Stop(ctx, c.ID, time.Second); err != nil {
		t.Fatalf("Stop of a stopped container = %v, want nil", err)
	}
	if list, _ := rt.List(ctx, map[string]string{runtime.LabelService: svc}); len(list) != 1 || list[0].Running {
		t.Fatalf("List must include stopped containers: %+v", list)
	}

	if err := rt.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	started, err := rt.Inspect(ctx, c.ID)
	if err != nil || !started.Running || started.HostPort == 0 {
		t.Fatalf("after Start = %+v, %v", started, err)
	}
	runtimetest.WaitHTTP(t, appURL(started)+"/health", 20*time.Second)

	if err := rt.Restart(ctx, c.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	restarted, err := rt.Inspect(ctx, c.ID)
	if err != nil || !restarted.Running || !restarted.StartedAt.After(started.StartedAt) {
		t.Fatalf("after Restart = %+v, %v; want running with a later start than %v", restarted, err, started.StartedAt)
	}
	runtimetest.WaitHTTP(t, appURL(restarted)+"/health", 20*time.Second)

	newName := runtimetest.TestContainerName(t)
	runtimetest.RemoveOnCleanup(t, rt, newName)
	if err := rt.Rename(ctx, c.ID, newName); err != nil {
		t.Fatal(err)
	}
	if got, err := rt.Inspect(ctx, newName); err != nil || got.ID != c.ID || got.Name != newName {
		t.Fatalf("Inspect(new name) = %+v, %v", got, err)
	}
	if _, err := rt.Inspect(ctx, c.Name); !errors.Is(err, runtime.ErrContainerNotFound) {
		t.Fatalf("Inspect(old name) = %v, want ErrContainerNotFound", err)
	}

	if err := rt.Remove(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Inspect(ctx, c.ID); !errors.Is(err, runtime.ErrContainerNotFound) {
		t.Fatalf("Inspect after Remove = %v, want ErrContainerNotFound", err)
	}
	if err := rt.Remove(ctx, c.ID); err != nil {
		t.Fatalf("Remove of a removed container = %v, want nil", err)
	}
}

func TestMissingContainer(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, time.Minute)
	name := runtimetest.TestContainerName(t)
	if _, err := rt.Inspect(ctx, name); !errors.Is(err, runtime.ErrContainerNotFound) {
		t.Fatalf("Inspect = %v, want ErrContainerNotFound", err)
	}
	for op, err := range map[string]error{
		"Start":   rt.Start(ctx, name),
		"Stop":    rt.Stop(ctx, name, time.Second),
		"Restart": rt.Restart(ctx, name, time.Second),
		"Rename":  rt.Rename(ctx, name, name+"-x"),
		"Logs":    rt.Logs(ctx, name, runtime.LogOptions{}, &syncBuffer{}),
	} {
		if !errors.Is(err, runtime.ErrContainerNotFound) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s of a missing container = %v; want ErrContainerNotFound naming it", op, err)
		}
	}
	if _, err := rt.Wait(ctx, name); !errors.Is(err, runtime.ErrContainerNotFound) {
		t.Errorf("Wait = %v, want ErrContainerNotFound", err)
	}
	if err := rt.Remove(ctx, name); err != nil {
		t.Errorf("Remove = %v, want nil", err)
	}
}

func TestCreateReplacesStoppedLeftoverButNotRunning(t *testing.T) {
	t.Parallel()
	rt, img := dockerFixture(t)
	ctx := testCtx(t, 2*time.Minute)
	name := runtimetest.TestContainerName(t)
	first := startApp(t, runtime.ContainerSpec{Name: name})

	_, err := rt.CreateAndStart(ctx, runtime.ContainerSpec{Name: name, Image: img, Labels: runtimetest.TestLabels(t)})
	if !errors.Is(err, runtime.ErrNameInUse) {
		t.Fatalf("CreateAndStart over a running container = %v, want ErrNameInUse", err)
	}
	if still, err := rt.Inspect(ctx, first.ID); err != nil || !still.Running {
		t.Fatalf("the running container was touched: %+v, %v", still, err)
	}

	if err := rt.Stop(ctx, first.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	second := startApp(t, runtime.ContainerSpec{Name: name})
	if second.ID == first.ID || !second.Running {
		t.Fatalf("second = %+v; want a new running container", second)
	}
	if _, err := rt.Inspect(ctx, first.ID); !errors.Is(err, runtime.ErrContainerNotFound) {
		t.Fatalf("the stopped leftover is still there: %v", err)
	}
}

func TestStartFailureRemovesTheContainer(t *testing.T) {
	t.Parallel()
	rt, img := dockerFixture(t)
	ctx := testCtx(t, time.Minute)
	// Hold a port so Docker cannot publish on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	name := runtimetest.TestContainerName(t)
	runtimetest.RemoveOnCleanup(t, rt, name)
	_, err = rt.CreateAndStart(ctx, runtime.ContainerSpec{Name: name, Image: img, Labels: runtimetest.TestLabels(t), Port: runtimetest.TestAppPort, HostPort: port})
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("CreateAndStart on a taken port = %v; want Docker's error naming port %d", err, port)
	}
	if _, err := rt.Inspect(ctx, name); !errors.Is(err, runtime.ErrContainerNotFound) {
		t.Fatalf("the container that could not start was left behind: %v", err)
	}
}

func TestFixedHostPortAndLimits(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, time.Minute)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // free again for Docker; a race with another process is unlikely
	c := startApp(t, runtime.ContainerSpec{HostPort: port, MemoryBytes: 64 << 20, NanoCPUs: 5e8, RestartPolicy: runtime.RestartUnlessStopped})
	if c.HostPort != port || c.HostIP != "127.0.0.1" {
		t.Fatalf("published on %s:%d, want 127.0.0.1:%d", c.HostIP, c.HostPort, port)
	}
	cj, err := rt.Docker().ContainerInspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	hc := cj.HostConfig
	if hc.Memory != 64<<20 || hc.NanoCPUs != 5e8 || hc.RestartPolicy.Name != "unless-stopped" || hc.LogConfig.Type != "json-file" ||
		hc.LogConfig.Config["max-size"] == "" || *cj.Config.StopTimeout != 5 {
		t.Fatalf("host config = %+v, stop timeout %v", hc, *cj.Config.StopTimeout)
	}
}

func TestBadSpecsAreRefusedUpFront(t *testing.T) {
	t.Parallel()
	rt := runtime.DeadRuntime(t)
	ctx := testCtx(t, 30*time.Second)
	ok := runtime.ContainerSpec{Name: "dmtest-ok", Image: "img"}
	for name, mod := range map[string]func(*runtime.ContainerSpec){
		"name with slash":      func(s *runtime.ContainerSpec) { s.Name = "a/b" },
		"empty name":           func(s *runtime.ContainerSpec) { s.Name = "" },
		"name starting with -": func(s *runtime.ContainerSpec) { s.Name = "-x" },
		"no image":             func(s *runtime.ContainerSpec) { s.Image = "" },
		"env key with =":       func(s *runtime.ContainerSpec) { s.Env = map[string]string{"A=B": "c"} },
		"empty env key":        func(s *runtime.ContainerSpec) { s.Env = map[string]string{"": "c"} },
		"label key with =":     func(s *runtime.ContainerSpec) { s.Labels = map[string]string{"a=b": "c"} },
		"port too big":         func(s *runtime.ContainerSpec) { s.Port = 70000 },
		"negative host port":   func(s *runtime.ContainerSpec) { s.Port, s.HostPort = 80, -1 },
		"host port without":    func(s *runtime.ContainerSpec) { s.HostPort = 8080 },
		"publish IP not an IP": func(s *runtime.ContainerSpec) { s.Port, s.PublishIP = 80, "nope" },
		"stateful on 0.0.0.0": func(s *runtime.ContainerSpec) {
			s.Port, s.PublishIP, s.Mounts = 80, "0.0.0.0", []runtime.Mount{{"v", "/data"}}
		},
		"relative mount target": func(s *runtime.ContainerSpec) { s.Mounts = []runtime.Mount{{"v", "data"}} },
		"unclean mount target":  func(s *runtime.ContainerSpec) { s.Mounts = []runtime.Mount{{"v", "/data/../etc"}} },
		"bad volume name":       func(s *runtime.ContainerSpec) { s.Mounts = []runtime.Mount{{"../v", "/data"}} },
		"two mounts on one dir": func(s *runtime.ContainerSpec) { s.Mounts = []runtime.Mount{{"v", "/d"}, {"w", "/d"}} },
		"unknown restart":       func(s *runtime.ContainerSpec) { s.RestartPolicy = "sometimes" },
		"auto-remove + restart": func(s *runtime.ContainerSpec) { s.AutoRemove, s.RestartPolicy = true, runtime.RestartUnlessStopped },
		"negative memory":       func(s *runtime.ContainerSpec) { s.MemoryBytes = -1 },
		"negative stop timeout": func(s *runtime.ContainerSpec) { s.StopTimeout = -time.Second },
	} {
		spec := ok
		mod(&spec)
		if _, err := rt.CreateAndStart(ctx, spec); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("%s: CreateAndStart = %v, want ErrInvalid before any Docker call", name, err)
		}
	}
	for op, err := range map[string]error{
		"Rename bad name": rt.Rename(ctx, "abc", "bad name"),
		"Start empty id":  rt.Start(ctx, ""),
		"Stop empty id":   rt.Stop(ctx, "", 0),
		"Remove empty id": rt.Remove(ctx, ""),
		"Logs negative":   rt.Logs(ctx, "abc", runtime.LogOptions{Tail: -1}, &syncBuffer{}),
		"List bad label":  func() error { _, err := rt.List(ctx, map[string]string{"a=b": ""}); return err }(),
	} {
		if !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("%s = %v, want ErrInvalid", op, err)
		}
	}
	// The control: a valid spec does reach (the dead) Docker.
	if _, err := rt.CreateAndStart(ctx, ok); err == nil || errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("a valid spec = %v; want a connection error from the daemon", err)
	}
}

func TestCreateNeverRemovesAContainerMatchedByIDPrefix(t *testing.T) {
	t.Parallel()
	rt, img := dockerFixture(t)
	ctx := testCtx(t, time.Minute)
	a := startApp(t, runtime.ContainerSpec{})
	if err := rt.Stop(ctx, a.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Docker resolves "inspect <name>" by id prefix too; a name that
	// happens to be a prefix of a's id must not make a a "leftover".
	name := a.ID[:16]
	runtimetest.RemoveOnCleanup(t, rt, name)
	b, err := rt.CreateAndStart(ctx, runtime.ContainerSpec{Name: name, Image: img, Labels: runtimetest.TestLabels(t), Cmd: []string{"once"}})
	if err != nil {
		t.Fatal(err)
	}
	if b.ID == a.ID {
		t.Fatal("got the old container back")
	}
	if still, err := rt.Inspect(ctx, a.ID); err != nil || still.ID != a.ID {
		t.Fatalf("the container whose id starts with the new name was removed: %v", err)
	}
}
