package dnsr_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/dnsr"
	"github.com/postfach/postfach/internal/dnstest"
)

// clock is a clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClient(t *testing.T, srv *dnstest.Server, clk *clock) *dnsr.Client {
	t.Helper()
	o := dnsr.Options{Servers: []string{srv.Addr}, Timeout: 500 * time.Millisecond}
	if clk != nil {
		o.Now = clk.now
	}
	c, err := dnsr.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLookups(t *testing.T) {
	t.Parallel()
	srv := dnstest.New(t,
		"example.org. 300 IN MX 20 mx2.example.org.",
		"example.org. 300 IN MX 10 mx1.example.org.",
		"example.org. 300 IN TXT \"v=spf1 \" \"-all\"",
		"mx1.example.org. 300 IN A 192.0.2.1",
		"mx1.example.org. 300 IN AAAA 2001:db8::1",
		"alias.example.org. 300 IN CNAME mx1.example.org.",
		"_25._tcp.mx1.example.org. 300 IN TLSA 3 1 1 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
		"1.2.0.192.in-addr.arpa. 300 IN PTR mx1.example.org.",
	)
	c := newClient(t, srv, nil)
	ctx := context.Background()

	mx, res, err := c.MX(ctx, "Example.org")
	if err != nil {
		t.Fatal(err)
	}
	if want := []dnsr.MX{{"mx1.example.org", 10}, {"mx2.example.org", 20}}; !slices.Equal(mx, want) {
		t.Errorf("MX = %v, want %v", mx, want)
	}
	if res.Authentic {
		t.Error("MX of an unsigned zone is authentic")
	}
	txt, _, err := c.TXT(ctx, "example.org.")
	if err != nil || !slices.Equal(txt, []string{"v=spf1 -all"}) {
		t.Errorf("TXT = %q, %v; want the strings joined", txt, err)
	}
	ips, _, err := c.IP(ctx, "alias.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1")}; !slices.Equal(ips, want) {
		t.Errorf("IP through a CNAME = %v, want %v", ips, want)
	}
	tlsa, _, err := c.TLSA(ctx, "_25._tcp.mx1.example.org")
	if err != nil || len(tlsa) != 1 || tlsa[0].Usage != 3 || tlsa[0].Selector != 1 || tlsa[0].MatchingType != 1 || len(tlsa[0].Data) != 32 || tlsa[0].Data[0] != 1 {
		t.Errorf("TLSA = %+v, %v", tlsa, err)
	}
	names, _, err := c.PTR(ctx, netip.MustParseAddr("192.0.2.1"))
	if err != nil || !slices.Equal(names, []string{"mx1.example.org"}) {
		t.Errorf("PTR = %v, %v", names, err)
	}

	// A name without records of the type exists: no records, no error.
	mx, _, err = c.MX(ctx, "mx1.example.org")
	if err != nil || len(mx) != 0 {
		t.Errorf("MX of a host without MX = %v, %v; want none and no error", mx, err)
	}
	// An empty non-terminal exists too (RFC 8020).
	if _, _, err := c.TXT(ctx, "_tcp.mx1.example.org"); err != nil {
		t.Errorf("TXT of an empty non-terminal: %v", err)
	}
	// A name that does not exist.
	_, _, err = c.MX(ctx, "nowhere.example.org")
	if !dnsr.IsNotFound(err) || dnsr.IsTemporary(err) {
		t.Errorf("MX of a missing name: %v; want ErrNotFound", err)
	}
	var de *dnsr.Error
	if !errors.As(err, &de) || de.Type != "MX" || !strings.Contains(err.Error(), "nowhere.example.org") {
		t.Errorf("error %v does not name the query", err)
	}
}

func TestAuthenticData(t *testing.T) {
	t.Parallel()
	srv := dnstest.New(t,
		"_25._tcp.mx.signed.example. 300 IN TLSA 3 1 1 aabb",
		"_25._tcp.mx.plain.example. 300 IN TLSA 3 1 1 aabb",
		"mx.signed.example. 300 IN A 192.0.2.7",
	)
	srv.Sign("signed.example")
	c := newClient(t, srv, nil)
	ctx := context.Background()
	if _, res, err := c.TLSA(ctx, "_25._tcp.mx.signed.example"); err != nil || !res.Authentic {
		t.Errorf("TLSA in a signed zone: authentic %v, %v; want the AD bit", res.Authentic, err)
	}
	if _, res, err := c.TLSA(ctx, "_25._tcp.mx.plain.example"); err != nil || res.Authentic {
		t.Errorf("TLSA in an unsigned zone: authentic %v, %v; want no AD bit", res.Authentic, err)
	}
	if ips, res, err := c.IP(ctx, "mx.signed.example"); err != nil || !res.Authentic || len(ips) != 1 {
		t.Errorf("IP in a signed zone (no AAAA): %v authentic %v, %v", ips, res.Authentic, err)
	}
}

