// Package dnsr is postfach's DNS resolver: the lookups the outbound queue
// (MX, A/AAAA, TLSA, the MTA-STS TXT record) and message authentication
// (SPF, DKIM, DMARC: TXT, PTR) make, over github.com/miekg/dns.
//
// Unlike net.Resolver it tells an answer's AD bit (RFC 4035 §3.2.3), which
// DANE needs (RFC 7672 §2.2: TLSA records count only when the validating
// resolver says they were authenticated), and it keeps "the name does not
// exist" (NXDOMAIN, ErrNotFound) apart from "no answer now" (SERVFAIL,
// timeouts, ErrTemporary): a message to a domain that does not exist
// bounces, one whose DNS is down waits for a retry.
//
// Answers are cached by their TTL (negative answers by the SOA's minimum,
// RFC 2308 §5); temporary failures are not cached. A Client is safe for
// concurrent use.
package dnsr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Errors. Every lookup error wraps one of these (errors.Is).
var (
	// ErrNotFound: the name does not exist (NXDOMAIN).
	ErrNotFound = errors.New("no such domain")
	// ErrTemporary: no answer now (SERVFAIL, REFUSED, timeout, network
	// error); asking again later may work.
	ErrTemporary = errors.New("temporary DNS failure")
)

// Error is a failed lookup: the name, the record type and why.
type Error struct {
	Name string // the name asked for, fully qualified
	Type string // "MX", "A", ...
	Err  error  // wraps ErrNotFound or ErrTemporary
}

func (e *Error) Error() string {
	return fmt.Sprintf("dns %s %s: %v", e.Type, strings.TrimSuffix(e.Name, "."), e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsNotFound reports whether err says the name does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsTemporary reports whether err is a failure that may go away.
func IsTemporary(err error) bool { return errors.Is(err, ErrTemporary) }

// Result describes an answer beyond its records.
type Result struct {
	// Authentic: the resolver set the AD bit, so it validated the answer
	// with DNSSEC (RFC 4035 §3.2.3). Meaningful only with a validating
	// resolver on a trusted path (RFC 7672 §1.3; the loopback resolver).
	Authentic bool
}

// MX is one mail exchanger (RFC 5321 §5.1).
type MX struct {
	Host string // without the trailing dot; "" for a null MX (RFC 7505)
	Pref uint16
}

// TLSA is one TLSA record (RFC 6698 §2.1).
type TLSA struct {
	Usage, Selector, MatchingType uint8
	Data                          []byte // the certificate association data
}

// Resolver is what postfach asks of DNS. Each lookup returns the records
// (none, with a nil error, when the name exists without records of that
// type), the Result, and an error wrapping ErrNotFound or ErrTemporary.
// Names may be given with or without the trailing dot.
type Resolver interface {
	// MX returns the MX records of name, in preference order (equal
	// preferences in the order of the answer).
	MX(ctx context.Context, name string) ([]MX, Result, error)
	// IP returns the AAAA and A records of name, IPv6 first.
	IP(ctx context.Context, name string) ([]netip.Addr, Result, error)
	// TXT returns the TXT records of name, each one's strings joined
	// (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
	TXT(ctx context.Context, name string) ([]string, Result, error)
	// TLSA returns the TLSA records of name ("_25._tcp.mx.example.org").
	TLSA(ctx context.Context, name string) ([]TLSA, Result, error)
	// PTR returns the names of addr's reverse record, without trailing
	// dots.
	PTR(ctx context.Context, addr netip.Addr) ([]string, Result, error)
}

// NetResolver adapts a Resolver to the method set of *net.Resolver that
// libraries take (SPF, DKIM verification): errors become *net.DNSError
// with IsNotFound and IsTemporary set from ErrNotFound and ErrTemporary.
type NetResolver struct{ R Resolver }

func netErr(err error, name string) error {
	if err == nil {
		return nil
	}
	return &net.DNSError{Err: err.Error(), Name: name, IsNotFound: IsNotFound(err), IsTemporary: IsTemporary(err)}
}

// LookupTXT is net.Resolver.LookupTXT.
func (n NetResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txt, _, err := n.R.TXT(ctx, name)
	return txt, netErr(err, name)
}

// LookupMX is net.Resolver.LookupMX.
func (n NetResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mx, _, err := n.R.MX(ctx, name)
	if err != nil {
		return nil, netErr(err, name)
	}
	out := make([]*net.MX, len(mx))
	for i, m := range mx {
		out[i] = &net.MX{Host: m.Host + ".", Pref: m.Pref}
	}
	return out, nil
}

// LookupIPAddr is net.Resolver.LookupIPAddr.
func (n NetResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, _, err := n.R.IP(ctx, host)
	if err != nil {
		return nil, netErr(err, host)
	}
	out := make([]net.IPAddr, len(ips))
	for i, ip := range ips {
		out[i] = net.IPAddr{IP: ip.AsSlice()}
	}
	return out, nil
}

// LookupAddr is net.Resolver.LookupAddr.
func (n NetResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "not an IP address", Name: addr, IsNotFound: true}
	}
	names, _, err := n.R.PTR(ctx, ip)
	if err != nil {
		return nil, netErr(err, addr)
	}
	out := make([]string, len(names))
	for i, s := range names {
		out[i] = s + "."
	}
	return out, nil
}
