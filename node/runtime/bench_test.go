package runtime

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
)

// BenchmarkRawDockerRun is the floor for a deploy: create and start the
// (warm) test app image straight through the Docker API, publishing an
// ephemeral port as `docker run -p` does, until its port answers 200. The
// lead compares dropmesh's deploy latency against it.
func BenchmarkRawDockerRun(b *testing.B) {
	rt, img := dockerFixture(b)
	ctx := context.Background()
	port := nat.Port(strconv.Itoa(TestAppPort) + "/tcp")
	hc := http.Client{Timeout: time.Second}
	var create, start, ready time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := TestContainerName(b)
		t0 := time.Now()
		created, err := rt.cli.ContainerCreate(ctx,
			&container.Config{Image: img, Labels: TestLabels(b), ExposedPorts: nat.PortSet{port: {}}},
			&container.HostConfig{PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1"}}}}, nil, nil, name)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := rt.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		cj, err := rt.cli.ContainerInspect(ctx, created.ID)
		if err != nil {
			b.Fatal(err)
		}
		url := "http://127.0.0.1:" + cj.NetworkSettings.Ports[port][0].HostPort + "/health"
		deadline := t2.Add(30 * time.Second)
		for {
			resp, err := hc.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s did not answer within 30s", name)
			}
			time.Sleep(2 * time.Millisecond) // polling the port, not synchronising
		}
		t3 := time.Now()
		create, start, ready = create+t1.Sub(t0), start+t2.Sub(t1), ready+t3.Sub(t2)
		b.StopTimer()
		if err := rt.Remove(ctx, created.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(float64((create+start+ready).Microseconds())/1000/n, "ms/run")
	b.ReportMetric(float64(create.Microseconds())/1000/n, "create-ms/op")
	b.ReportMetric(float64(start.Microseconds())/1000/n, "start-ms/op")
	b.ReportMetric(float64(ready.Microseconds())/1000/n, "ready-ms/op")
}
