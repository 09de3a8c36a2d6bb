package cloudops

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/cloudflare/cloudflare-go/v6/dns"
)

// ChallengeDNS is what an ACME DNS-01 solver does with Cloudflare DNS: it
// writes and removes the _acme-challenge TXT record of a host. The records
// carry OwnerComment like every record dropmesh makes, and only records
// with it are ever removed; TXT records someone else made under the same
// name are left alone (a CA accepts any of the values it finds).
type ChallengeDNS interface {
	// FindZone returns the zone whose name is the longest suffix of host.
	FindZone(ctx context.Context, host string) (Zone, error)
	// PresentChallenge makes sure the TXT record _acme-challenge.<host>
	// with value exists (host without a leading "*."), creating it marked as
	// dropmesh's; an existing one of dropmesh's with that value is kept.
	PresentChallenge(ctx context.Context, zoneID, host, value string) (DNSRecord, error)
	// CleanupChallenge deletes dropmesh's _acme-challenge TXT records of
	// host with value, or all of dropmesh's for host when value is "".
	CleanupChallenge(ctx context.Context, zoneID, host, value string) error
}

var _ ChallengeDNS = (*Cloudflare)(nil)

// ChallengeLabel is the label DNS-01 puts in front of the host.
const ChallengeLabel = "_acme-challenge"

// challengeValueRe is a DNS-01 value: base64url of a SHA-256 digest.
var challengeValueRe = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// ChallengeName returns the TXT record name DNS-01 validates for host
// (a wildcard host validates at its base name).
func ChallengeName(host string) (string, error) {
	h, err := normalizeHost(strings.TrimPrefix(strings.TrimSpace(host), "*."))
	if err != nil {
		return "", err
	}
	return ChallengeLabel + "." + h, nil
}

func checkChallenge(zoneID, host, value string, allowEmpty bool) (string, error) {
	if !zoneIDRe.MatchString(zoneID) {
		return "", invalid("zone id %q is not a zone id", zoneID)
	}
	if !(allowEmpty && value == "") && !challengeValueRe.MatchString(value) {
		return "", invalid("challenge value %q is not a DNS-01 value", value)
	}
	return ChallengeName(host)
}

// PresentChallenge implements ChallengeDNS.
func (cf *Cloudflare) PresentChallenge(ctx context.Context, zoneID, host, value string) (DNSRecord, error) {
	op := fmt.Sprintf("present ACME challenge of %q", host)
	if cf.err != nil {
		return DNSRecord{}, fmt.Errorf("%s: %w", op, cf.err)
	}
	name, err := checkChallenge(zoneID, host, value, false)
	if err != nil {
		return DNSRecord{}, fmt.Errorf("%s: %w", op, err)
	}
	var out DNSRecord
	err = again(ctx, cf.retry, cf.log, op, func() error {
		recs, err := cf.listTXT(ctx, zoneID, name)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Owned() && unquote(r.Content) == value {
				out = r
				return nil
			}
		}
		var b dns.TXTRecordParam
		set(&b.Name.Value, &b.Name.Present, name)
		set(&b.Type.Value, &b.Type.Present, dns.TXTRecordTypeTXT)
		set(&b.Content.Value, &b.Content.Present, `"`+value+`"`)
		set(&b.TTL.Value, &b.TTL.Present, dns.TTL(60))
		set(&b.Comment.Value, &b.Comment.Present, OwnerComment)
		p := dns.RecordNewParams{Body: b}
		set(&p.ZoneID.Value, &p.ZoneID.Present, zoneID)
		r, err := cf.records.New(ctx, p)
		if err != nil {
			return fmt.Errorf("create TXT %s: %w", name, apiError(err))
		}
		out = recordFrom(zoneID, *r)
		cf.log.Info("acme challenge record created", "name", name)
		return nil
	})
	if err != nil {
		return DNSRecord{}, opError(op, err)
	}
	return out, nil
}

// CleanupChallenge implements ChallengeDNS.
func (cf *Cloudflare) CleanupChallenge(ctx context.Context, zoneID, host, value string) error {
	op := fmt.Sprintf("clean up ACME challenge of %q", host)
	if cf.err != nil {
		return fmt.Errorf("%s: %w", op, cf.err)
	}
	name, err := checkChallenge(zoneID, host, value, true)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	err = again(ctx, cf.retry, cf.log, op, func() error {
		recs, err := cf.listTXT(ctx, zoneID, name)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if !r.Owned() || (value != "" && unquote(r.Content) != value) {
				continue
			}
			var p dns.RecordDeleteParams
			set(&p.ZoneID.Value, &p.ZoneID.Present, zoneID)
			if _, err := cf.records.Delete(ctx, r.ID, p); ignoreNotFound(err) != nil {
				return fmt.Errorf("delete TXT %s (%s): %w", name, r.ID, apiError(err))
			}
			cf.log.Info("acme challenge record deleted", "name", name)
		}
		return nil
	})
	return opError(op, err)
}

// listTXT returns the TXT records named name (one page: a challenge name
// holds a handful).
func (cf *Cloudflare) listTXT(ctx context.Context, zoneID, name string) ([]DNSRecord, error) {
	var exact dns.RecordListParamsName
	set(&exact.Exact.Value, &exact.Exact.Present, name)
	var p dns.RecordListParams
	set(&p.ZoneID.Value, &p.ZoneID.Present, zoneID)
	set(&p.Name.Value, &p.Name.Present, exact)
	set(&p.Type.Value, &p.Type.Present, dns.RecordListParamsTypeTXT)
	set(&p.PerPage.Value, &p.PerPage.Present, float64(100))
	res, err := cf.records.List(ctx, p)
	if err != nil {
		return nil, apiError(err)
	}
	var out []DNSRecord
	for _, r := range res.Result {
		if string(r.Type) != "TXT" || !strings.EqualFold(strings.TrimSuffix(r.Name, "."), name) {
			continue // a server that ignored the filter must not make us delete others' records
		}
		out = append(out, recordFrom(zoneID, r))
	}
	return out, nil
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}
