package imagepeer_test

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/dropmesh/dropmesh/node/imagepeer"
	"github.com/dropmesh/dropmesh/node/imagepeer/enginetest"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

// BenchmarkImageSpread gets a 200 MB image onto 3 engines three ways, each
// with its own content so no engine has a cached copy: built once and
// spread by peers (one build, then two fetches at once), built by every
// engine at once, and pulled by every engine at once from the in-memory
// registry (the push to it is not timed). s-peers includes its one build
// (s-peers-build) and the export the first peer request makes. Run once:
//
//	go test -run '^$' -bench ImageSpread -benchtime 1x ./node/imagepeer/
func BenchmarkImageSpread(b *testing.B) {
	engines := make([]*enginetest.Engine, 3)
	var wg sync.WaitGroup
	for i := range engines {
		wg.Add(1)
		go func() { defer wg.Done(); engines[i] = enginetest.Start(b) }()
	}
	wg.Wait()
	for _, e := range engines {
		if e == nil || e.RT == nil {
			b.FailNow()
		}
	}
	const size = 200 << 20
	ctx := context.Background()
	for range b.N {
		// Built once, spread by peers.
		tar := contextTarB(b, randomBytesB(b, size))
		start := time.Now()
		if _, err := engines[0].RT.BuildImage(ctx, tar, []string{"bench/peers:1"}, "Dockerfile", nil, nil); err != nil {
			b.Fatal(err)
		}
		id, _, _, err := engines[0].RT.ImageLayers(ctx, "bench/peers:1")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s-peers-build")
		srv := benchPeer(b, engines[0].RT)
		wg = sync.WaitGroup{}
		for _, e := range engines[1:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f := &imagepeer.Fetcher{HTTP: srv.Client(), APIKey: "k", Engine: e.RT, Dir: b.TempDir()}
				if _, err := f.Fetch(ctx, "bench/peers:1", id, []string{"bench/peers:1"}, []imagepeer.Peer{{Name: "a", Addr: srv.URL}}, nil); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(time.Since(start).Seconds(), "s-peers")

		// Every engine builds it.
		data := randomBytesB(b, size)
		start = time.Now()
		wg = sync.WaitGroup{}
		for _, e := range engines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.RT.BuildImage(ctx, contextTarB(b, data), []string{"bench/each:1"}, "Dockerfile", nil, nil); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(time.Since(start).Seconds(), "s-each-builds")

		// Every engine pulls it from the in-memory registry.
		reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		ref := strings.TrimPrefix(reg.URL, "http://") + "/bench/reg:1"
		if _, err := engines[0].RT.BuildImage(ctx, contextTarB(b, randomBytesB(b, size)), []string{"bench/reg:1"}, "Dockerfile", nil, nil); err != nil {
			b.Fatal(err)
		}
		runtimetest.PushImage(b, engines[0].RT, "bench/reg:1", ref)
		_ = engines[0].RT.RemoveImage(ctx, ref)
		_ = engines[0].RT.RemoveImage(ctx, "bench/reg:1")
		start = time.Now()
		wg = sync.WaitGroup{}
		for _, e := range engines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.RT.EnsureImage(ctx, ref, nil, true, nil); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(time.Since(start).Seconds(), "s-registry-pulls")
		reg.Close()
	}
}