func TestTemporaryFailures(t *testing.T) {
	t.Parallel()
	srv := dnstest.New(t, "broken.example. 300 IN MX 10 mx.broken.example.", "slow.example. 300 IN MX 10 mx.slow.example.")
	srv.Fail("broken.example")
	srv.Silence("slow.example")
	c := newClient(t, srv, nil)
	ctx := context.Background()
	_, _, err := c.MX(ctx, "broken.example")
	if !dnsr.IsTemporary(err) || dnsr.IsNotFound(err) {
		t.Errorf("SERVFAIL: %v; want ErrTemporary", err)
	}
	_, _, err = c.MX(ctx, "slow.example")
	if !dnsr.IsTemporary(err) {
		t.Errorf("timeout: %v; want ErrTemporary", err)
	}
	// Failures are not cached: once healed, the next lookup works.
	srv.Heal("broken.example")
	if mx, _, err := c.MX(ctx, "broken.example"); err != nil || len(mx) != 1 {
		t.Errorf("after Heal: %v, %v", mx, err)
	}
	// A second server is asked when the first fails.
	c2, err := dnsr.New(dnsr.Options{Servers: []string{deadServer(t), srv.Addr}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if mx, _, err := c2.MX(ctx, "broken.example"); err != nil || len(mx) != 1 {
		t.Errorf("with a dead first server: %v, %v", mx, err)
	}
	// A cancelled context is a temporary failure, not "no such domain".
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := c.MX(cctx, "uncached.example"); !dnsr.IsTemporary(err) {
		t.Errorf("cancelled: %v; want ErrTemporary", err)
	}
	// The NetResolver adapter keeps the distinction.
	nr := dnsr.NetResolver{R: c}
	_, err = nr.LookupTXT(ctx, "missing.example")
	var ne *net.DNSError
	if !errors.As(err, &ne) || !ne.IsNotFound || ne.IsTemporary {
		t.Errorf("NetResolver NXDOMAIN: %#v", err)
	}
}

// deadServer is an address where nothing answers DNS: a UDP socket that
// reads nothing.
func deadServer(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

func TestCacheByTTL(t *testing.T) {
	t.Parallel()
	srv := dnstest.New(t, "cached.example. 120 IN TXT \"one\"")
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := newClient(t, srv, clk)
	ctx := context.Background()
	for range 3 {
		if txt, _, err := c.TXT(ctx, "cached.example"); err != nil || !slices.Equal(txt, []string{"one"}) {
			t.Fatalf("TXT = %v, %v", txt, err)
		}
	}
	if n := srv.Queries("cached.example", "TXT"); n != 1 {
		t.Errorf("asked %d times within the TTL; want 1", n)
	}
	clk.add(121 * time.Second)
	if _, _, err := c.TXT(ctx, "cached.example"); err != nil {
		t.Fatal(err)
	}
	if n := srv.Queries("cached.example", "TXT"); n != 2 {
		t.Errorf("asked %d times after the TTL; want 2", n)
	}
	// Negative answers are cached by the SOA minimum (60 s here).
	for range 2 {
		if _, _, err := c.TXT(ctx, "gone.example"); !dnsr.IsNotFound(err) {
			t.Fatalf("TXT gone.example: %v", err)
		}
	}
	if n := srv.Queries("gone.example", "TXT"); n != 1 {
		t.Errorf("NXDOMAIN asked %d times; want 1 (cached)", n)
	}
	srv.Add(t, "gone.example. 300 IN TXT \"back\"")
	clk.add(61 * time.Second)
	if txt, _, err := c.TXT(ctx, "gone.example"); err != nil || len(txt) != 1 {
		t.Errorf("after the negative TTL: %v, %v", txt, err)
	}
}

func TestLargeAnswerOverTCP(t *testing.T) {
	t.Parallel()
	srv := dnstest.New(t)
	long := strings.Repeat("x", 250)
	for range 20 {
		srv.Add(t, "big.example. 300 IN TXT \""+long+"\"")
	}
	c := newClient(t, srv, nil)
	txt, _, err := c.TXT(context.Background(), "big.example")
	if err != nil || len(txt) != 20 {
		t.Errorf("TXT of a truncated UDP answer: %d records, %v; want 20 over TCP", len(txt), err)
	}
}

func TestBadNames(t *testing.T) {
	t.Parallel()
	c, err := dnsr.New(dnsr.Options{Servers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "a..b", strings.Repeat("a.", 130)} {
		if _, _, err := c.MX(context.Background(), name); !dnsr.IsNotFound(err) {
			t.Errorf("MX %q: %v; want ErrNotFound without asking", name, err)
		}
	}
	if _, err := dnsr.New(dnsr.Options{Servers: []string{"no-port"}}); err == nil {
		t.Error("a server without a port was accepted")
	}
}
