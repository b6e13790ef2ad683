package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// fakeClock is the guard's clock and sleep in tests: sleeping records the
// wait and moves the clock on (unless frozen), so nothing really waits.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	frozen bool
	waits  []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	if !c.frozen {
		c.t = c.t.Add(d)
	}
	c.mu.Unlock()
	return ctx.Err()
}

// lastWait returns the wait of the last attempt that waited, and forgets
// the waits.
func (c *fakeClock) takeWaits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waits
	c.waits = nil
	return w
}

// guardService returns a Service with a fake clock whose account's
// password is a cheap bcrypt hash, so that the many failed logins of these
// tests do not each cost an argon2id run.
func guardService(t *testing.T, g GuardOptions, m Metrics) (*Service, *fakeClock) {
	t.Helper()
	t.Parallel()
	clk := newFakeClock()
	s, fs := newTestService(t, Options{Guard: g, Metrics: m, Now: clk.now, Sleep: clk.sleep})
	h, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	fs.accts["alice@example.org"].PasswordHash = string(h)
	fs.mu.Unlock()
	return s, clk
}

func login(s *Service, user, pw string, from netip.Addr) error {
	_, err := s.Login(context.Background(), Credentials{Username: user, Password: pw, Remote: from, Service: "imap"})
	return err
}

// TestGuardDelaysThenBlocksTheClient: from the sixth failure of a client
// its attempts wait, one second doubling up to the cap; the twentieth
// failure blocks it, the right password included, for the block's
// duration.
func TestGuardDelaysThenBlocksTheClient(t *testing.T) {
	var failures, delays, blocks, refusals int
	s, clk := guardService(t, GuardOptions{}, Metrics{
		Failure: func(string) { failures++ },
		Delayed: func(time.Duration) { delays++ },
		Blocked: func() { blocks++ },
		Refused: func(string) { refusals++ },
	})
	guesser := netip.MustParseAddr("198.51.100.7")
	var waits []time.Duration
	for i := range 20 {
		if err := login(s, "alice@example.org", "guess", guesser); !errors.Is(err, ErrFailed) {
			t.Fatalf("guess %d: %v", i+1, err)
		}
		w := clk.takeWaits()
		if len(w) > 1 {
			t.Fatalf("guess %d waited %d times", i+1, len(w))
		}
		if len(w) == 1 {
			waits = append(waits, w[0])
		} else {
			waits = append(waits, 0)
		}
	}
	// The account's own delay (1 s, 2 s, 3 s from its sixth failure) is
	// below the client's, which wins.
	want := []time.Duration{0, 0, 0, 0, 0, 1, 2, 4, 8, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15}
	for i := range want {
		if waits[i] != want[i]*time.Second {
			t.Fatalf("waits %v, want %v seconds", waits, want)
		}
	}
	if err := login(s, "alice@example.org", "correct horse", guesser); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("blocked client, right password: %v", err)
	}
	if n := s.BlockedClients(); n != 1 {
		t.Fatalf("BlockedClients = %d", n)
	}
	clk.advance(15*time.Minute - time.Second)
	if err := login(s, "alice@example.org", "correct horse", guesser); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("just before the block ends: %v", err)
	}
	clk.advance(time.Second)
	if err := login(s, "alice@example.org", "correct horse", guesser); err != nil {
		t.Fatalf("after the block: %v", err)
	}
	if failures != 20 || delays != 15 || blocks != 1 || refusals != 2 {
		t.Fatalf("metrics: failures %d delays %d blocks %d refusals %d", failures, delays, blocks, refusals)
	}
}

// TestGuardNeverLocksOutTheOwner is the scenario of issue 11 item 6: 50
// wrong passwords from three IPs; the owner's right password from a fresh
// IP is then accepted, after at most the account's delay.
func TestGuardNeverLocksOutTheOwner(t *testing.T) {
	s, clk := guardService(t, GuardOptions{}, Metrics{})
	ips := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("203.0.113.9")}
	for i := range 50 {
		err := login(s, "alice@example.org", "guess", ips[i%3])
		if !errors.Is(err, ErrFailed) && !errors.Is(err, ErrRateLimited) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	clk.takeWaits()
	owner := netip.MustParseAddr("192.0.2.55")
	if err := login(s, "Alice@example.org", "correct horse", owner); err != nil {
		t.Fatalf("owner from a fresh IP: %v", err)
	}
	w := clk.takeWaits()
	if len(w) != 1 || w[0] > 3*time.Second {
		t.Fatalf("owner waited %v, want one wait of at most 3s", w)
	}
	// And again, without any other failure in between: still at most 3 s.
	if err := login(s, "alice@example.org", "correct horse", owner); err != nil {
		t.Fatalf("owner again: %v", err)
	}
	if w := clk.takeWaits(); len(w) > 1 || len(w) == 1 && w[0] > 3*time.Second {
		t.Fatalf("owner waited %v", w)
	}
}

