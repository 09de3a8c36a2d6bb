package discovery

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// answerTTL is the TTL of a service's address: short, though the address
// itself does not change while the service lives.
const answerTTL = 5

// resolver answers the DNS queries of one workspace network.
type resolver struct {
	plan     Plan
	catalog  func() *Catalog
	vip      func(key string) (netip.Addr, bool)
	upstream []string
	log      *slog.Logger
	client   *dns.Client
}

// ServeDNS implements dns.Handler.
func (r *resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := r.answer(w.RemoteAddr(), req)
	if m == nil {
		m = new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
	}
	_ = w.WriteMsg(m)
}

// answer builds the reply to req from src; nil means SERVFAIL.
func (r *resolver) answer(src net.Addr, req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	from := addrOf(src)
	if !r.plan.Subnet.Contains(from) {
		m.SetRcode(req, dns.RcodeRefused) // not a container of this workspace
		return m
	}
	if len(req.Question) != 1 {
		m.SetRcode(req, dns.RcodeFormatError)
		return m
	}
	q := req.Question[0]
	name := strings.TrimSuffix(strings.ToLower(q.Name), ".")
	internal := name == InternalZone || strings.HasSuffix(name, "."+InternalZone)
	c := r.catalog()
	caller := c.Callers[from]
	svc, found := c.lookup(r.plan.Workspace, caller, name)
	switch {
	case found:
		if q.Qclass != dns.ClassINET {
			return m
		}
		m.Authoritative = true
		addr, ok := r.vip(svc.Key())
		if !ok {
			return nil
		}
		if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: answerTTL},
				A:   net.IP(addr.AsSlice()),
			})
		}
		return m // other types: no data
	case internal:
		m.Authoritative = true
		m.SetRcode(req, dns.RcodeNameError)
		return m
	}
	return r.forward(req)
}

// forward asks the host's resolvers about a name that is not a service.
func (r *resolver) forward(req *dns.Msg) *dns.Msg {
	for _, up := range r.upstream {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, _, err := r.client.ExchangeContext(ctx, req, up)
		cancel()
		if err == nil && resp != nil {
			resp.Id = req.Id
			return resp
		}
		r.log.Debug("discovery: upstream resolver", "upstream", up, "err", err)
	}
	return nil
}

func addrOf(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// hostResolvers reads the nameservers of a resolv.conf.
func hostResolvers(path string) []string {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		out = append(out, net.JoinHostPort(s, cfg.Port))
	}
	return out
}
