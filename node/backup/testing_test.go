package backup

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// t0 is the fixed clock of the tests: commands carry their time.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

const testWS = "9fe5e6"

// testAEAD seals with the fixed key apitest.Fake uses, so secrets sealed here
// open in a Fake cluster (the same cluster secret).
func testAEAD(t testing.TB) cipher.AEAD { return testAEADKey(t, 0x42) }

// testAEADKey is an AEAD with a key of 32 times b.
func testAEADKey(t testing.TB, b byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// node is a real single-voter raft store (in-memory transport and stores)
// holding an initialised cluster with two active nodes.
type node struct {
	t     testing.TB
	store *raftfsm.Store
}

func newNode(t testing.TB) *node {
	t.Helper()
	addr, tr := raft.NewInmemTransport("")
	cfg := raftfsm.DefaultStoreConfig()
	cfg.NodeID, cfg.Transport = "node-1", tr
	store, err := raftfsm.OpenStore(cfg, raftfsm.NewFSM(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.BootstrapServers([]raftfsm.Server{{ID: "node-1", Address: string(addr), Voter: true}}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "leadership", store.IsLeader)
	n := &node{t: t, store: store}
	n.must(&raftfsm.InitCluster{At: t0, ClusterID: "c0ffee", ClusterName: "prod-eu", AdminName: "admin",
		AdminPasswordHash: "$2a$10$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyz12", DefaultWorkspaceID: testWS})
	for i := 1; i <= 2; i++ {
		n.must(&raftfsm.UpsertNode{At: t0, Node: raftfsm.Node{ID: fmt.Sprintf("node-%d", i), Region: "nyc3",
			PrivateIP: fmt.Sprintf("127.0.0.%d", i+1), API: fmt.Sprintf("127.0.0.%d:9999", i+1)}})
	}
	return n
}

func (n *node) must(c raftfsm.Command) any {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := n.store.Apply(ctx, c)
	if err != nil {
		n.t.Fatalf("apply %s: %v", c.Type(), err)
	}
	return v
}

// deploySample deploys a web service using a stateful redis with a secret.
func (n *node) deploySample(aead cipher.AEAD) {
	n.t.Helper()
	redis := raftfsm.ServiceSpec{Workspace: testWS, Project: "shop", Env: "prod", Service: "redis", Kind: raftfsm.KindStateful,
		Image: "redis:7", Port: 6379, Secrets: map[string]string{"REDIS_PASSWORD": "s3cret"}}
	web := raftfsm.ServiceSpec{Workspace: testWS, Project: "shop", Env: "prod", Service: "web", Image: "127.0.0.1:5000/shop/web:1.4",
		Port: 8080, Hosts: []string{"shop.example.com"}, Replicas: 2, Vars: map[string]string{"LOG_LEVEL": "info"}, Uses: []string{"redis"},
		Health: raftfsm.HealthSpec{Path: "/health"}}
	for i, spec := range []raftfsm.ServiceSpec{redis, web} {
		spec.Normalize()
		key := raftfsm.ServiceKey(testWS, spec.Project, spec.Env, spec.Service)
		if err := raftfsm.SealSecrets(aead, key, &spec); err != nil {
			n.t.Fatal(err)
		}
		var placement []raftfsm.Assignment
		for slot := range spec.Replicas {
			placement = append(placement, raftfsm.Assignment{Slot: slot, Node: fmt.Sprintf("node-%d", slot+1)})
		}
		n.must(&raftfsm.DeployService{At: t0, DeployID: fmt.Sprintf("dep-%d", i), WorkspaceID: testWS, Spec: spec, Placement: placement})
	}
}

func (n *node) setBackup(b raftfsm.BackupSettings) {
	n.t.Helper()
	n.must(&raftfsm.UpdateSettings{At: t0, Backup: &b})
}

// exportJSON is the canonical JSON of the node's state export (without the time).
func exportOf(s *raftfsm.State) raftfsm.ExportDocument {
	doc := raftfsm.Export(s, time.Time{})
	return doc
}

// testSecret is the cluster secret of the tests' cluster (64 hex digits).
var testSecret = strings.Repeat("5a", 32)

// testBackupKey is the backup key of testSecret.
func testBackupKey(t testing.TB) cipher.AEAD {
	t.Helper()
	secret, _ := hex.DecodeString(testSecret)
	k, err := DeriveKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// secretFile writes a cluster secret file and returns its path.
func secretFile(t testing.TB, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster-secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func testConfig(t testing.TB, c *clock) Config {
	cfg := DefaultConfig()
	cfg.Key = testBackupKey(t)
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	cfg.Now = c.Now
	cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	return cfg
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fakeS3 is an in-memory S3 (path-style, one bucket) that checks every
// request's Signature Version 4 with the credentials it knows, and the body
// against its signed hash, and refuses a mismatch as S3 does.
type fakeS3 struct {
	t                    testing.TB
	srv                  *httptest.Server
	bucket               string
	accessKey, secretKey string
	region               string

	mu       sync.Mutex
	objects  map[string][]byte
	requests map[string]int // by operation
	refused  int
	failNext map[string]int // operation -> status to answer once
}

func newFakeS3(t testing.TB) *fakeS3 {
	f := &fakeS3{t: t, bucket: "dropmesh-backups", accessKey: "DO00TESTKEY", secretKey: "test/secret+key", region: "nyc3",
		objects: map[string][]byte{}, requests: map[string]int{}, failNext: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeS3) config() S3Config {
	return S3Config{Endpoint: f.srv.URL, Region: f.region, Bucket: f.bucket, AccessKey: f.accessKey, SecretKey: f.secretKey}
}

func (f *fakeS3) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.objects {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (f *fakeS3) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[op]
}

func (f *fakeS3) refusedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

func (f *fakeS3) fail(op string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[op] = status
}

func s3Fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}

func (f *fakeS3) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if code, msg := f.verify(r, body); code != "" {
		f.mu.Lock()
		f.refused++
		f.mu.Unlock()
		s3Fail(w, http.StatusForbidden, code, msg)
		return
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if bucket != f.bucket {
		s3Fail(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		return
	}
	op := map[string]string{http.MethodPut: "put", http.MethodGet: "get", http.MethodDelete: "delete"}[r.Method]
	if r.Method == http.MethodGet && key == "" {
		op = "list"
	}
	f.mu.Lock()
	f.requests[op]++
	status := f.failNext[op]
	delete(f.failNext, op)
	f.mu.Unlock()
	if status != 0 {
		s3Fail(w, status, "InternalError", "injected failure")
		return
	}
	switch op {
	case "put":
		f.mu.Lock()
		f.objects[key] = body
		f.mu.Unlock()
		w.Header().Set("ETag", `"`+sha256Hex(body)[:32]+`"`)
	case "get":
		f.mu.Lock()
		data, ok := f.objects[key]
		f.mu.Unlock()
		if !ok {
			s3Fail(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
			return
		}
		w.Write(data)
	case "delete":
		f.mu.Lock()
		delete(f.objects, key)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case "list":
		f.list(w, r)
	default:
		s3Fail(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method)
	}
}

// list answers ListObjectsV2: keys after the continuation token (the last
// key of the previous page), max-keys at a time.
func (f *fakeS3) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("list-type") != "2" {
		s3Fail(w, http.StatusBadRequest, "InvalidArgument", "only ListObjectsV2")
		return
	}
	maxKeys, err := strconv.Atoi(q.Get("max-keys"))
	if err != nil || maxKeys < 1 {
		maxKeys = 1000
	}
	prefix, after := q.Get("prefix"), q.Get("continuation-token")
	type content struct {
		Key          string
		LastModified string
		Size         int
	}
	type result struct {
		XMLName               xml.Name `xml:"ListBucketResult"`
		Name                  string
		Prefix                string
		KeyCount              int
		MaxKeys               int
		IsTruncated           bool
		NextContinuationToken string `xml:",omitempty"`
		Contents              []content
	}
	res := result{Name: f.bucket, Prefix: prefix, MaxKeys: maxKeys}
	for _, k := range f.keys() {
		if !strings.HasPrefix(k, prefix) || (after != "" && k <= after) {
			continue
		}
		if len(res.Contents) == maxKeys {
			res.IsTruncated = true
			res.NextContinuationToken = res.Contents[len(res.Contents)-1].Key
			break
		}
		f.mu.Lock()
		size := len(f.objects[k])
		f.mu.Unlock()
		res.Contents = append(res.Contents, content{Key: k, LastModified: "2026-11-23T12:00:00.000Z", Size: size})
	}
	res.KeyCount = len(res.Contents)
	w.Header().Set("Content-Type", "application/xml")
	io.WriteString(w, xml.Header)
	xml.NewEncoder(w).Encode(res)
}

// verify checks a request's signature as S3 does, from what arrived on the
// wire; it returns an S3 error code and message, or "" when it is good.
func (f *fakeS3) verify(r *http.Request, body []byte) (code, msg string) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "AccessDenied", "no AWS4-HMAC-SHA256 authorization"
	}
	fields := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		fields[k] = v
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || cred[0] != f.accessKey || cred[2] != f.region || cred[3] != "s3" || cred[4] != "aws4_request" {
		return "InvalidAccessKeyId", "bad credential " + fields["Credential"]
	}
	at, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil || at.Format(scopeDate) != cred[1] {
		return "AccessDenied", "bad x-amz-date"
	}
	if d := time.Since(at); d > 15*time.Minute || d < -15*time.Minute {
		return "RequestTimeTooSkewed", "the difference between the request time and the server's time is too large"
	}
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash != sha256Hex(body) {
		return "XAmzContentSHA256Mismatch", "the provided x-amz-content-sha256 header does not match what was computed"
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	for _, must := range []string{"host", "x-amz-content-sha256", "x-amz-date"} {
		if !slices.Contains(signed, must) {
			return "AccessDenied", must + " is not signed"
		}
	}
	headers := map[string]string{}
	for _, h := range signed {
		if h == "host" {
			headers[h] = r.Host
		} else {
			headers[h] = strings.Join(r.Header.Values(h), ",")
		}
	}
	creq := canonicalRequest(r.Method, r.URL.EscapedPath(), r.URL.Query(), headers, signed, hash)
	want := Signer{AccessKey: f.accessKey, SecretKey: f.secretKey, Region: f.region, Service: "s3"}.signature(at, creq)
	if subtle.ConstantTimeCompare([]byte(want), []byte(fields["Signature"])) != 1 {
		return "SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided"
	}
	return "", ""
}