// TestGuardSuccessClearsTheClient: a successful login forgets the
// client's failures.
func TestGuardSuccessClearsTheClient(t *testing.T) {
	s, clk := guardService(t, GuardOptions{AccountDelayAfter: -1}, Metrics{})
	for range 7 {
		login(s, "alice@example.org", "typo", ip)
	}
	clk.takeWaits()
	if err := login(s, "alice@example.org", "correct horse", ip); err != nil {
		t.Fatal(err)
	}
	if w := clk.takeWaits(); len(w) != 1 || w[0] != 4*time.Second {
		t.Fatalf("waits before the success: %v", w)
	}
	login(s, "alice@example.org", "typo", ip)
	if w := clk.takeWaits(); len(w) != 0 {
		t.Fatalf("after a success the next failure waited %v", w)
	}
}

// TestGuardWindow: failures older than the window do not count.
func TestGuardWindow(t *testing.T) {
	s, clk := guardService(t, GuardOptions{IPBlockAfter: 3, Window: time.Minute, AccountDelayAfter: -1, IPDelayAfter: -1}, Metrics{})
	login(s, "alice@example.org", "x", ip)
	login(s, "alice@example.org", "x", ip)
	clk.advance(time.Minute)
	login(s, "alice@example.org", "x", ip)
	if err := login(s, "alice@example.org", "correct horse", ip); err != nil {
		t.Fatalf("two of three failures were outside the window: %v", err)
	}
	for range 3 {
		login(s, "alice@example.org", "x", ip)
	}
	if err := login(s, "alice@example.org", "correct horse", ip); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("three failures within the window: %v", err)
	}
}

// TestGuardParallelAttemptsAreSpaced: attempts a delayed client makes in
// parallel wait one delay after another, so more connections do not mean
// more guesses.
func TestGuardParallelAttemptsAreSpaced(t *testing.T) {
	s, clk := guardService(t, GuardOptions{AccountDelayAfter: -1}, Metrics{})
	for range 5 {
		login(s, "alice@example.org", "x", ip)
	}
	clk.takeWaits()
	clk.mu.Lock()
	clk.frozen = true
	clk.mu.Unlock()
	var atts []*Attempt
	for range 3 {
		a, err := s.Begin(context.Background(), ip, "alice@example.org", "imap")
		if err != nil {
			t.Fatal(err)
		}
		atts = append(atts, a)
	}
	w := clk.takeWaits()
	if len(w) != 3 || w[0] != time.Second || w[1] != 2*time.Second || w[2] != 3*time.Second {
		t.Fatalf("parallel waits %v, want 1s 2s 3s", w)
	}
	for _, a := range atts {
		a.Abandon()
	}
}

