package cloudops

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/zones"
)

// Zone is a Cloudflare zone (a domain whose DNS Cloudflare serves).
type Zone struct {
	ID     string
	Name   string
	Status string
}

// DNSRecord is a Cloudflare DNS record.
type DNSRecord struct {
	ID      string
	ZoneID  string
	Name    string
	Type    string
	Content string
	Proxied bool
	TTL     int
	// Comment is the record's note; OwnerComment marks the records dropmesh made.
	Comment string
}

// OwnerComment is the comment dropmesh puts on every record it creates, and
// the mark it checks before it changes or deletes one: a record without it
// belongs to someone else and is never touched.
const OwnerComment = "managed by dropmesh"

// Owned reports whether dropmesh made r (its comment is OwnerComment).
func (r DNSRecord) Owned() bool { return r.Comment == OwnerComment }

// CheckOwned returns an error wrapping ErrForeignRecord that names the
// records of host dropmesh did not make, or nil when it made them all.
func CheckOwned(host string, recs []DNSRecord) error {
	var foreign []string
	for _, r := range recs {
		if !r.Owned() {
			foreign = append(foreign, fmt.Sprintf("%s %s %s (id %s)", strings.TrimSuffix(r.Name, "."), r.Type, r.Content, r.ID))
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: dropmesh changes only the records it made (comment %q); remove the record in Cloudflare or choose another host",
		ErrForeignRecord, strings.Join(foreign, ", "), OwnerComment)
}

// DNS is what the leader does with Cloudflare DNS.
type DNS interface {
	// FindZone returns the zone whose name is the longest suffix of host;
	// ErrNotFound.
	FindZone(ctx context.Context, host string) (Zone, error)
	// EnsureARecords makes the set of A records of host equal ips (creating,
	// updating the proxied flag and TTL, deleting extras and duplicates) and
	// returns the records now present, sorted by address. New records are
	// created before old ones are deleted, so the host is never left empty
	// while it moves. A host with an A record dropmesh did not make (see
	// Owned) is refused with ErrForeignRecord and nothing is changed.
	EnsureARecords(ctx context.Context, zoneID, host string, ips []string, proxied bool) ([]DNSRecord, error)
	// ListARecords returns the A records of host.
	ListARecords(ctx context.Context, zoneID, host string) ([]DNSRecord, error)
	// DeleteARecords deletes every A record of host that dropmesh made;
	// the others are left as they are.
	DeleteARecords(ctx context.Context, zoneID, host string) error
}

// FindZone implements DNS. It asks for each suffix of host, longest first
// (Cloudflare filters zones by exact name), down to two labels.
func (cf *Cloudflare) FindZone(ctx context.Context, host string) (Zone, error) {
	op := fmt.Sprintf("find zone of %q", host)
	if cf.err != nil {
		return Zone{}, fmt.Errorf("%s: %w", op, cf.err)
	}
	h, err := normalizeHost(host)
	if err != nil {
		return Zone{}, fmt.Errorf("%s: %w", op, err)
	}
	labels := strings.Split(h, ".")
	for i := 0; i+2 <= len(labels); i++ {
		if labels[i] == "*" {
			continue
		}
		name := strings.Join(labels[i:], ".")
		var p zones.ZoneListParams
		set(&p.Name.Value, &p.Name.Present, name)
		set(&p.PerPage.Value, &p.PerPage.Present, 50.0)
		res, err := cf.zones.List(ctx, p)
		if err != nil {
			return Zone{}, opError(op, err)
		}
		for _, z := range res.Result {
			if strings.EqualFold(z.Name, name) {
				return Zone{ID: z.ID, Name: z.Name, Status: string(z.Status)}, nil
			}
		}
	}
	return Zone{}, fmt.Errorf("%s: %w: no zone is a suffix of it", op, ErrNotFound)
}

func checkZoneHost(zoneID, host string) (string, error) {
	if !zoneIDRe.MatchString(zoneID) {
		return "", invalid("zone id %q is not a zone id", zoneID)
	}
	return normalizeHost(host)
}

// ListARecords implements DNS.
func (cf *Cloudflare) ListARecords(ctx context.Context, zoneID, host string) ([]DNSRecord, error) {
	op := fmt.Sprintf("list A records of %q", host)
	if cf.err != nil {
		return nil, fmt.Errorf("%s: %w", op, cf.err)
	}
	h, err := checkZoneHost(zoneID, host)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	recs, err := cf.listA(ctx, zoneID, h)
	return recs, opError(op, err)
}

// listA pages through the A records of host by hand: the library's
// auto-pager fetches later pages with context.Background().
func (cf *Cloudflare) listA(ctx context.Context, zoneID, host string) ([]DNSRecord, error) {
	var out []DNSRecord
	for page := 1; page <= maxPages; page++ {
		var name dns.RecordListParamsName
		set(&name.Exact.Value, &name.Exact.Present, host)
		var p dns.RecordListParams
		set(&p.ZoneID.Value, &p.ZoneID.Present, zoneID)
		set(&p.Name.Value, &p.Name.Present, name)
		set(&p.Type.Value, &p.Type.Present, dns.RecordListParamsTypeA)
		set(&p.Page.Value, &p.Page.Present, float64(page))
		set(&p.PerPage.Value, &p.PerPage.Present, float64(cf.cfg.PageSize))
		res, err := cf.records.List(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, r := range res.Result {
			if string(r.Type) != "A" || !strings.EqualFold(strings.TrimSuffix(r.Name, "."), host) {
				continue // a server that ignored the filter must not make us delete others' records
			}
			out = append(out, recordFrom(zoneID, r))
		}
		if len(res.Result) < cf.cfg.PageSize {
			return out, nil
		}
	}
	return nil, fmt.Errorf("listing has more than %d pages", maxPages)
}

func recordFrom(zoneID string, r dns.RecordResponse) DNSRecord {
	return DNSRecord{ID: r.ID, ZoneID: zoneID, Name: r.Name, Type: string(r.Type), Content: r.Content, Proxied: r.Proxied, TTL: int(r.TTL),
		Comment: r.Comment}
}

// EnsureARecords implements DNS. A create that fails with a 5xx reruns the
// whole operation, which lists again first, so no duplicate is made.
func (cf *Cloudflare) EnsureARecords(ctx context.Context, zoneID, host string, ips []string, proxied bool) ([]DNSRecord, error) {
	op := fmt.Sprintf("ensure A records of %q", host)
	if cf.err != nil {
		return nil, fmt.Errorf("%s: %w", op, cf.err)
	}
	h, err := checkZoneHost(zoneID, host)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	want, err := normalizeIPv4s(ips)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	ttl := cf.cfg.TTL
	if proxied {
		ttl = 1
	}
	var out []DNSRecord
	err = again(ctx, cf.retry, cf.log, op, func() error {
		var err error
		out, err = cf.ensureA(ctx, zoneID, h, want, proxied, ttl, false)
		return err
	})
	if err != nil {
		return nil, opError(op, err)
	}
	return out, nil
}

// ensureA makes host's records equal want. Records dropmesh did not make
// refuse the change (nothing is sent), unless deleting, where they are
// skipped: only dropmesh's own records are deleted.
func (cf *Cloudflare) ensureA(ctx context.Context, zoneID, host string, want []string, proxied bool, ttl int, deleting bool) ([]DNSRecord, error) {
	listed, err := cf.listA(ctx, zoneID, host)
	if err != nil {
		return nil, err
	}
	if !deleting {
		if err := CheckOwned(host, listed); err != nil {
			return nil, err
		}
	}
	var have []DNSRecord
	for _, r := range listed {
		if !r.Owned() {
			cf.log.Info("dns record left alone: dropmesh did not make it", "host", host, "ip", r.Content, "id", r.ID)
			continue
		}
		have = append(have, r)
	}
	slices.SortFunc(have, func(a, b DNSRecord) int { return strings.Compare(a.ID, b.ID) })
	wanted := make(map[string]bool, len(want))
	for _, ip := range want {
		wanted[ip] = true
	}
	kept := make(map[string]DNSRecord, len(want))
	var update, remove []DNSRecord
	for _, r := range have {
		ips, err := normalizeIPv4s([]string{r.Content})
		ip := ""
		if err == nil {
			ip = ips[0]
		}
		if _, dup := kept[ip]; !wanted[ip] || dup {
			remove = append(remove, r)
			continue
		}
		r.Content = ip
		kept[ip] = r
		if r.Proxied != proxied || r.TTL != ttl {
			update = append(update, r)
		}
	}
	body := func(ip string) (b dns.ARecordParam) {
		set(&b.Name.Value, &b.Name.Present, host)
		set(&b.Type.Value, &b.Type.Present, dns.ARecordTypeA)
		set(&b.Content.Value, &b.Content.Present, ip)
		set(&b.Proxied.Value, &b.Proxied.Present, proxied)
		set(&b.TTL.Value, &b.TTL.Present, dns.TTL(ttl))
		set(&b.Comment.Value, &b.Comment.Present, OwnerComment)
		return b
	}
	for _, ip := range want {
		if _, ok := kept[ip]; ok {
			continue
		}
		p := dns.RecordNewParams{Body: body(ip)}
		set(&p.ZoneID.Value, &p.ZoneID.Present, zoneID)
		r, err := cf.records.New(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", ip, apiError(err))
		}
		kept[ip] = recordFrom(zoneID, *r)
		cf.log.Info("dns record created", "host", host, "ip", ip, "proxied", proxied)
	}
	for _, old := range update {
		p := dns.RecordUpdateParams{Body: body(old.Content)}
		set(&p.ZoneID.Value, &p.ZoneID.Present, zoneID)
		r, err := cf.records.Update(ctx, old.ID, p)
		if err != nil {
			return nil, fmt.Errorf("update %s (%s): %w", old.Content, old.ID, apiError(err))
		}
		kept[old.Content] = recordFrom(zoneID, *r)
		cf.log.Info("dns record updated", "host", host, "ip", old.Content, "proxied", proxied)
	}
	for _, r := range remove {
		var p dns.RecordDeleteParams
		set(&p.ZoneID.Value, &p.ZoneID.Present, zoneID)
		if _, err := cf.records.Delete(ctx, r.ID, p); ignoreNotFound(err) != nil {
			return nil, fmt.Errorf("delete %s (%s): %w", r.Content, r.ID, apiError(err))
		}
		cf.log.Info("dns record deleted", "host", host, "ip", r.Content)
	}
	out := make([]DNSRecord, 0, len(want))
	for _, ip := range want {
		out = append(out, kept[ip])
	}
	return out, nil
}

// DeleteARecords implements DNS.
func (cf *Cloudflare) DeleteARecords(ctx context.Context, zoneID, host string) error {
	op := fmt.Sprintf("delete A records of %q", host)
	if cf.err != nil {
		return fmt.Errorf("%s: %w", op, cf.err)
	}
	h, err := checkZoneHost(zoneID, host)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = cf.ensureA(ctx, zoneID, h, nil, false, cf.cfg.TTL, true)
	return opError(op, err)
}

// set fills one of cloudflare-go's request fields (value and presence), as
// cloudflare.F does. cloudops does not import cloudflare-go's root package:
// it imports every one of the library's ~100 API packages, which made most
// of a cold build of the binary; dns, zones and option are all it needs.
func set[T any](value *T, present *bool, v T) { *value, *present = v, true }
