package api

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestContainerLogs(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	fake.SetLogs("c1", "one\ntwo\nthree\n")
	resp, body := call(t, srv, http.MethodGet, "/v1/containers/c1/logs", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	if string(body) != "one\ntwo\nthree\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("logs %q (%s)", body, resp.Header.Get("Content-Type"))
	}
	resp, body = call(t, srv, http.MethodGet, "/v1/containers/c1/logs?tail=1&since=10m", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	if string(body) != "three\n" {
		t.Fatalf("tail %q", body)
	}
	fake.SetLogs("empty", "")
	resp, body = call(t, srv, http.MethodGet, "/v1/containers/empty/logs", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	resp, body = call(t, srv, http.MethodGet, "/v1/containers/unknown/logs", nil, "")
	expect(t, resp, body, http.StatusNotFound, nil)
}

func TestContainerLogsFollowStreamsAndStops(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, nil)
	fake.SetLogs("c1", "first\n")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/containers/c1/logs?follow=true", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	readLine := func() string {
		t.Helper()
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return l
	}
	if l := readLine(); l != "first\n" {
		t.Fatalf("line %q", l)
	}
	fake.AppendLogs("c1", "second\n")
	if l := readLine(); l != "second\n" {
		t.Fatalf("line %q", l)
	}
	fake.CloseLogs("c1")
	if rest, err := io.ReadAll(lines); err != nil || len(rest) != 0 {
		t.Fatalf("after close: %q %v", rest, err)
	}

	// A client that goes away ends the stream on the server.
	fake.SetLogs("c2", "x\n")
	ctx2, cancel2 := context.WithCancel(t.Context())
	req2, _ := http.NewRequestWithContext(ctx2, http.MethodGet, srv.URL+"/v1/containers/c2/logs?follow=1", nil)
	req2.Header.Set("Authorization", "Bearer "+testKey)
	resp2, err := srv.Client().Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp2.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel2()
	resp2.Body.Close()
}

func TestLogStreamIsCapped(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, func(o *Options) { o.Limits.MaxLogBytes = 10 })
	fake.SetLogs("c1", "0123456789abcdefghij\n")
	resp, body := call(t, srv, http.MethodGet, "/v1/containers/c1/logs?follow=true", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	if !bytes.HasPrefix(body, []byte("0123456789\n[dropmesh: the stream stopped at its cap of 10 bytes]")) {
		t.Fatalf("capped stream %q", body)
	}
}

