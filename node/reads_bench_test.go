package node

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkReads compares, in one run, the latency and throughput of the
// default (linearizable) read with ?stale=true, on the leader and on a
// follower of a 3-agent cluster: GET /v1/settings over the real API on
// loopback, one keep-alive client. The linearizable read on a follower
// costs one round trip to the leader (its read index) on top of a stale
// read. Each sub-benchmark reports p50 and p99 of one read (sequential)
// and reads/s with 16 concurrent readers.
func BenchmarkReads(b *testing.B) {
	c := startCluster(b, 3, benchAddrs)
	leader := c.leader()
	var follower *testNode
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	key := leader.agent.Keys().APIKey
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func(url string) error {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
		}
		return nil
	}
	for _, on := range []struct {
		name string
		n    *testNode
	}{{"leader", leader}, {"follower", follower}} {
		for _, mode := range []struct{ name, query string }{{"default", ""}, {"stale", "?stale=true"}} {
			url := "http://" + on.n.cfg.addr(on.n.cfg.APIPort) + "/v1/settings" + mode.query
			b.Run(on.name+"/"+mode.name, func(b *testing.B) {
				for range 20 {
					if err := get(url); err != nil { // warms the connection
						b.Fatal(err)
					}
				}
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for range b.N {
					start := time.Now()
					if err := get(url); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
				}
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")

				const readers = 16
				per := max(b.N/readers, 50)
				var wg sync.WaitGroup
				start := time.Now()
				for range readers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range per {
							if err := get(url); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(readers*per)/time.Since(start).Seconds(), "reads/s")
			})
		}
	}
}
