// Package fakeapi is a stateful fake of the DigitalOcean and Cloudflare HTTP
// APIs, close enough that the real godo and cloudflare-go v6 clients work
// against it unchanged. Tests run it in-process (Start); local mode serves
// it on 127.0.0.1 and backs its droplets with agent processes
// (Options.Backend).
//
// Serve a Server at the root of a URL: godo uses absolute paths for
// /v2/firewalls and /v2/vpcs. The Cloudflare base URL is the same URL plus
// CloudflarePath ("/client/v4/").
//
// # Authentication
//
// Every /v2 and /client/v4 request needs "Authorization: Bearer <token>"
// (Options.Token, default DefaultToken; Options.CFToken for Cloudflare if
// set). A wrong token gets 401 {"id":"unauthorized","message":...} from
// DigitalOcean's side and {"success":false,"errors":[{"code":10000,...}]}
// from Cloudflare's. /_fake paths need no token.
//
// # DigitalOcean paths
//
// Answers and errors use DigitalOcean's shapes, checked against its
// published OpenAPI document by the contract test (cloudops/fakeapi/
// contracttest): every field the spec requires is present (a droplet's
// "locked", "backup_ids", "next_backup_window", its full size, region and
// image objects), errors are {"id","message","request_id"}; lists take
// page and per_page (default 20, max 200; page at most 1000000, else a 400)
// and answer links.pages.{first,prev,next,last} and meta.total. Every
// answer carries ratelimit-limit, ratelimit-remaining and ratelimit-reset
// (an hourly window; godo reads them into Response.Rate); Options.RateLimit
// enforces a budget, answering 429 past it.
//
//	GET    /v2/account                       the fake account
//	GET    /v2/regions, GET /v2/sizes        Options.Regions; the sizes sold
//	GET    /v2/tags, GET /v2/tags/{tag}      tags in use, with resource counts
//	GET    /v2/droplets                      list; tag_name=, name= filters
//	POST   /v2/droplets                      create, 202 {"droplet","links":{"actions":[create]}}
//	DELETE /v2/droplets?tag_name=T           delete every droplet tagged T, 204
//	GET    /v2/droplets/{id}                 one droplet
//	DELETE /v2/droplets/{id}                 204
//	GET    /v2/droplets/{id}/actions         the droplet's actions
//	POST   /v2/droplets/{id}/actions         {"type": reboot|power_cycle|power_off|power_on|shutdown|snapshot, "name"}, 201
//	GET    /v2/droplets/{id}/actions/{aid}   one of its actions
//	GET    /v2/actions                       every action
//	GET    /v2/actions/{id}                  one action (droplet or image)
//	GET    /v2/snapshots?resource_type=droplet  droplet snapshots (string ids, as DigitalOcean)
//	GET    /v2/snapshots/{id}, DELETE /v2/snapshots/{id}
//	GET    /v2/images                        distributions and snapshots; type=distribution, private=true, tag_name=
//	GET    /v2/images/{id|slug}, DELETE /v2/images/{id}
//	POST   /v2/images/{id}/actions           {"type":"transfer","region":R}, 201
//	GET    /v2/images/{id}/actions/{aid}
//	GET    /v2/firewalls, POST /v2/firewalls (202)
//	GET    /v2/firewalls/{id}, PUT (replaces name, rules, tags, droplets), DELETE (204)
//	GET    /v2/vpcs, POST /v2/vpcs (201; names unique, ranges may not overlap)
//	GET    /v2/vpcs/{id}, DELETE /v2/vpcs/{id} (403 for a default VPC or one with members)
//	GET    /v2/account/keys, POST /v2/account/keys (201)
//	GET    /v2/account/keys/{id|fingerprint}, DELETE (204)
//
// Behaviour: a droplet is created "new" with a create action in-progress;
// after Options.ActionDelay the action completes and the droplet turns
// "active". Its size must be one the fake sells (/v2/sizes: DigitalOcean's
// common slugs and figures; memory, vcpus and disk follow it) and its image
// a public distribution (debian-12-x64, ubuntu-24-04-x64, ...), a snapshot
// of the account in the droplet's region, or one of Options.Images; else
// 422, as DigitalOcean answers. Other actions complete after the same
// delay: power_off and shutdown leave the droplet "off", power_on, reboot
// and power_cycle "active"; snapshot makes a snapshot image in the
// droplet's region; transfer adds the region to the image. A droplet with
// an action in progress refuses another (422 "Droplet already has a
// pending event.", as DigitalOcean does). A droplet without a VPC joins its
// region's default VPC (made on first use). Firewall rules answer "ports"
// as DigitalOcean does: "0" for all ports (asked as "all", "0" or "") and
// always "0" on icmp. Droplet n (1, 2, ...) gets the addresses
// of Options.IPAllocator(n), by default 127.0.0.(n+1) as both public and
// private IPv4. Ids are increasing integers per kind (droplets from
// 300000001, actions from 1000000001, images from 150000001, keys from
// 40000001); firewalls and VPCs get UUID-shaped ids.
//
// # Cloudflare paths
//
// Under /client/v4, in Cloudflare's envelope
// {"result","success","errors":[{"code","message"}],"messages","result_info"}.
// Lists take page and per_page (page at most 1000000, else a 400 with code
// 1001) and answer result_info {page, per_page,
// count, total_count, total_pages}; a page past the end has "result":[]
// (which is how the v6 auto-pager stops).
//
//	GET    /zones?name=N                     zones (Options.Zones), exact name filter
//	GET    /zones/{zid}
//	GET    /zones/{zid}/dns_records          filters name, content (each also .exact, .contains, .startswith,
//	                                         .endswith; case-insensitive for names), type, proxied, match=any|all;
//	                                         any other filter is refused (400), never ignored
//	POST   /zones/{zid}/dns_records          create (A, AAAA, CNAME, MX with priority, TXT)
//	GET    /zones/{zid}/dns_records/{id}
//	PUT    /zones/{zid}/dns_records/{id}     replace
//	PATCH  /zones/{zid}/dns_records/{id}     edit the fields given
//	DELETE /zones/{zid}/dns_records/{id}     {"result":{"id"}}
//
// Records are validated as Cloudflare does: names are made absolute in the
// zone ("www" and "@" work), A content must be IPv4, proxied records get TTL
// 1 (automatic), other TTLs must be 1 or 30-86400, an identical record is
// refused (code 81058), and a CNAME cannot share a name with an A, AAAA or
// CNAME. Ids are 32 hex digits from a per-server counter.
//
// # Fault injection
//
// InjectFault(Fault{...}) in-process, or over HTTP:
//
//	POST   /_fake/faults    a Fault object or an array of them, 201
//	GET    /_fake/faults    {"faults":[...]} with the remaining times
//	DELETE /_fake/faults    clear all, 204
//
// A fault is {"method","path_prefix","status","retry_after","latency",
// "times","serve_first"}: durations as Go strings ("1.5s") or integer
// nanoseconds; method "" and path_prefix "" match anything; times 0 lasts
// until cleared. The first matching fault delays the request by latency (or
// until the client gives up), then, if status is set, answers it in the
// provider's error shape instead of serving the request, with Retry-After
// when retry_after is set (rounded up to seconds). A Cloudflare 429 always
// has one ("1" by default; error code 971); a DigitalOcean 429 instead says
// ratelimit-remaining: 0 and a ratelimit-reset a second (or retry_after)
// ahead, as DigitalOcean does. With
// serve_first the request is served first, whatever the client does next:
// the change happens and only its answer is late, replaced by the status,
// or lost when the client gives up during the latency (a create the
// provider made while its caller never heard back).
//
// # State
//
// GET /_fake/state answers, in the providers' wire shapes (State() returns
// the same as godo and Cloudflare structs),
//
//	{"droplets":   [godo droplet + "actions": [{"id","type","status"}]],
//	 "firewalls":  [godo firewall], "vpcs": [godo vpc],
//	 "snapshots":  [godo snapshot], "keys": [godo key],
//	 "dns_records": [cloudflare record], "zones": [cloudflare zone],
//	 "requests":   {"POST /v2/droplets": 3, "GET /v2/actions/{id}": 7, ...}}
//
// where requests counts every request per route pattern, faulted ones
// included (DELETE /_fake/requests zeroes it). Droplets' user data is not
// shown there.
//
// # Persistence and backends
//
// With Options.StatePath the whole state is loaded by New and saved
// atomically (temporary file, then rename; mode 0600, as it holds user data)
// after every change, so a restarted local mesh finds its droplets. Loaded
// droplets are not started: the caller starts the active ones from
// Droplets(). With Options.Backend, the fake calls Start when a droplet
// turns active (create, power_on), Restart on reboot and power_cycle, and
// Stop on delete, power_off and shutdown: one call at a time, in order,
// outside the fake's lock, errors logged. Close stops the fake's timers and
// its backend queue.
package fakeapi
