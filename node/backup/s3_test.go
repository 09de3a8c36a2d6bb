package backup

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestS3ClientAgainstSigningFake(t *testing.T) {
	f := newFakeS3(t)
	c, err := NewS3Client(f.config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keys := []string{"backups/a.json", "backups/b c+d$.bin", "backups/é.json", "other/x", "backups/nested/y"}
	for i, k := range keys {
		if err := c.PutObject(ctx, k, []byte(strings.Repeat("x", i+1)), "application/json"); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	if got := strings.Join(f.keys(), ","); got != "backups/a.json,backups/b c+d$.bin,backups/nested/y,backups/é.json,other/x" {
		t.Fatalf("stored keys = %s", got)
	}
	rc, err := c.GetObject(ctx, "backups/b c+d$.bin")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "xx" {
		t.Fatalf("get = %q", data)
	}
	// Pages of two: the continuation token is followed to the end.
	objs, err := c.listObjects(ctx, "backups/", 2)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, o := range objs {
		listed = append(listed, o.Key)
	}
	if got := strings.Join(listed, ","); got != "backups/a.json,backups/b c+d$.bin,backups/nested/y,backups/é.json" {
		t.Fatalf("list = %s", got)
	}
	if objs[0].Size != 1 || objs[0].LastModified.IsZero() {
		t.Errorf("object info = %+v", objs[0])
	}
	if n := f.count("list"); n != 2 {
		t.Errorf("%d list calls for 4 keys in pages of 2, want 2 (the fake marks the second page final)", n)
	}
	if _, err := c.GetObject(ctx, "backups/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: err = %v, want ErrNotFound", err)
	}
	if err := c.DeleteObject(ctx, "backups/a.json"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteObject(ctx, "backups/a.json"); err != nil {
		t.Fatalf("delete of a missing object: %v", err)
	}
	if n := f.refusedCount(); n != 0 {
		t.Fatalf("the fake refused %d correctly signed requests", n)
	}
}

func TestS3WrongSecretIsRefused(t *testing.T) {
	f := newFakeS3(t)
	cfg := f.config()
	cfg.SecretKey = "not-the-secret"
	c, err := NewS3Client(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = c.PutObject(context.Background(), "k", []byte("v"), "")
	var se *S3Error
	if !errors.As(err, &se) || se.Status != http.StatusForbidden || se.Code != "SignatureDoesNotMatch" {
		t.Fatalf("err = %v, want a 403 SignatureDoesNotMatch", err)
	}
	if !strings.Contains(err.Error(), "s3 put dropmesh-backups/k: 403 SignatureDoesNotMatch") {
		t.Errorf("message = %q", err)
	}
	if len(f.keys()) != 0 {
		t.Fatal("a refused PUT stored something")
	}
}

// The fake really checks: a signed request changed after signing is refused.
func TestFakeS3RefusesTamperedRequests(t *testing.T) {
	f := newFakeS3(t)
	s := Signer{AccessKey: f.accessKey, SecretKey: f.secretKey, Region: f.region, Service: "s3"}
	for name, tamper := range map[string]func(r *http.Request){
		"path":  func(r *http.Request) { r.URL.Path, r.URL.RawPath = "/dropmesh-backups/other", "" },
		"query": func(r *http.Request) { r.URL.RawQuery = "x=1" },
		"body":  func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("changed")); r.ContentLength = 7 },
		"time": func(r *http.Request) {
			r.Header.Set("X-Amz-Date", time.Now().Add(time.Hour).UTC().Format(amzDateFormat))
		},
	} {
		r, _ := http.NewRequest(http.MethodPut, f.srv.URL+"/dropmesh-backups/key", strings.NewReader("payload"))
		s.Sign(r, sha256Hex([]byte("payload")), time.Now())
		tamper(r)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("tampered %s: status %d, want 403", name, resp.StatusCode)
		}
	}
	if len(f.keys()) != 0 {
		t.Fatal("a tampered request stored something")
	}
}

func TestNewS3ClientRefusesBadConfig(t *testing.T) {
	good := S3Config{Endpoint: "https://nyc3.digitaloceanspaces.com", Region: "nyc3", Bucket: "my-backups", AccessKey: "a", SecretKey: "s"}
	if _, err := NewS3Client(good); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(c *S3Config){
		"endpoint scheme": func(c *S3Config) { c.Endpoint = "ftp://x" },
		"endpoint empty":  func(c *S3Config) { c.Endpoint = "" },
		"endpoint query":  func(c *S3Config) { c.Endpoint = "https://x/?a=b" },
		"bucket short":    func(c *S3Config) { c.Bucket = "ab" },
		"bucket slash":    func(c *S3Config) { c.Bucket = "a/b/c" },
		"bucket upper":    func(c *S3Config) { c.Bucket = "MyBackups" },
		"region":          func(c *S3Config) { c.Region = "" },
		"no secret":       func(c *S3Config) { c.SecretKey = "" },
	} {
		cfg := good
		change(&cfg)
		if _, err := NewS3Client(cfg); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}
