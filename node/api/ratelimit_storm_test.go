package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/testkit"
)

// TestRightKeyServedThroughAStorm: wrong keys pour in from the address
// everyone shares (here the loopback, as behind the edge or from a node's
// containers) while the right key and a valid token keep working.
func TestRightKeyServedThroughAStorm(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	do := func(method, path string, body any, key string) (*http.Response, []byte) {
		return call(t, srv, method, path, body, key)
	}
	token := createToken(t, do, "ci", "deployer").Token

	start := time.Now()
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var limited, refused atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/nodes", nil)
				req.Header.Set("Authorization", "Bearer wrong-key")
				resp, err := srv.Client().Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusTooManyRequests:
					limited.Add(1)
				case http.StatusUnauthorized:
					refused.Add(1)
				default:
					t.Errorf("a wrong key got %d", resp.StatusCode)
				}
			}
		}()
	}
	testkit.WaitFor(t, 10*time.Second, "the storm to be limited", func() bool { return limited.Load() > 0 })
	for i := range 200 {
		key := ""
		if i%2 == 1 {
			key = token
		}
		resp, body := call(t, srv, http.MethodGet, "/v1/nodes", nil, key)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("valid credential %d during the storm: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := call(t, srv, http.MethodPost, "/v1/workspaces", control.NameRequest{Name: "storm"}, "")
	expect(t, resp, body, http.StatusCreated, nil)
	stop()
	wg.Wait()
	// The bucket holds AuthFailures and refills one a minute/AuthFailures.
	l := DefaultLimits().AuthFailures
	allowed := int64(l) + int64(time.Since(start)/(time.Minute/time.Duration(l))) + 1
	t.Logf("storm: %d wrong keys answered 429, %d answered 401, over %s; 200 valid requests all served",
		limited.Load(), refused.Load(), time.Since(start).Round(time.Millisecond))
	if n := refused.Load(); n > allowed {
		t.Fatalf("%d wrong keys got a 401 (not slowed), want at most %d", n, allowed)
	}
}

// TestFailuresCountPerRealAddress: behind the local edge each client's
// X-Real-IP is its own bucket; from elsewhere the header is ignored.
func TestFailuresCountPerRealAddress(t *testing.T) {
	srv := newTestServer(t, apitest.NewFake("node-1"), func(o *Options) { o.Limits.AuthFailures = 3 })
	try := func(realIP string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/nodes", nil)
		req.Header.Set("Authorization", "Bearer wrong")
		req.Header.Set("X-Real-IP", realIP)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 3 {
		if got := try("203.0.113.7"); got != http.StatusUnauthorized {
			t.Fatalf("failure within the allowance: %d", got)
		}
	}
	if got := try("203.0.113.7"); got != http.StatusTooManyRequests {
		t.Fatalf("the guesser past its allowance: %d, want 429", got)
	}
	if got := try("203.0.113.8"); got != http.StatusUnauthorized {
		t.Fatalf("another client behind the same edge: %d, want 401 (its own bucket)", got)
	}

	// The header counts only from this host.
	local := &net.TCPAddr{IP: net.ParseIP("10.1.0.5"), Port: 9999}
	cases := []struct {
		remote, header, want string
	}{
		{"127.0.0.1:5000", "203.0.113.9", "203.0.113.9"},
		{"10.1.0.5:40000", "203.0.113.9", "203.0.113.9"}, // nginx on the node's own address
		{"10.1.0.6:40000", "203.0.113.9", "10.1.0.6"},    // another droplet or a container
		{"172.17.0.2:40000", "203.0.113.9", "172.17.0.2"},
		{"127.0.0.1:5000", "not-an-ip", "127.0.0.1"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodGet, "/v1/nodes", nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("X-Real-IP", tc.header)
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, local))
		if got := realClientAddr(r).String(); got != tc.want {
			t.Errorf("peer %s, X-Real-IP %s: %s, want %s", tc.remote, tc.header, got, tc.want)
		}
	}
}
