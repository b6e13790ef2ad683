// Package dnstest is a DNS server on loopback for tests: it answers from a
// table of records, sets the AD bit for names in zones the test calls
// signed (as a validating resolver would), and can be told to fail
// (SERVFAIL) or to stay silent (a timeout) for a name. It speaks UDP and
// TCP on one port, so a dnsr.Client pointed at Addr works unchanged.
//
// Nothing in it reaches the real DNS: a name that is not in the table is
// NXDOMAIN.
package dnstest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a running test DNS server. Its methods are safe for
// concurrent use, also while it answers.
type Server struct {
	// Addr is "127.0.0.1:port", for dnsr.Options.Servers or the
	// [dns] servers config key.
	Addr string

	udp, tcp *dns.Server

	mu      sync.Mutex // guards the fields below
	rrs     []dns.RR
	signed  map[string]bool // zone (fqdn, lower case) -> AD set
	fail    map[string]int  // name -> rcode to answer
	silent  map[string]bool // name -> never answer
	queries map[string]int  // "name TYPE" -> count
}

// New starts a server on 127.0.0.1 (UDP and TCP on one port) and stops it
// when the test ends. records are in zone file form, as Add takes them.
func New(t testing.TB, records ...string) *Server {
	t.Helper()
	s, err := Start("", records...)
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a server outside a test (the load generator's): on addr,
// UDP and TCP, or on a free port of 127.0.0.1 when addr is "". Close
// stops it.
func Start(addr string, records ...string) (*Server, error) {
	s := &Server{signed: map[string]bool{}, fail: map[string]int{}, silent: map[string]bool{}, queries: map[string]int{}}
	var err error
	for range 20 {
		if err = s.listen(addr); err == nil || addr != "" {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	for _, r := range records {
		if err := s.AddRecord(r); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close stops the server.
func (s *Server) Close() {
	s.udp.Shutdown()
	s.tcp.Shutdown()
}

// listen binds UDP on a free port and TCP on the same one (which may be
// taken; New tries again).
func (s *Server) listen(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		return err
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	<-started
	<-started
	return nil
}

// Add adds records in zone file form: "example.org. 300 IN MX 10
// mx.example.org." (the TTL and class may be left out; the TTL then is
// 3600). It fails the test on a malformed record.
func (s *Server) Add(t testing.TB, records ...string) {
	t.Helper()
	for _, r := range records {
		if err := s.AddRecord(r); err != nil {
			t.Fatalf("dnstest: %v", err)
		}
	}
}

// AddRecord adds one record in zone file form, as Add does, and returns
// the error of a malformed one.
func (s *Server) AddRecord(r string) error {
	rr, err := dns.NewRR(r)
	if err != nil || rr == nil {
		return fmt.Errorf("record %q: %v", r, err)
	}
	rr.Header().Name = strings.ToLower(rr.Header().Name)
	s.mu.Lock()
	s.rrs = append(s.rrs, rr)
	s.mu.Unlock()
	return nil
}

// Remove drops every record of name (of every type).
func (s *Server) Remove(name string) {
	name = dns.Fqdn(strings.ToLower(name))
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.rrs[:0]
	for _, rr := range s.rrs {
		if rr.Header().Name != name {
			kept = append(kept, rr)
		}
	}
	s.rrs = kept
}

// Sign marks zone as signed: answers for names in it (the zone and below)
// carry the AD bit. Unsign reverses it.
func (s *Server) Sign(zone string) { s.setSigned(zone, true) }

// Unsign marks zone as unsigned again.
func (s *Server) Unsign(zone string) { s.setSigned(zone, false) }

func (s *Server) setSigned(zone string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signed[dns.Fqdn(strings.ToLower(zone))] = on
}

// Fail makes queries for name answer SERVFAIL; Heal undoes Fail and
// Silence.
func (s *Server) Fail(name string) { s.setFail(name, dns.RcodeServerFailure) }

// Silence makes queries for name go unanswered, so the client times out.
func (s *Server) Silence(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silent[dns.Fqdn(strings.ToLower(name))] = true
}

// Heal answers name normally again.
func (s *Server) Heal(name string) {
	name = dns.Fqdn(strings.ToLower(name))
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.fail, name)
	delete(s.silent, name)
}

func (s *Server) setFail(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[dns.Fqdn(strings.ToLower(name))] = rcode
}

// Queries returns how often name was asked for with type qtype ("MX").
func (s *Server) Queries(name, qtype string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[dns.Fqdn(strings.ToLower(name))+" "+strings.ToUpper(qtype)]
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	s.queries[name+" "+dns.TypeToString[q.Qtype]]++
	if s.silent[name] {
		s.mu.Unlock()
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if rc, ok := s.fail[name]; ok {
		s.mu.Unlock()
		m.Rcode = rc
		w.WriteMsg(m)
		return
	}
	ad := true
	cur := name
	exists := false
	for range 10 {
		ad = ad && s.signedLocked(cur)
		var cname string
		found := false
		for _, rr := range s.rrs {
			h := rr.Header()
			if h.Name != cur {
				continue
			}
			exists = true
			if h.Rrtype == q.Qtype {
				m.Answer = append(m.Answer, withName(rr, cur))
				found = true
			} else if h.Rrtype == dns.TypeCNAME {
				cname = strings.ToLower(rr.(*dns.CNAME).Target)
				m.Answer = append(m.Answer, withName(rr, cur))
			}
		}
		if found || cname == "" || q.Qtype == dns.TypeCNAME {
			break
		}
		cur, exists = cname, false
	}
	if !exists && !s.hasBelowLocked(cur) {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, s.soa(cur))
	}
	m.AuthenticatedData = ad && req.AuthenticatedData || ad && req.IsEdns0() != nil && req.IsEdns0().Do()
	s.mu.Unlock()
	if o := req.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), o.Do())
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := 512
		if o := req.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

func withName(rr dns.RR, name string) dns.RR {
	c := dns.Copy(rr)
	c.Header().Name = name
	return c
}

// hasBelowLocked reports whether a record lives below name (an empty
// non-terminal, which exists: NODATA, not NXDOMAIN; RFC 8020).
func (s *Server) hasBelowLocked(name string) bool {
	for _, rr := range s.rrs {
		if strings.HasSuffix(rr.Header().Name, "."+name) {
			return true
		}
	}
	return false
}

func (s *Server) signedLocked(name string) bool {
	labels := dns.SplitDomainName(name)
	for i := range labels {
		if on, ok := s.signed[dns.Fqdn(strings.Join(labels[i:], "."))]; ok {
			return on
		}
	}
	return false
}

// soa is the authority record of a negative answer: a minimum of 60
// seconds, so that a test that adds the name later sees it after moving
// its clock.
func (s *Server) soa(name string) dns.RR {
	labels := dns.SplitDomainName(name)
	zone := "."
	if len(labels) >= 2 {
		zone = dns.Fqdn(strings.Join(labels[len(labels)-2:], "."))
	}
	rr, _ := dns.NewRR(fmt.Sprintf("%s 60 IN SOA ns.dnstest.invalid. hostmaster.dnstest.invalid. 1 3600 600 86400 60", zone))
	return rr
}
