package backup

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The examples of AWS's documentation "Signature Calculations for the
// Authorization Header: Transferring Payload in a Single Chunk" (S3 API
// reference): credentials, bucket and time as published, signatures as
// published.
var (
	docSigner = Signer{AccessKey: "AKIAIOSFODNN7EXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", Region: "us-east-1", Service: "s3"}
	docTime   = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
)

func authParts(t *testing.T, r *http.Request) (signed, sig string) {
	t.Helper()
	a := r.Header.Get("Authorization")
	const prefix = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders="
	if !strings.HasPrefix(a, prefix) {
		t.Fatalf("Authorization = %q", a)
	}
	signed, sig, ok := strings.Cut(strings.TrimPrefix(a, prefix), ", Signature=")
	if !ok {
		t.Fatalf("Authorization = %q", a)
	}
	return signed, sig
}

func TestSignDocumentedGetObject(t *testing.T) {
	r, _ := http.NewRequest("GET", "https://examplebucket.s3.amazonaws.com/test.txt", nil)
	r.Header.Set("Range", "bytes=0-9")
	docSigner.Sign(r, EmptyPayloadHash, docTime)
	signed, sig := authParts(t, r)
	if signed != "host;range;x-amz-content-sha256;x-amz-date" {
		t.Errorf("signed headers = %s", signed)
	}
	if sig != "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41" {
		t.Errorf("signature = %s", sig)
	}
}

func TestSignDocumentedPutObject(t *testing.T) {
	body := "Welcome to Amazon S3."
	hash := sha256Hex([]byte(body))
	if hash != "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072" {
		t.Fatalf("payload hash = %s", hash)
	}
	u := &url.URL{Scheme: "https", Host: "examplebucket.s3.amazonaws.com", Path: "/test$file.text"}
	r, _ := http.NewRequest("PUT", u.String(), strings.NewReader(body))
	r.Header.Set("Date", "Fri, 24 May 2013 00:00:00 GMT")
	r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	docSigner.Sign(r, hash, docTime)
	signed, sig := authParts(t, r)
	if signed != "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class" {
		t.Errorf("signed headers = %s", signed)
	}
	if sig != "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd" {
		t.Errorf("signature = %s", sig)
	}
	// What goes on the wire is the path that was signed.
	if got := r.URL.EscapedPath(); got != "/test%24file.text" {
		t.Errorf("path sent = %s, want /test%%24file.text", got)
	}
}

func TestSignDocumentedBucketRequests(t *testing.T) {
	for _, c := range []struct{ query, want string }{
		{"lifecycle", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
		{"max-keys=2&prefix=J", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
	} {
		r, _ := http.NewRequest("GET", "https://examplebucket.s3.amazonaws.com/?"+c.query, nil)
		docSigner.Sign(r, EmptyPayloadHash, docTime)
		if _, sig := authParts(t, r); sig != c.want {
			t.Errorf("GET /?%s: signature = %s, want %s", c.query, sig, c.want)
		}
	}
}

func TestURIEncode(t *testing.T) {
	for in, want := range map[string]string{
		"/a b/c+d":        "/a%20b/c%2Bd",
		"/backups/x.json": "/backups/x.json",
		"/é~_-.":          "/%C3%A9~_-.",
		"":                "/",
	} {
		if got := canonicalURI(in); got != want {
			t.Errorf("canonicalURI(%q) = %q, want %q", in, got, want)
		}
	}
	q := url.Values{"prefix": {"a/b c"}, "list-type": {"2"}, "continuation-token": {"x=y+z"}}
	if got, want := canonicalQuery(q), "continuation-token=x%3Dy%2Bz&list-type=2&prefix=a%2Fb%20c"; got != want {
		t.Errorf("canonicalQuery = %s, want %s", got, want)
	}
}
