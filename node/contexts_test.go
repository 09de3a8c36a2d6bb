package node

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/apiclient"
)

// gzipBomb is a gzip of a tar of files × 1 MiB of zeros.
func gzipBomb(t testing.TB, files int) []byte {
	t.Helper()
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	zeros := make([]byte, 1<<20)
	for i := 0; i < files; i++ {
		if err := tw.WriteHeader(&tar.Header{Name: "z/" + strconv.Itoa(i), Mode: 0o644, Size: int64(len(zeros)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz.Bytes()
}

// TestUploadBombRefusedByTheAPI: a half-megabyte gzip that expands past
// the 512 MiB limit, uploaded through the real API to a real agent, is
// refused with a 400 naming the limit, the agent's memory stays bounded
// (this process holds the agent), nothing is stored; and the node's quota
// refuses what would pass it.
func TestUploadBombRefusedByTheAPI(t *testing.T) {
	c := startCluster(t, 1, nil) // the default quotas
	n := c.nodes[0]
	cl := c.apiClient(n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bomb := gzipBomb(t, 520)

	goruntime.GC()
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	_, err := cl.UploadContext(ctx, bytes.NewReader(bomb))
	goruntime.ReadMemStats(&after)
	var apiErr *apiclient.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(apiErr.Message, "536870912-byte limit") {
		t.Fatalf("bomb: err = %v, want a 400 naming the limit", err)
	}
	if grow := after.Sys - before.Sys; grow > 64<<20 {
		t.Fatalf("the process grew by %d MiB during the refused upload", grow>>20)
	}
	t.Logf("bomb (%d bytes) refused: %s; process memory (Sys) grew %d KiB", len(bomb), apiErr.Message, (after.Sys-before.Sys)>>10)

	if ents, _ := os.ReadDir(n.agent.dataPath("contexts")); len(ents) != 0 {
		t.Fatalf("the refused bomb left %d files", len(ents))
	}

	// The node restarted with a small quota refuses what would pass it.
	c.stop(n, false)
	n.cfg.ContextQuotaBytes = 48 << 10
	c.start(n)
	c.leader()
	cl = c.apiClient(n)
	small := contextTar(t, map[string]string{"Dockerfile": "FROM scratch\n", "a": strings.Repeat("x", 20<<10)})
	if _, err := cl.UploadContext(ctx, bytes.NewReader(small)); err != nil {
		t.Fatalf("a context within the quota: %v", err)
	}
	other := contextTar(t, map[string]string{"Dockerfile": "FROM scratch\n", "b": strings.Repeat("y", 30<<10)})
	_, err = cl.UploadContext(ctx, bytes.NewReader(other))
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || !strings.Contains(apiErr.Message, "this node") {
		t.Fatalf("over the node quota: err = %v, want a 400 naming the node's quota", err)
	}
	ents, err := os.ReadDir(n.agent.dataPath("contexts"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("the contexts directory holds %d files (%v), want the one stored", len(ents), err)
	}
}
