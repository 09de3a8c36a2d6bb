package fakeapi

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// DNSServer is the fake's authoritative name server: it answers UDP and TCP
// queries for the Cloudflare zones from the fake's store, so an ACME test CA
// (Pebble) can validate DNS-01 challenges against the records the real
// Cloudflare client wrote. A, AAAA, CNAME, MX and TXT records are served as
// stored; SOA and NS are made up at each zone's apex. Names outside every
// zone are REFUSED, as an authoritative server without recursion does.
type DNSServer struct {
	addr string
	udp  *dns.Server
	tcp  *dns.Server
	once sync.Once
	err  error
}

// ServeDNS starts the fake's DNS server on addr (host:port; port 0 picks a
// free port, the same one for UDP and TCP) and returns once both listen.
// Close stops it; Server.Close does not.
func (s *Server) ServeDNS(addr string) (*DNSServer, error) {
	h := dns.HandlerFunc(s.answerDNS)
	// Bind TCP first, then UDP on the same port; a free TCP port is almost
	// always free for UDP too, and a taken one is retried a few times.
	var lastErr error
	for range 5 {
		tl, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("fakeapi dns: listen tcp %s: %w", addr, err)
		}
		pc, err := net.ListenPacket("udp", tl.Addr().String())
		if err != nil {
			_ = tl.Close()
			lastErr = err
			continue
		}
		d := &DNSServer{addr: tl.Addr().String(),
			udp: &dns.Server{PacketConn: pc, Handler: h},
			tcp: &dns.Server{Listener: tl, Handler: h}}
		started := make(chan struct{}, 2)
		d.udp.NotifyStartedFunc = func() { started <- struct{}{} }
		d.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
		errs := make(chan error, 2)
		go func() { errs <- d.udp.ActivateAndServe() }()
		go func() { errs <- d.tcp.ActivateAndServe() }()
		for range 2 {
			select {
			case <-started:
			case err := <-errs:
				_ = d.Close()
				return nil, fmt.Errorf("fakeapi dns: serve %s: %w", d.addr, err)
			}
		}
		return d, nil
	}
	return nil, fmt.Errorf("fakeapi dns: listen udp beside tcp on %s: %w", addr, lastErr)
}

// Addr is the host:port the server answers on (UDP and TCP).
func (d *DNSServer) Addr() string { return d.addr }

// Close stops both listeners.
func (d *DNSServer) Close() error {
	d.once.Do(func() {
		d.err = errors.Join(d.udp.Shutdown(), d.tcp.Shutdown())
	})
	return d.err
}

// dnsTTLDefault is the TTL served for records stored with Cloudflare's
// "automatic" TTL (1).
const dnsTTLDefault = 300

// answerDNS answers one query from the store.
func (s *Server) answerDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = false
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeNotImplemented)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))

	s.mu.Lock()
	zone := s.zoneForNameLocked(name)
	var recs []CFRecord
	if zone != nil {
		recs = s.zoneRecords(zone.ID)
	}
	var ns []string
	if zone != nil {
		ns = append(ns, zone.NameServers...)
	}
	s.mu.Unlock()

	if zone == nil {
		m.Authoritative = false
		m.SetRcode(req, dns.RcodeRefused)
		_ = w.WriteMsg(m)
		return
	}
	soa := soaRR(zone.Name, ns)
	found := false
	for _, r := range recs {
		if r.Name != name {
			continue
		}
		found = true
		if rr := recordRR(r, q.Qtype); rr != nil {
			m.Answer = append(m.Answer, rr)
		}
	}
	if name == zone.Name {
		found = true
		switch q.Qtype {
		case dns.TypeSOA:
			m.Answer = append(m.Answer, soa)
		case dns.TypeNS:
			for _, n := range ns {
				m.Answer = append(m.Answer, &dns.NS{Hdr: hdr(zone.Name, dns.TypeNS, dnsTTLDefault), Ns: dns.Fqdn(n)})
			}
		}
	}
	if !found && !s.hasNamesBelow(recs, name) {
		m.SetRcode(req, dns.RcodeNameError)
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, soa)
	}
	_ = w.WriteMsg(m)
}

// hasNamesBelow reports whether name is an empty non-terminal: a record
// exists under it, so it exists (NOERROR, no data) rather than NXDOMAIN.
func (s *Server) hasNamesBelow(recs []CFRecord, name string) bool {
	for _, r := range recs {
		if strings.HasSuffix(r.Name, "."+name) {
			return true
		}
	}
	return false
}

// zoneForNameLocked is the longest zone that name is in, or nil.
func (s *Server) zoneForNameLocked(name string) *CFZone {
	var best *CFZone
	for _, z := range s.st.Zones {
		if (name == z.Name || strings.HasSuffix(name, "."+z.Name)) && (best == nil || len(z.Name) > len(best.Name)) {
			best = z
		}
	}
	return best
}

func hdr(name string, typ uint16, ttl int) dns.RR_Header {
	if ttl <= 1 {
		ttl = dnsTTLDefault
	}
	return dns.RR_Header{Name: dns.Fqdn(name), Rrtype: typ, Class: dns.ClassINET, Ttl: uint32(ttl)}
}

func soaRR(zone string, ns []string) *dns.SOA {
	mname := "ns.invalid."
	if len(ns) > 0 {
		mname = dns.Fqdn(ns[0])
	}
	return &dns.SOA{Hdr: hdr(zone, dns.TypeSOA, 60), Ns: mname, Mbox: dns.Fqdn("dns." + zone),
		Serial: 1, Refresh: 10000, Retry: 2400, Expire: 604800, Minttl: 60}
}

// recordRR turns a stored record into the answer for qtype, or nil when it
// does not answer that type. A CNAME answers every type, as it does in DNS.
func recordRR(r CFRecord, qtype uint16) dns.RR {
	h := func(t uint16) dns.RR_Header { return hdr(r.Name, t, r.TTL) }
	switch {
	case r.Type == "A" && (qtype == dns.TypeA || qtype == dns.TypeANY):
		return &dns.A{Hdr: h(dns.TypeA), A: net.ParseIP(r.Content).To4()}
	case r.Type == "AAAA" && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
		return &dns.AAAA{Hdr: h(dns.TypeAAAA), AAAA: net.ParseIP(r.Content)}
	case r.Type == "CNAME":
		return &dns.CNAME{Hdr: h(dns.TypeCNAME), Target: dns.Fqdn(r.Content)}
	case r.Type == "TXT" && (qtype == dns.TypeTXT || qtype == dns.TypeANY):
		return &dns.TXT{Hdr: h(dns.TypeTXT), Txt: splitTXT(unquoteTXT(r.Content))}
	case r.Type == "MX" && (qtype == dns.TypeMX || qtype == dns.TypeANY):
		prio := 10
		if r.Priority != nil {
			prio = *r.Priority
		}
		return &dns.MX{Hdr: h(dns.TypeMX), Preference: uint16(prio), Mx: dns.Fqdn(r.Content)}
	}
	return nil
}

// unquoteTXT drops the quotes Cloudflare clients may put around TXT content.
func unquoteTXT(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// splitTXT cuts s into the 255-byte character strings a TXT record holds.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}