// TestGuardWaitEndsWithContext: a wait ends when the caller's context
// does, and the attempt is not counted.
func TestGuardWaitEndsWithContext(t *testing.T) {
	clk := newFakeClock()
	s, _ := newTestService(t, Options{Now: clk.now, Sleep: func(ctx context.Context, d time.Duration) error {
		<-ctx.Done()
		return ctx.Err()
	}})
	for range 5 {
		login(s, "alice@example.org", "x", ip)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Login(ctx, Credentials{Username: "alice@example.org", Password: "correct horse", Remote: ip})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

// TestClientKeyIPv6Prefix: IPv6 clients are counted per /64, IPv4 per
// address, and a mapped IPv4 address as IPv4.
func TestClientKeyIPv6Prefix(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"},
		{"2001:db8:1:2::1%eth0", "2001:db8:1:2::9"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
	} {
		ka, _ := ClientKey(netip.MustParseAddr(tc.a))
		kb, _ := ClientKey(netip.MustParseAddr(tc.b))
		if ka != kb {
			t.Errorf("%s -> %s, %s -> %s: want the same client", tc.a, ka, tc.b, kb)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"192.0.2.1", "192.0.2.2"},
	} {
		ka, _ := ClientKey(netip.MustParseAddr(tc.a))
		kb, _ := ClientKey(netip.MustParseAddr(tc.b))
		if ka == kb {
			t.Errorf("%s and %s are one client %s", tc.a, tc.b, ka)
		}
	}
	if k, ok := ClientKey(netip.MustParseAddr("2001:db8:1:2:3:4:5:6")); !ok || k.String() != "2001:db8:1:2::/64" {
		t.Errorf("key %v %v", k, ok)
	}
	if _, ok := ClientKey(netip.Addr{}); ok {
		t.Error("the zero Addr has a key")
	}
	// Failures from many addresses of one /64 add up to a block.
	s, _ := guardService(t, GuardOptions{IPBlockAfter: 4, IPDelayAfter: -1, AccountDelayAfter: -1}, Metrics{})
	for i := range 4 {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, byte(i + 1)})
		login(s, "alice@example.org", "x", a)
	}
	if err := login(s, "alice@example.org", "correct horse", netip.MustParseAddr("2001:db8:0:7::99")); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("same /64: %v", err)
	}
	if err := login(s, "alice@example.org", "correct horse", netip.MustParseAddr("2001:db8:0:8::1")); err != nil {
		t.Fatalf("next /64: %v", err)
	}
}

// TestGuardMalformedCountsAgainstClient: failures decided outside Login
// (RecordFailure) count towards the block.
func TestGuardMalformedCountsAgainstClient(t *testing.T) {
	s, _ := guardService(t, GuardOptions{IPBlockAfter: 3}, Metrics{})
	for range 3 {
		s.RecordFailure(ip)
	}
	if err := login(s, "alice@example.org", "correct horse", ip); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("after three malformed exchanges: %v", err)
	}
}

// TestGuardTablesBounded: the tables of clients and accounts stay within
// MaxEntries however many clients and names a flood uses.
func TestGuardTablesBounded(t *testing.T) {
	s, _ := guardService(t, GuardOptions{MaxEntries: 64, IPDelayAfter: -1}, Metrics{})
	for i := range 1000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		att, err := s.Begin(context.Background(), a, "user"+string(rune('a'+i%26))+string(rune('a'+i/26%26)), "imap")
		if err != nil {
			t.Fatal(err)
		}
		att.Fail("test")
	}
	s.guard.mu.Lock()
	nc, na := len(s.guard.clients), len(s.guard.accounts)
	s.guard.mu.Unlock()
	if nc > 64 || na > 64 {
		t.Fatalf("%d clients, %d accounts remembered, limit 64", nc, na)
	}
}

// TestGuardKeepsNoGuessedNames: the guard remembers up to MaxEntries
// accounts, and a guesser chooses their names; it must not keep the names
// themselves (up to a command line each, 8 KiB before login), or 100,000
// made-up names would hold 800 MiB. Not parallel: it measures the heap.
func TestGuardKeepsNoGuessedNames(t *testing.T) {
	clk := newFakeClock()
	g := newGuard(GuardOptions{IPDelayAfter: -1, IPBlockAfter: -1, AccountDelayAfter: 1}, clk.now, clk.sleep,
		slog.New(slog.DiscardHandler), Metrics{})
	const n, size = 2000, 8 << 10
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		name := fmt.Sprintf("%08d", i) + strings.Repeat("x", size)
		a, err := g.begin(context.Background(), netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), name, "imap")
		if err != nil {
			t.Fatal(err)
		}
		a.Fail("test")
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if held := int64(after.HeapAlloc) - int64(before.HeapAlloc); held > n*size/4 {
		t.Fatalf("%d failures with %d-byte names hold %d KiB", n, size, held>>10)
	}
	// The names still count: the next attempt on one of them waits.
	a, err := g.begin(context.Background(), netip.AddrFrom4([4]byte{10, 2, 0, 1}), fmt.Sprintf("%08d", 7)+strings.Repeat("x", size), "imap")
	if err != nil {
		t.Fatal(err)
	}
	a.Abandon()
	if w := clk.takeWaits(); len(w) != 1 {
		t.Fatalf("an account with a failure behind it: waits %v, want one", w)
	}
	runtime.KeepAlive(g)
}