// twoNodes is node-1's API, which does not run container c2, and node-2's,
// which does; node-1's state knows c2 runs on node-2.
func twoNodes(t *testing.T) (a, b *apitest.Fake, srvA string) {
	t.Helper()
	a, b = apitest.NewFake("node-1"), apitest.NewFake("node-2")
	b.SetLeader(false, "node-1", "")
	sa, sb := newTestServer(t, a, nil), newTestServer(t, b, nil)
	res, err := a.Deploy(t.Context(), controlDeploy(t, webSpec))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Report("node-2", raftfsm.InstanceReport{Instance: res.Service + "#1", Generation: 1, Container: "c2", State: "running"}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetNodeAPI("node-2", hostPort(sb)); err != nil {
		t.Fatal(err)
	}
	return a, b, sa.URL
}

func TestContainerRoutesGoToTheContainersNode(t *testing.T) {
	a, b, _ := twoNodes(t)
	sa := newTestServer(t, a, nil)
	b.SetLogs("c2", "hello from node-2\n")
	b.SetHealth("c2", control.HealthAnswer{Status: "degraded", Reason: "2 error lines", CheckedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})

	resp, body := call(t, sa, http.MethodGet, "/v1/containers/c2/logs", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	if string(body) != "hello from node-2\n" {
		t.Fatalf("proxied logs %q", body)
	}
	var h control.HealthAnswer
	resp, body = call(t, sa, http.MethodGet, "/v1/containers/c2/health?port=8080", nil, "")
	expect(t, resp, body, http.StatusOK, &h)
	if h.Status != "degraded" || h.Reason != "2 error lines" {
		t.Fatalf("proxied health %+v", h)
	}
	if string(body) != `{"status":"degraded","reason":"2 error lines","checked_at":"2026-01-02T03:04:05Z"}` {
		t.Fatalf("health answer is not the seed's shape: %s", body)
	}
	if a.CallCount("ContainerLogs") != 1 || b.CallCount("ContainerLogs") != 1 {
		t.Fatalf("calls a=%d b=%d", a.CallCount("ContainerLogs"), b.CallCount("ContainerLogs"))
	}

	// The state says node-2, node-2 does not have it: 404, no loop.
	resp, body = call(t, sa, http.MethodGet, "/v1/containers/c2/logs?tail=5", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	b.SetLogs("other", "")
	bLogsBefore := b.CallCount("ContainerHealth")
	resp, body = call(t, sa, http.MethodGet, "/v1/containers/gone/health", nil, "")
	expect(t, resp, body, http.StatusNotFound, nil)
	if b.CallCount("ContainerHealth") != bLogsBefore {
		t.Fatal("an unknown container was asked of node-2")
	}

	// Agent logs and stats of another node.
	b.AddAgentLog(control.LogEntry{Time: time.Now(), Level: "INFO", Message: "node-2 here"})
	var entries []control.LogEntry
	resp, body = call(t, sa, http.MethodGet, "/v1/agent/logs?node=node-2&limit=10", nil, "")
	expect(t, resp, body, http.StatusOK, &entries)
	if len(entries) != 1 || entries[0].Message != "node-2 here" {
		t.Fatalf("agent logs %+v", entries)
	}
	var st control.NodeStats
	resp, body = call(t, sa, http.MethodGet, "/v1/agent/stats?node=node-2", nil, "")
	expect(t, resp, body, http.StatusOK, &st)
	if st.Node != "node-2" {
		t.Fatalf("stats %+v", st)
	}
}

func TestContainerOnAnUnreachableNode(t *testing.T) {
	a, _, _ := twoNodes(t)
	if err := a.SetNodeAPI("node-2", "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	sa := newTestServer(t, a, nil)
	resp, body := call(t, sa, http.MethodGet, "/v1/containers/c2/logs", nil, "")
	expect(t, resp, body, http.StatusServiceUnavailable, nil)
	if e := errorOf(t, body); e.Error != control.CodeUnavailable || !strings.Contains(e.Message, "node-2") {
		t.Fatalf("answer %+v", e)
	}
}

func TestContainerStateSaysHereButItIsNot(t *testing.T) {
	a, _, _ := twoNodes(t)
	sa := newTestServer(t, a, nil)
	// c2 is in a's state on node-2; ask node-2's own API with the forwarded
	// mark, as a proxied request would: 404, never proxied again.
	req, _ := http.NewRequest(http.MethodGet, sa.URL+"/v1/containers/c2/logs", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set(control.HeaderForwarded, "1")
	resp, err := cli().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	expect(t, resp, body, http.StatusNotFound, nil)
}

func TestBuildContextsUploadAndFetchFromHolder(t *testing.T) {
	a, b := apitest.NewFake("node-1"), apitest.NewFake("node-2")
	sa, sb := newTestServer(t, a, func(o *Options) { o.Limits.MaxUploadBytes = 1 << 20 }), newTestServer(t, b, nil)
	var info control.ContextInfo
	resp, body := call(t, sb, http.MethodPost, "/v1/contexts", []byte("pretend this is a tar"), "")
	expect(t, resp, body, http.StatusCreated, &info)
	if !strings.HasPrefix(info.Digest, "sha256:") || info.Size != 21 {
		t.Fatalf("context %+v", info)
	}
	// node-1 learns (through the state) that node-2 holds it.
	if _, err := a.Apply(&raftfsm.PutBuildContext{At: time.Now().UTC(), Digest: info.Digest, Size: info.Size, Node: "node-2"}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetNodeAPI("node-2", hostPort(sb)); err != nil {
		t.Fatal(err)
	}
	resp, body = call(t, sa, http.MethodGet, "/v1/contexts/"+info.Digest, nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	if string(body) != "pretend this is a tar" || resp.Header.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("context %q %s", body, resp.Header.Get("Content-Type"))
	}
	resp, body = call(t, sa, http.MethodGet, "/v1/contexts/sha256:"+strings.Repeat("0", 64), nil, "")
	expect(t, resp, body, http.StatusNotFound, nil)

	before := a.StateJSON()
	resp, body = call(t, sa, http.MethodPost, "/v1/contexts", bytes.Repeat([]byte("z"), 2<<20), "")
	expect(t, resp, body, http.StatusRequestEntityTooLarge, nil)
	// Without a declared length the limit trips while reading.
	req, _ := http.NewRequest(http.MethodPost, sa.URL+"/v1/contexts", io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("z"), 2<<20))))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+testKey)
	r2, err := cli().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	expect(t, r2, b2, http.StatusRequestEntityTooLarge, nil)
	if a.StateJSON() != before {
		t.Fatal("a refused upload changed the state")
	}
}
