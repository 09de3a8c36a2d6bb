package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/dropmesh/dropmesh/node/imagepeer"
)

// The push routes of node/imagepeer (dropmesh push). A push goes to one
// agent: the client sticks to the agent that answered last.

// PushCheck asks which layers of an image the agent lacks.
func (c *Client) PushCheck(ctx context.Context, req imagepeer.PushCheck) (imagepeer.PushMissing, error) {
	var out imagepeer.PushMissing
	err := c.send(ctx, http.MethodPost, imagepeer.PushCheckPath, nil, req, &out)
	return out, err
}

// PushBlob uploads one uncompressed layer (seekable: a retry sends it again).
func (c *Client) PushBlob(ctx context.Context, digest string, r io.ReadSeeker) error {
	path := "/v1/images/push/blobs/" + url.PathEscape(digest)
	_, err := c.call(ctx, request{method: http.MethodPut, path: path, upload: r, contentType: "application/octet-stream", write: true, stream: true}, nil)
	return err
}

// PushCommit loads the pushed image on the agent; an error wraps
// imagepeer.ErrNotUploaded when the agent lacks a layer.
func (c *Client) PushCommit(ctx context.Context, req imagepeer.PushCommit) (imagepeer.PushResult, error) {
	var out imagepeer.PushResult
	data, err := json.Marshal(req)
	if err != nil {
		return out, err
	}
	_, err = c.call(ctx, request{method: http.MethodPost, path: imagepeer.PushCommitPath, body: data, contentType: "application/json", write: true, stream: true}, &out)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict {
		return out, fmt.Errorf("%w: %w", imagepeer.ErrNotUploaded, err)
	}
	return out, err
}
