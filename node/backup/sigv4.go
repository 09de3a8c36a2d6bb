package backup

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AWS Signature Version 4, as S3 and S3-compatible stores (DigitalOcean
// Spaces, MinIO) check it: the request's method, path, query, chosen headers
// and payload hash are hashed into a canonical request, signed with a key
// derived from the secret, the date, the region and the service.

// EmptyPayloadHash is the SHA-256 of an empty body, the payload hash of GET,
// DELETE and list requests.
const EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

const (
	sigAlgorithm  = "AWS4-HMAC-SHA256"
	amzDateFormat = "20060102T150405Z"
	scopeDate     = "20060102"
)

// Signer signs requests with one set of credentials for one region and service.
type Signer struct {
	AccessKey string
	SecretKey string
	Region    string
	// Service is "s3" for object stores.
	Service string
}

// unsignedHeaders are headers proxies and the transport may change on the
// way; signing them would break the signature for no gain.
var unsignedHeaders = map[string]bool{
	"authorization": true, "user-agent": true, "accept-encoding": true, "connection": true,
	"expect": true, "x-amzn-trace-id": true, "content-length": true, "transfer-encoding": true,
}

// Sign sets X-Amz-Date, X-Amz-Content-Sha256 (to payloadHash, unless the
// caller set it) and Authorization on req, signing the host and every other
// header the request carries. It also sets req.URL.RawPath to the canonical
// encoding of the path, so what is sent is exactly what was signed.
func (s Signer) Sign(req *http.Request, payloadHash string, at time.Time) {
	at = at.UTC()
	req.Header.Set("X-Amz-Date", at.Format(amzDateFormat))
	if req.Header.Get("X-Amz-Content-Sha256") == "" {
		req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}
	uri := canonicalURI(req.URL.Path)
	req.URL.RawPath = uri
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	headers := map[string]string{"host": host}
	for name, values := range req.Header {
		lname := strings.ToLower(name)
		if unsignedHeaders[lname] {
			continue
		}
		headers[lname] = strings.Join(values, ",")
	}
	names := make([]string, 0, len(headers))
	for n := range headers {
		names = append(names, n)
	}
	slices.Sort(names)
	creq := canonicalRequest(req.Method, uri, req.URL.Query(), headers, names, payloadHash)
	sig := s.signature(at, creq)
	req.Header.Set("Authorization", sigAlgorithm+" Credential="+s.AccessKey+"/"+s.scope(at)+
		", SignedHeaders="+strings.Join(names, ";")+", Signature="+sig)
}

// scope is the credential scope: date/region/service/aws4_request.
func (s Signer) scope(at time.Time) string {
	return at.UTC().Format(scopeDate) + "/" + s.Region + "/" + s.Service + "/aws4_request"
}

// signature signs a canonical request made at time at.
func (s Signer) signature(at time.Time, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	toSign := sigAlgorithm + "\n" + at.UTC().Format(amzDateFormat) + "\n" + s.scope(at) + "\n" + hex.EncodeToString(sum[:])
	key := hmacSHA256([]byte("AWS4"+s.SecretKey), at.UTC().Format(scopeDate))
	key = hmacSHA256(key, s.Region)
	key = hmacSHA256(key, s.Service)
	key = hmacSHA256(key, "aws4_request")
	return hex.EncodeToString(hmacSHA256(key, toSign))
}

// canonicalRequest builds the canonical request of SigV4. headers maps
// lower-case names to values; signed lists the names to include, sorted.
func canonicalRequest(method, uri string, query url.Values, headers map[string]string, signed []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(method + "\n" + uri + "\n" + canonicalQuery(query) + "\n")
	for _, n := range signed {
		b.WriteString(n + ":" + canonicalHeaderValue(headers[n]) + "\n")
	}
	b.WriteString("\n" + strings.Join(signed, ";") + "\n" + payloadHash)
	return b.String()
}

// canonicalHeaderValue trims a value and folds inner runs of spaces.
func canonicalHeaderValue(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

// canonicalURI encodes each segment of a (decoded) path, keeping the slashes.
// S3 paths are encoded once, not normalised.
func canonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	return uriEncode(path, false)
}

// canonicalQuery sorts the parameters by name, then value, each encoded.
func canonicalQuery(q url.Values) string {
	var parts []string
	for k, vs := range q {
		for _, v := range vs {
			parts = append(parts, uriEncode(k, true)+"="+uriEncode(v, true))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "&")
}

// uriEncode percent-encodes every byte but the unreserved characters
// (A-Z a-z 0-9 - . _ ~), and '/' unless encodeSlash, in upper-case hex.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		case c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// sha256Hex is the hex SHA-256 of data, the signed payload hash of a PUT.
func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
