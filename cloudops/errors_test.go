package cloudops

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cloudflare/cloudflare-go/v6"
	"github.com/digitalocean/godo"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
)

func TestErrorsKeepStatusContextAndClientError(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	_, err := e.do.GetDroplet(c, 123)
	var de *godo.ErrorResponse
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &de) || StatusCode(err) != 404 || !strings.HasPrefix(err.Error(), "get droplet 123: digitalocean: 404") {
		t.Fatalf("DO 404: %v", err)
	}
	z, err := e.cf.FindZone(c, "www.example.test")
	if err != nil {
		t.Fatal(err)
	}
	inject(t, e, fakeapi.Fault{Method: "POST", PathPrefix: "/client/v4/", Status: 400, Times: 1})
	_, err = e.cf.EnsureARecords(c, z.ID, "www.example.test", []string{"192.0.2.1"}, false)
	var ce *cloudflare.Error
	if !errors.As(err, &ce) || StatusCode(err) != 400 || !strings.Contains(err.Error(), `ensure A records of "www.example.test": create 192.0.2.1: cloudflare: 400`) {
		t.Fatalf("CF 400: %v", err)
	}
	if StatusCode(context.Canceled) != 0 || StatusCode(nil) != 0 {
		t.Fatal("StatusCode of a non-API error")
	}
}
