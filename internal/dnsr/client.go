package dnsr

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Options configures New.
type Options struct {
	// Servers are the resolvers to ask, "host:port", in order; empty
	// means the nameservers of /etc/resolv.conf (127.0.0.1:53 when it
	// names none).
	Servers []string
	// Timeout bounds one query to one server; zero means 5 seconds.
	Timeout time.Duration
	// CacheSize bounds the cached answers; zero means 10,000, negative
	// turns the cache off.
	CacheSize int
	// MaxTTL caps how long an answer is cached; zero means one hour.
	MaxTTL time.Duration
	// Now is the cache's clock; nil means time.Now.
	Now func() time.Time
	// Logger receives debug events; nil discards them.
	Logger *slog.Logger
}

// Client is the Resolver over DNS servers.
type Client struct {
	servers []string
	timeout time.Duration
	maxTTL  time.Duration
	max     int
	now     func() time.Time
	log     *slog.Logger

	mu    sync.Mutex // guards cache
	cache map[cacheKey]*answer
}

var _ Resolver = (*Client)(nil)

type cacheKey struct {
	name  string
	qtype uint16
}

// answer is one cached response: the records of the asked type at the end
// of any CNAME chain, or err (ErrNotFound) for NXDOMAIN.
type answer struct {
	rrs     []dns.RR
	ad      bool
	err     error
	expires time.Time
}

// ResolvConf is the file New reads when Options.Servers is empty.
const ResolvConf = "/etc/resolv.conf"

// New returns a Client. It fails only when a server address is malformed.
func New(o Options) (*Client, error) {
	c := &Client{timeout: o.Timeout, maxTTL: o.MaxTTL, max: o.CacheSize, now: o.Now, log: o.Logger,
		cache: map[cacheKey]*answer{}}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.maxTTL <= 0 {
		c.maxTTL = time.Hour
	}
	if c.max == 0 {
		c.max = 10_000
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for _, s := range o.Servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, fmt.Errorf("dns server %q: want host:port: %w", s, err)
		}
		c.servers = append(c.servers, s)
	}
	if len(c.servers) == 0 {
		c.servers = SystemServers()
	}
	return c, nil
}

// SystemServers returns the nameservers of /etc/resolv.conf as host:port,
// or 127.0.0.1:53 when there are none.
func SystemServers() []string {
	var out []string
	if cc, err := dns.ClientConfigFromFile(ResolvConf); err == nil {
		for _, s := range cc.Servers {
			out = append(out, net.JoinHostPort(s, cc.Port))
		}
	}
	if len(out) == 0 {
		out = []string{"127.0.0.1:53"}
	}
	return out
}

// Servers returns the servers the client asks, in order.
func (c *Client) Servers() []string { return slices.Clone(c.servers) }

// MX implements Resolver.
func (c *Client) MX(ctx context.Context, name string) ([]MX, Result, error) {
	a, err := c.lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, Result{}, err
	}
	var out []MX
	for _, rr := range a.rrs {
		if mx, ok := rr.(*dns.MX); ok {
			out = append(out, MX{Host: strings.TrimSuffix(mx.Mx, "."), Pref: mx.Preference})
		}
	}
	slices.SortStableFunc(out, func(a, b MX) int { return int(a.Pref) - int(b.Pref) })
	return out, Result{Authentic: a.ad}, nil
}

// IP implements Resolver. It asks for AAAA and A together; the answer is
// authentic only when both are. A name without addresses of one family
// is fine; NXDOMAIN (or a failure) for both is the error.
func (c *Client) IP(ctx context.Context, name string) ([]netip.Addr, Result, error) {
	var (
		wg     sync.WaitGroup
		a4, a6 *answer
		e4, e6 error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		a6, e6 = c.lookup(ctx, name, dns.TypeAAAA)
	}()
	a4, e4 = c.lookup(ctx, name, dns.TypeA)
	wg.Wait()
	if e4 != nil && e6 != nil {
		if IsTemporary(e6) {
			return nil, Result{}, e6
		}
		return nil, Result{}, e4
	}
	// One family failed temporarily while the other answered: use what
	// there is, but never call it authentic.
	var out []netip.Addr
	ad := e4 == nil && e6 == nil && a4.ad && a6.ad
	if e6 == nil {
		for _, rr := range a6.rrs {
			if r, ok := rr.(*dns.AAAA); ok {
				if ip, ok := netip.AddrFromSlice(r.AAAA); ok {
					out = append(out, ip)
				}
			}
		}
	}
	if e4 == nil {
		for _, rr := range a4.rrs {
			if r, ok := rr.(*dns.A); ok {
				if ip, ok := netip.AddrFromSlice(r.A.To4()); ok {
					out = append(out, ip)
				}
			}
		}
	}
	return out, Result{Authentic: ad}, nil
}

// TXT implements Resolver.
func (c *Client) TXT(ctx context.Context, name string) ([]string, Result, error) {
	a, err := c.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, Result{}, err
	}
	var out []string
	for _, rr := range a.rrs {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out, Result{Authentic: a.ad}, nil
}

// TLSA implements Resolver.
func (c *Client) TLSA(ctx context.Context, name string) ([]TLSA, Result, error) {
	a, err := c.lookup(ctx, name, dns.TypeTLSA)
	if err != nil {
		return nil, Result{}, err
	}
	var out []TLSA
	for _, rr := range a.rrs {
		if t, ok := rr.(*dns.TLSA); ok {
			data, err := hex.DecodeString(t.Certificate)
			if err != nil {
				continue // unusable (RFC 7671 §4: ignore it)
			}
			out = append(out, TLSA{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: data})
		}
	}
	return out, Result{Authentic: a.ad}, nil
}

