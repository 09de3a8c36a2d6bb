package cloudops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/digitalocean/godo"
)

// Sentinel errors callers branch on; match them with errors.Is.
var (
	// ErrNotFound: the resource does not exist (an API 404, or no match for a
	// lookup by name).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request was refused before any call, because an
	// argument is malformed; nothing was changed.
	ErrInvalid = errors.New("invalid argument")
	// ErrConflict: a resource of that name exists with a different shape that
	// cannot be changed in place (for example a VPC in another region).
	ErrConflict = errors.New("conflict")
	// ErrActionFailed: a DigitalOcean action ended "errored".
	ErrActionFailed = errors.New("action failed")
	// ErrForeignRecord: a DNS change would touch a record dropmesh did not
	// make (one without OwnerComment); nothing was changed.
	ErrForeignRecord = errors.New("dns record not made by dropmesh")
)

// APIError is a provider call that ended with a non-2xx HTTP status. It
// wraps the client's own error (*godo.ErrorResponse or *cloudflare.Error),
// so errors.As still reaches it, and matches ErrNotFound when the status is
// 404.
type APIError struct {
	Provider string // "digitalocean" or "cloudflare"
	Status   int    // HTTP status code
	Message  string // the provider's message, if it sent one
	Err      error  // the client's error
}

// Error implements error.
func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s: %d %s", e.Provider, e.Status, msg)
}

// Unwrap returns the client's error.
func (e *APIError) Unwrap() error { return e.Err }

// Is makes a 404 match ErrNotFound and a 409 ErrConflict.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	}
	return false
}

// StatusCode returns the HTTP status a failed provider call ended with, or 0
// when err is not an API answer (network error, cancelled context, ...).
func StatusCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// opError prefixes err with the operation and the resource it was about,
// turning the clients' error types into *APIError on the way.
func opError(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, apiError(err))
}

// apiError converts an error returned by a godo or cloudflare call (not
// wrapped further) into an *APIError; other errors are returned as they are.
// Call it where the client's error is received, before adding context.
func apiError(err error) error {
	switch e := err.(type) {
	case *godo.ErrorResponse:
		if e.Response == nil {
			return err
		}
		msg := e.Message
		if msg == "" && e.NestedError != nil {
			msg = e.NestedError.Message
		}
		return &APIError{Provider: "digitalocean", Status: e.Response.StatusCode, Message: msg, Err: err}
	case *dns.Error: // cloudflare.Error, which every API package aliases
		msgs := make([]string, 0, len(e.Errors))
		for _, d := range e.Errors {
			msgs = append(msgs, fmt.Sprintf("%s (code %d)", d.Message, d.Code))
		}
		return &APIError{Provider: "cloudflare", Status: e.StatusCode, Message: strings.Join(msgs, "; "), Err: err}
	}
	return err
}

// retryableByOperation reports whether a failed call may be repeated by an
// operation that looks the resource up again first: a 5xx or a network error
// on a request the transport did not retry itself (a POST or PATCH, which may
// or may not have taken effect). Idempotent requests were already retried by
// the transport, so repeating them again would only multiply the attempts.
func retryableByOperation(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var de *godo.ErrorResponse
	if errors.As(err, &de) && de.Response != nil {
		return de.Response.StatusCode >= 500 && de.Response.Request != nil && !idempotent(de.Response.Request)
	}
	var ce *dns.Error
	if errors.As(err, &ce) {
		return ce.StatusCode >= 500 && ce.Request != nil && !idempotent(ce.Request)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		switch strings.ToUpper(ue.Op) {
		case http.MethodPost, http.MethodPatch:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}
