package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dropmesh/dropmesh/node/bootclaim"
)

// claimPath is the seed's claim route.
const claimPath = "/v1/bootstrap/claim"

// claimSeed hands the seed its cloud tokens and the admin password over
// its API (package bootclaim): first a hello, whose answer must prove the
// bootstrap token (else nothing is sent: whatever answered is not the
// seed), then the claim with the secrets sealed for the seed, answered
// with the API key. The API key and the CA the seed proved are kept in the
// state dir and the used token removed. A seed claimed by an earlier run
// is not claimed again: the state dir has its API key.
func (r *run) claimSeed(ctx context.Context, c *agentClient, password string) error {
	o := r.o
	return r.p.step("handing the seed its cloud tokens and admin password", func() (string, error) {
		if key, ok, err := r.sd.APIKey(); err != nil {
			return "", err
		} else if ok {
			c.apiKey = key
			return "claimed by an earlier run", nil
		}
		token, err := r.sd.BootstrapToken()
		if err != nil {
			return "", err
		}
		// The seed answers before it leads its one-node raft: a 5xx or no
		// answer is tried again, from a fresh hello, and so is a hello the
		// seed forgot (others' hellos push old ones out).
		for {
			msg, err := r.claimOnce(ctx, c, token, password)
			var he *httpError
			final := errors.As(err, &he) && he.status < 500 && !strings.Contains(he.body, "unknown or expired seed nonce")
			if err == nil || final || errors.Is(err, errNotTheSeed) || ctx.Err() != nil {
				return msg, err
			}
			if serr := sleep(ctx, o.Config.PollInterval); serr != nil {
				return "", err
			}
		}
	})
}

// errNotTheSeed: the answer to a hello does not prove the bootstrap token.
var errNotTheSeed = errors.New("the seed's answer does not prove the bootstrap token: what answered is not the seed (a proxy or a man in the middle?); nothing was sent")

// claimOnce is one hello and claim.
func (r *run) claimOnce(ctx context.Context, c *agentClient, token, password string) (string, error) {
	o := r.o
	nonce, err := bootclaim.NewNonce()
	if err != nil {
		return "", err
	}
	var hello bootclaim.Answer
	if err := c.claim(ctx, bootclaim.Request{ClientNonce: nonce}, &hello); err != nil {
		return "", claimError(err, r.sd.File(APIKeyFile))
	}
	if bootclaim.CheckHex("seed nonce", hello.SeedNonce) != nil ||
		!bootclaim.Verify(bootclaim.SeedProof(token, nonce, hello.SeedNonce, hello.CACert), hello.Proof) {
		return "", errNotTheSeed
	}
	sealed, err := bootclaim.Seal(token, nonce, hello.SeedNonce, bootclaim.LabelSecrets,
		bootclaim.Secrets{DOToken: o.DOToken, CFToken: o.CFToken, AdminPassword: password})
	if err != nil {
		return "", err
	}
	var ans bootclaim.Answer
	req := bootclaim.Request{ClientNonce: nonce, SeedNonce: hello.SeedNonce,
		Proof: bootclaim.ClientProof(token, nonce, hello.SeedNonce), Secrets: sealed}
	if err := c.claim(ctx, req, &ans); err != nil {
		return "", claimError(err, r.sd.File(APIKeyFile))
	}
	var res bootclaim.Result
	if err := bootclaim.Open(token, nonce, hello.SeedNonce, bootclaim.LabelResult, ans.Sealed, &res); err != nil || res.APIKey == "" {
		return "", fmt.Errorf("the seed's answer to the claim does not open with the bootstrap token: %v", err)
	}
	if err := r.sd.SaveClaim(res.APIKey, hello.CACert); err != nil {
		return "", err
	}
	c.apiKey = res.APIKey
	if hello.CACert != "" {
		return "tokens sealed on the seed; its CA pinned in " + r.sd.File(CACertFile), nil
	}
	return "tokens sealed on the seed", nil
}

// claimError explains a refused claim.
func claimError(err error, apiKeyFile string) error {
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusConflict {
		return fmt.Errorf("the seed has been claimed already, but not by this state dir (no %s): %w", apiKeyFile, err)
	}
	return fmt.Errorf("claim the seed: %w", err)
}

// claim posts to the seed's claim route on the first endpoint that
// answers. Any endpoint will do, also one that must not see the API key:
// nothing readable without the bootstrap token travels.
func (c *agentClient) claim(ctx context.Context, req bootclaim.Request, out *bootclaim.Answer) error {
	var errs []error
	for _, e := range c.endpoints {
		err := c.do(ctx, e, http.MethodPost, claimPath, req, out, false)
		if err == nil {
			return nil
		}
		var he *httpError
		if errors.As(err, &he) && he.status < 500 && he.status != http.StatusTooManyRequests {
			return err // the seed answered
		}
		errs = append(errs, fmt.Errorf("%s: %w", e, err))
	}
	return errors.Join(errs...)
}