// PTR implements Resolver.
func (c *Client) PTR(ctx context.Context, addr netip.Addr) ([]string, Result, error) {
	name, err := dns.ReverseAddr(addr.Unmap().String())
	if err != nil {
		return nil, Result{}, &Error{Name: addr.String(), Type: "PTR", Err: fmt.Errorf("%w: %v", ErrNotFound, err)}
	}
	a, err := c.lookup(ctx, name, dns.TypePTR)
	if err != nil {
		return nil, Result{}, err
	}
	var out []string
	for _, rr := range a.rrs {
		if p, ok := rr.(*dns.PTR); ok {
			out = append(out, strings.TrimSuffix(p.Ptr, "."))
		}
	}
	return out, Result{Authentic: a.ad}, nil
}

// lookup answers from the cache or asks the servers.
func (c *Client) lookup(ctx context.Context, name string, qtype uint16) (*answer, error) {
	fqdn := dns.Fqdn(strings.ToLower(name))
	tname := dns.TypeToString[qtype]
	if _, ok := dns.IsDomainName(fqdn); !ok || fqdn == "." || len(fqdn) > 254 {
		return nil, &Error{Name: fqdn, Type: tname, Err: fmt.Errorf("%w: not a domain name", ErrNotFound)}
	}
	key := cacheKey{fqdn, qtype}
	now := c.now()
	if c.max > 0 {
		c.mu.Lock()
		a := c.cache[key]
		c.mu.Unlock()
		if a != nil && now.Before(a.expires) {
			if a.err != nil {
				return nil, &Error{Name: fqdn, Type: tname, Err: a.err}
			}
			return a, nil
		}
	}
	a, err := c.exchange(ctx, fqdn, qtype)
	if err != nil {
		return nil, &Error{Name: fqdn, Type: tname, Err: err}
	}
	if c.max > 0 {
		c.store(key, a)
	}
	if a.err != nil {
		return nil, &Error{Name: fqdn, Type: tname, Err: a.err}
	}
	return a, nil
}

// store caches a, making room by dropping expired answers, then any.
func (c *Client) store(key cacheKey, a *answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cache) >= c.max {
		now := c.now()
		for k, v := range c.cache {
			if !now.Before(v.expires) {
				delete(c.cache, k)
			}
		}
		for k := range c.cache {
			if len(c.cache) < c.max {
				break
			}
			delete(c.cache, k)
		}
	}
	c.cache[key] = a
}

// exchange asks each server in turn until one answers NOERROR or
// NXDOMAIN. A truncated UDP answer is asked again over TCP.
func (c *Client) exchange(ctx context.Context, fqdn string, qtype uint16) (*answer, error) {
	q := new(dns.Msg)
	q.SetQuestion(fqdn, qtype)
	q.RecursionDesired = true
	// RFC 6840 §5.7: AD in the query asks for AD in the answer without
	// the signatures DO would bring.
	q.AuthenticatedData = true
	q.SetEdns0(1232, false)
	var lastErr error
	for _, srv := range c.servers {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTemporary, err)
		}
		resp, err := c.ask(ctx, q, srv)
		if err != nil {
			c.log.Debug("dns query failed", "server", srv, "name", fqdn, "type", dns.TypeToString[qtype], "err", err)
			lastErr = err
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess:
			return c.parse(resp, fqdn, qtype), nil
		case dns.RcodeNameError:
			return &answer{err: ErrNotFound, ad: resp.AuthenticatedData, expires: c.now().Add(c.negTTL(resp))}, nil
		default:
			lastErr = fmt.Errorf("server %s answered %s", srv, dns.RcodeToString[resp.Rcode])
		}
	}
	return nil, fmt.Errorf("%w: %v", ErrTemporary, lastErr)
}

func (c *Client) ask(ctx context.Context, q *dns.Msg, srv string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl := &dns.Client{Net: "udp", Timeout: c.timeout, UDPSize: 1232}
	resp, _, err := cl.ExchangeContext(ctx, q, srv)
	if err == nil && resp.Truncated {
		cl = &dns.Client{Net: "tcp", Timeout: c.timeout}
		resp, _, err = cl.ExchangeContext(ctx, q, srv)
	}
	if err != nil {
		return nil, err
	}
	if resp.Id != q.Id {
		return nil, errors.New("answer id mismatch")
	}
	return resp, nil
}

// parse follows the CNAME chain from fqdn through the answer section and
// keeps the records of qtype at its end (RFC 1034 §3.6.2).
func (c *Client) parse(resp *dns.Msg, fqdn string, qtype uint16) *answer {
	a := &answer{ad: resp.AuthenticatedData}
	name := fqdn
	ttl := uint32(c.maxTTL / time.Second)
	for range 10 {
		var next string
		for _, rr := range resp.Answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			if h.Rrtype == qtype {
				a.rrs = append(a.rrs, rr)
				ttl = min(ttl, h.Ttl)
			} else if cn, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME {
				next = cn.Target
				ttl = min(ttl, h.Ttl)
			}
		}
		if len(a.rrs) > 0 || next == "" {
			break
		}
		name = next
	}
	if len(a.rrs) == 0 {
		ttl = min(ttl, uint32(c.negTTL(resp)/time.Second))
	}
	a.expires = c.now().Add(time.Duration(ttl) * time.Second)
	return a
}

// negTTL is how long a negative answer is cached: the SOA's TTL or
// minimum, whichever is less (RFC 2308 §5), at most MaxTTL; 60 seconds
// when the answer has no SOA.
func (c *Client) negTTL(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second, c.maxTTL)
		}
	}
	return min(time.Minute, c.maxTTL)
}
