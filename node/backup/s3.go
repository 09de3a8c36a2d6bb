package backup

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// S3Config says how to reach an S3-compatible bucket.
type S3Config struct {
	// Endpoint is the service's base URL, for Spaces https://<region>.digitaloceanspaces.com.
	// Requests are path-style: <endpoint>/<bucket>/<key>.
	Endpoint string
	// Region is part of the signature's scope ("us-east-1" or the Spaces region slug).
	Region    string
	Bucket    string
	AccessKey string
	// SecretKey is the plain secret access key.
	SecretKey string
	// HTTPClient makes the requests (default: 5 minute timeout per request,
	// enough for a large snapshot on a slow link).
	HTTPClient *http.Client
	// Now stamps the signatures (default time.Now); a clock off by more than
	// 15 minutes makes the service refuse every request.
	Now func() time.Time
}

// S3Client is a small client of the S3 API: PUT, GET, DELETE of one object
// and ListObjectsV2, signed with AWS Signature Version 4. It is enough for
// backups and does not try to be more (no multipart upload: one object is
// at most what fits in memory, as the state does).
type S3Client struct {
	base   *url.URL
	bucket string
	signer Signer
	http   *http.Client
	now    func() time.Time
}

// S3Object is one entry of a listing.
type S3Object struct {
	Key          string
	Size         int64
	LastModified time.Time
}

// S3Error is an error answer of the service.
type S3Error struct {
	Status  int
	Code    string
	Message string
	// Op and Key name the call that failed.
	Op, Key string
}

func (e *S3Error) Error() string {
	msg := fmt.Sprintf("s3 %s %s: %d", e.Op, e.Key, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Is lets errors.Is(err, ErrNotFound) match a missing object or bucket.
func (e *S3Error) Is(target error) bool {
	return target == ErrNotFound && (e.Status == http.StatusNotFound || e.Code == "NoSuchKey")
}

// NewS3Client checks cfg and returns a client.
func NewS3Client(cfg S3Config) (*S3Client, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("%w: s3 endpoint %q: want http(s)://host[:port]", ErrInvalid, cfg.Endpoint)
	}
	if err := validBucket(cfg.Bucket); err != nil {
		return nil, err
	}
	if cfg.Region == "" || strings.ContainsAny(cfg.Region, "/ \t\n") {
		return nil, fmt.Errorf("%w: s3 region %q", ErrInvalid, cfg.Region)
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, fmt.Errorf("%w: s3 bucket %s: access key and secret key are required", ErrInvalid, cfg.Bucket)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &S3Client{base: u, bucket: cfg.Bucket, http: cfg.HTTPClient, now: cfg.Now,
		signer: Signer{AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, Region: cfg.Region, Service: "s3"}}
	if c.http == nil {
		c.http = &http.Client{Timeout: 5 * time.Minute}
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// validBucket checks a bucket name: 3-63 lower-case letters, digits, '-' and '.'.
func validBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("%w: s3 bucket %q: 3 to 63 characters", ErrInvalid, b)
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("%w: s3 bucket %q: lower-case letters, digits, '-' and '.' only", ErrInvalid, b)
		}
	}
	return nil
}

// Bucket returns the bucket's name.
func (c *S3Client) Bucket() string { return c.bucket }

// PutObject stores data under key.
func (c *S3Client) PutObject(ctx context.Context, key string, data []byte, contentType string) error {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	resp, err := c.do(ctx, "put", http.MethodPut, key, nil, h, data)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// GetObject opens the object at key; errors.Is(err, ErrNotFound) when there is none.
func (c *S3Client) GetObject(ctx context.Context, key string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, "get", http.MethodGet, key, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// DeleteObject removes the object at key; a missing object is no error (S3 semantics).
func (c *S3Client) DeleteObject(ctx context.Context, key string) error {
	resp, err := c.do(ctx, "delete", http.MethodDelete, key, nil, nil, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// listPageSize is the max-keys of each ListObjectsV2 call.
const listPageSize = 1000

// maxListPages bounds a listing (a million keys): a misbehaving service
// that always says "truncated" cannot keep the caller forever.
const maxListPages = 1000

// ListObjects lists every object whose key starts with prefix, following
// the continuation tokens of ListObjectsV2.
func (c *S3Client) ListObjects(ctx context.Context, prefix string) ([]S3Object, error) {
	return c.listObjects(ctx, prefix, listPageSize)
}

func (c *S3Client) listObjects(ctx context.Context, prefix string, pageSize int) ([]S3Object, error) {
	var out []S3Object
	token := ""
	for range maxListPages {
		q := url.Values{"list-type": {"2"}, "max-keys": {strconv.Itoa(pageSize)}}
		if prefix != "" {
			q.Set("prefix", prefix)
		}
		if token != "" {
			q.Set("continuation-token", token)
		}
		resp, err := c.do(ctx, "list", http.MethodGet, "", q, nil, nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			IsTruncated           bool   `xml:"IsTruncated"`
			NextContinuationToken string `xml:"NextContinuationToken"`
			Contents              []struct {
				Key          string `xml:"Key"`
				Size         int64  `xml:"Size"`
				LastModified string `xml:"LastModified"`
			} `xml:"Contents"`
		}
		err = xml.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("s3 list %s/%s: decode the answer: %w", c.bucket, prefix, err)
		}
		for _, o := range page.Contents {
			lm, _ := time.Parse(time.RFC3339Nano, o.LastModified)
			out = append(out, S3Object{Key: o.Key, Size: o.Size, LastModified: lm})
		}
		if !page.IsTruncated {
			return out, nil
		}
		if page.NextContinuationToken == "" || page.NextContinuationToken == token {
			return nil, fmt.Errorf("s3 list %s/%s: truncated answer without a new continuation token", c.bucket, prefix)
		}
		token = page.NextContinuationToken
	}
	return nil, fmt.Errorf("s3 list %s/%s: more than %d pages", c.bucket, prefix, maxListPages)
}

// do signs and sends one request to the bucket (key "" is the bucket
// itself) and returns a 2xx answer; anything else is an *S3Error.
func (c *S3Client) do(ctx context.Context, op, method, key string, q url.Values, h http.Header, body []byte) (*http.Response, error) {
	u := *c.base
	u.Path = c.base.Path + "/" + c.bucket
	if key != "" {
		u.Path += "/" + key
	}
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("s3 %s %s: %w", op, key, err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	hash := EmptyPayloadHash
	if body != nil {
		hash = sha256Hex(body)
	}
	c.signer.Sign(req, hash, c.now())
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("s3 %s %s/%s: %w", op, c.bucket, key, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &S3Error{Status: resp.StatusCode, Op: op, Key: c.bucket + "/" + key}
	var doc struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)); len(data) > 0 && xml.Unmarshal(data, &doc) == nil {
		e.Code, e.Message = doc.Code, doc.Message
	}
	return nil, e
}
