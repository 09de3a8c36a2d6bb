package runtime_test

import (
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

// BenchmarkRawDockerRun is the floor for a deploy: create and start the
// (warm) test app image straight through the Docker API, publishing an
// ephemeral port as `docker run -p` does, until its port answers 200
// (RawRun). node's BenchmarkDeployLatency runs the same beside each deploy.
func BenchmarkRawDockerRun(b *testing.B) {
	rt, img := dockerFixture(b)
	var create, start, ready time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := runtimetest.RawRun(b, rt, img)
		create, start, ready = create+r.Create, start+r.Start, ready+r.Ready
	}
	n := float64(b.N)
	b.ReportMetric(float64((create+start+ready).Microseconds())/1000/n, "ms/run")
	b.ReportMetric(float64(create.Microseconds())/1000/n, "create-ms/op")
	b.ReportMetric(float64(start.Microseconds())/1000/n, "start-ms/op")
	b.ReportMetric(float64(ready.Microseconds())/1000/n, "ready-ms/op")
}
