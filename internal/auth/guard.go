package auth

import (
	"context"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// The guessing protection (issue 11, item 6). It slows and then blocks a
// client that keeps failing, and slows, but never refuses, logins to an
// account that others are guessing at, so that a guesser cannot lock the
// owner out:
//
//   - per client (an IPv4 address, or an IPv6 /64, which one subscriber
//     usually holds whole): from GuardOptions.IPDelayAfter failures within
//     Window on, each further attempt waits before its password is
//     checked, one second doubling per failure up to IPMaxDelay; at
//     IPBlockAfter failures within Window the client's attempts are refused
//     unchecked for IPBlockDuration. A successful login forgives the
//     client's failures for the account it logged into (the owner's own
//     typos), not those for other accounts: a guesser with an account of
//     its own must not reset its count by logging into it now and then.
//   - per account: from AccountDelayAfter failures within Window (from any
//     client) on, attempts wait up to AccountMaxDelay. An account is never
//     blocked: the right password from a client that has not been failing
//     is checked, at most that little later.
//
// The wait comes before the check, for a right password as for a wrong
// one: a guesser who drops the connection after a short time learns
// nothing. Parallel attempts of a delayed client are spaced one delay apart
// (GuardOptions.IPMaxDelay each at most), so opening more connections does
// not multiply its rate; the connection limits bound how many wait.
// Waiting happens on the caller's goroutine (the session's), with no lock
// held, and ends early when the caller's context ends.
//
// Locking: guard.mu guards the client and account tables; it is never held
// while waiting or while a password is checked.

// GuardOptions configure the guessing protection. Zero fields take the
// defaults; a negative IPDelayAfter, IPBlockAfter or AccountDelayAfter
// switches that part off.
type GuardOptions struct {
	// IPDelayAfter is how many failures of one client within Window make
	// its next attempts wait (default 5); the wait starts at one second and
	// doubles with each further failure up to IPMaxDelay (default 15 s).
	IPDelayAfter int
	IPMaxDelay   time.Duration
	// IPBlockAfter failures of one client within Window block it for
	// IPBlockDuration (defaults 20 and 15 minutes).
	IPBlockAfter    int
	IPBlockDuration time.Duration
	// Window is how long a failure counts (default 10 minutes).
	Window time.Duration
	// AccountDelayAfter failures for one account within Window make
	// attempts on it wait, from one second up to AccountMaxDelay (defaults
	// 5 and 3 s).
	AccountDelayAfter int
	AccountMaxDelay   time.Duration
	// MaxEntries bounds the clients and the accounts remembered (each;
	// default 100,000). Beyond it the quiet ones are forgotten first.
	MaxEntries int
}

// DefaultGuardOptions returns the defaults of the guessing protection.
func DefaultGuardOptions() GuardOptions {
	return GuardOptions{
		IPDelayAfter:      5,
		IPMaxDelay:        15 * time.Second,
		IPBlockAfter:      20,
		IPBlockDuration:   15 * time.Minute,
		Window:            10 * time.Minute,
		AccountDelayAfter: 5,
		AccountMaxDelay:   3 * time.Second,
		MaxEntries:        100000,
	}
}

func (o GuardOptions) withDefaults() GuardOptions {
	d := DefaultGuardOptions()
	if o.IPDelayAfter == 0 {
		o.IPDelayAfter = d.IPDelayAfter
	}
	if o.IPMaxDelay <= 0 {
		o.IPMaxDelay = d.IPMaxDelay
	}
	if o.IPBlockAfter == 0 {
		o.IPBlockAfter = d.IPBlockAfter
	}
	if o.IPBlockDuration <= 0 {
		o.IPBlockDuration = d.IPBlockDuration
	}
	if o.Window <= 0 {
		o.Window = d.Window
	}
	if o.AccountDelayAfter == 0 {
		o.AccountDelayAfter = d.AccountDelayAfter
	}
	if o.AccountMaxDelay <= 0 {
		o.AccountMaxDelay = d.AccountMaxDelay
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = d.MaxEntries
	}
	return o
}

// Metrics are optional hooks that count what the guessing protection does;
// any may be nil.
type Metrics struct {
	// Failure counts a failed login (wrong password, unknown user,
	// malformed exchange), by service.
	Failure func(service string)
	// Delayed counts an attempt that waited, with the wait.
	Delayed func(d time.Duration)
	// Blocked counts a client that became blocked.
	Blocked func()
	// Refused counts an attempt refused unchecked (blocked client), by
	// service.
	Refused func(service string)
}

// ClientKey returns what the guessing protection counts a client's
// failures under: the IPv4 address, or the /64 an IPv6 address is in (an
// IPv4-mapped IPv6 address counts as IPv4). ok is false for the zero Addr
// (a unix socket), which is not counted.
func ClientKey(a netip.Addr) (key netip.Prefix, ok bool) {
	if !a.IsValid() {
		return netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32), true
	}
	p, err := a.Prefix(64)
	return p, err == nil
}

// guard is the state of the guessing protection.
type guard struct {
	opt     GuardOptions
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	log     *slog.Logger
	metrics Metrics

	seed maphash.Seed // of accountKey

	mu       sync.Mutex
	clients  map[netip.Prefix]*clientState // guarded by mu
	accounts map[uint64]*accountState      // by accountKey; guarded by mu
}

// clientState is what the guard knows of one client.
type clientState struct {
	fails        []failure // failures within the window, oldest first
	blockedUntil time.Time
	// next is when the next attempt of a delayed client may be checked:
	// parallel attempts are spaced one delay apart.
	next     time.Time
	inflight int // attempts begun and not finished
}

// failure is one failed attempt of a client: when, and for which account
// (a hash of its name, accountKey, so that long names a guesser makes up
// are not kept; 0 for a malformed exchange).
type failure struct {
	at      time.Time
	account uint64
}

// accountState is what the guard knows of one account name.
type accountState struct {
	fails []failure // failures within the window, oldest first (account unset)
}

func newGuard(opt GuardOptions, now func() time.Time, sleep func(context.Context, time.Duration) error, log *slog.Logger, m Metrics) *guard {
	if sleep == nil {
		sleep = sleepContext
	}
	return &guard{
		opt: opt.withDefaults(), now: now, sleep: sleep, log: log, metrics: m, seed: maphash.MakeSeed(),
		clients:  map[netip.Prefix]*clientState{},
		accounts: map[uint64]*accountState{},
	}
}

// accountKey is what the guard keeps of an account name: a seeded hash
// (0 for none), never the name, which a guesser can make up at up to a
// command line's length for each of the MaxEntries accounts remembered.
func (g *guard) accountKey(account string) uint64 {
	if account == "" {
		return 0
	}
	return maphash.String(g.seed, account) | 1
}

// sleepContext waits d, or until ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff is the wait after n failures when waiting starts at after
// failures: one second, doubling, at most max.
func backoff(n, after int, max time.Duration) time.Duration {
	if after < 0 || n < after {
		return 0
	}
	k := n - after
	if k >= 30 {
		return max
	}
	return min(max, time.Second<<k)
}

// keep is how many failure times are remembered: enough to see a block
// coming and to reach the longest delay.
func (g *guard) keep(after, blockAfter int) int {
	return max(blockAfter, after+32, 1)
}

// recent drops the failures that left the window and returns how many
// remain.
func recent(fails *[]failure, now time.Time, window time.Duration) int {
	f := *fails
	i := 0
	for i < len(f) && now.Sub(f[i].at) >= window {
		i++
	}
	if i > 0 {
		f = append(f[:0], f[i:]...)
		*fails = f
	}
	return len(f)
}

func addFailure(fails *[]failure, f0 failure, keep int) {
	f := *fails
	if len(f) >= keep {
		f = append(f[:0], f[len(f)-keep+1:]...)
	}
	*fails = append(f, f0)
}

// Attempt is one login attempt under the guessing protection, from
// Service.Begin. Its outcome is reported once: Fail, Succeed, or Abandon
// when no password was judged (a store error).
type Attempt struct {
	g       *guard
	client  netip.Prefix
	counted bool // the client is tracked (has an entry with inflight counted)
	remote  netip.Addr
	account string
	service string
	done    bool
}

// begin starts an attempt: it refuses a blocked client, and waits as the
// client's and the account's failures require. It returns ErrRateLimited
// for a blocked client, or ctx's error when ctx ended during the wait.
func (g *guard) begin(ctx context.Context, remote netip.Addr, account, service string) (*Attempt, error) {
	a := &Attempt{g: g, remote: remote, account: account, service: service}
	key, ok := ClientKey(remote)
	now := g.now()
	var wait time.Duration
	g.mu.Lock()
	if ok {
		c := g.clients[key]
		if c != nil && now.Before(c.blockedUntil) {
			g.mu.Unlock()
			g.refused(a)
			return nil, ErrRateLimited
		}
		if c == nil {
			c = &clientState{}
			g.insertClient(key, c, now)
		}
		c.inflight++
		a.client, a.counted = key, true
		n := recent(&c.fails, now, g.opt.Window)
		if d := backoff(n, g.opt.IPDelayAfter, g.opt.IPMaxDelay); d > 0 {
			at := now
			if c.next.After(at) {
				at = c.next
			}
			at = at.Add(d)
			c.next = at
			wait = at.Sub(now)
		}
	}
	if acct := g.accounts[g.accountKey(account)]; acct != nil && account != "" {
		n := recent(&acct.fails, now, g.opt.Window)
		wait = max(wait, backoff(n, g.opt.AccountDelayAfter, g.opt.AccountMaxDelay))
	}
	g.mu.Unlock()
	if wait <= 0 {
		return a, nil
	}
	g.log.Debug("login delayed after failures", "service", service, "remote", remote, "user", account, "delay", wait)
	if f := g.metrics.Delayed; f != nil {
		f(wait)
	}
	if err := g.sleep(ctx, wait); err != nil {
		a.Abandon()
		return nil, err
	}
	// The client may have been blocked by the attempts it had in parallel.
	if a.counted {
		g.mu.Lock()
		c := g.clients[key]
		blocked := c != nil && g.now().Before(c.blockedUntil)
		g.mu.Unlock()
		if blocked {
			a.Abandon()
			g.refused(a)
			return nil, ErrRateLimited
		}
	}
	return a, nil
}

func (g *guard) refused(a *Attempt) {
	g.log.Debug("login refused: client blocked", "service", a.service, "remote", a.remote, "user", a.account)
	if f := g.metrics.Refused; f != nil {
		f(a.service)
	}
}

// Fail reports a failed attempt (wrong password or unknown user); reason
// goes to the log.
func (a *Attempt) Fail(reason string) {
	if a.done {
		return
	}
	a.done = true
	g := a.g
	now := g.now()
	blocked := 0
	g.mu.Lock()
	if a.counted {
		if c := g.clients[a.client]; c != nil {
			c.inflight--
			blocked = g.clientFailure(c, now, g.accountKey(a.account))
		}
	}
	if a.account != "" && g.opt.AccountDelayAfter >= 0 {
		key := g.accountKey(a.account)
		acct := g.accounts[key]
		if acct == nil {
			acct = &accountState{}
			g.insertAccount(key, acct, now)
		}
		recent(&acct.fails, now, g.opt.Window)
		addFailure(&acct.fails, failure{at: now}, g.keep(g.opt.AccountDelayAfter, 0))
	}
	g.mu.Unlock()
	g.log.Info("login failed", "service", a.service, "remote", a.remote, "user", a.account, "reason", reason)
	if f := g.metrics.Failure; f != nil {
		f(a.service)
	}
	if blocked > 0 {
		g.blockedLog(a.remote, a.account, blocked)
	}
}

// Succeed reports a successful login: the client's failures for this
// account are forgotten (a user who mistyped starts afresh); its failures
// for other accounts stay, or a guesser could log into an account of its
// own after every few guesses and never be blocked.
func (a *Attempt) Succeed() {
	if a.done {
		return
	}
	a.done = true
	if !a.counted {
		return
	}
	g := a.g
	g.mu.Lock()
	if c := g.clients[a.client]; c != nil {
		c.inflight--
		key := g.accountKey(a.account)
		kept := c.fails[:0]
		for _, f := range c.fails {
			if f.account != key {
				kept = append(kept, f)
			}
		}
		c.fails = kept
		if len(c.fails) == 0 {
			c.fails = nil
			c.next = time.Time{}
			if c.inflight <= 0 && c.blockedUntil.IsZero() {
				delete(g.clients, a.client)
			}
		}
	}
	g.mu.Unlock()
}

// Abandon ends an attempt whose password was not judged.
func (a *Attempt) Abandon() {
	if a.done {
		return
	}
	a.done = true
	if !a.counted {
		return
	}
	g := a.g
	g.mu.Lock()
	if c := g.clients[a.client]; c != nil {
		c.inflight--
	}
	g.mu.Unlock()
}

// clientFailure counts a failure of a client for account and blocks it at
// the limit; it returns the failures that led to a new block, or 0. g.mu
// must be held.
func (g *guard) clientFailure(c *clientState, now time.Time, account uint64) int {
	n := recent(&c.fails, now, g.opt.Window)
	if now.Before(c.blockedUntil) {
		return 0 // blocked already (an attempt that began before the block)
	}
	addFailure(&c.fails, failure{at: now, account: account}, g.keep(g.opt.IPDelayAfter, g.opt.IPBlockAfter))
	n++
	if g.opt.IPBlockAfter >= 0 && n >= g.opt.IPBlockAfter {
		c.blockedUntil = now.Add(g.opt.IPBlockDuration)
		c.fails = nil
		c.next = time.Time{}
		return n
	}
	return 0
}

func (g *guard) blockedLog(remote netip.Addr, account string, n int) {
	key, _ := ClientKey(remote)
	g.log.Warn("client blocked after repeated login failures", "remote", remote, "client", key.String(),
		"user", account, "failures", n, "for", g.opt.IPBlockDuration)
	if f := g.metrics.Blocked; f != nil {
		f()
	}
}

// failClient counts a failure decided outside an attempt (a malformed SASL
// exchange) against the client.
func (g *guard) failClient(remote netip.Addr, service string) {
	key, ok := ClientKey(remote)
	if !ok {
		return
	}
	now := g.now()
	g.mu.Lock()
	c := g.clients[key]
	if c == nil {
		c = &clientState{}
		g.insertClient(key, c, now)
	}
	n := g.clientFailure(c, now, 0)
	g.mu.Unlock()
	g.log.Info("login failed", "service", service, "remote", remote, "reason", "malformed exchange")
	if f := g.metrics.Failure; f != nil {
		f(service)
	}
	if n > 0 {
		g.blockedLog(remote, "", n)
	}
}

// blockedClients returns the number of clients blocked now.
func (g *guard) blockedClients() int {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, c := range g.clients {
		if now.Before(c.blockedUntil) {
			n++
		}
	}
	return n
}

// insertClient adds a client, making room first when the table is full.
// g.mu must be held.
func (g *guard) insertClient(key netip.Prefix, c *clientState, now time.Time) {
	if len(g.clients) >= g.opt.MaxEntries {
		quiet := func(c *clientState) bool {
			return c.inflight <= 0 && !now.Before(c.blockedUntil) && recent(&c.fails, now, g.opt.Window) == 0
		}
		evict(g.clients, g.opt.MaxEntries, quiet)
	}
	g.clients[key] = c
}

// insertAccount adds an account, making room first when the table is
// full. g.mu must be held.
func (g *guard) insertAccount(key uint64, a *accountState, now time.Time) {
	if len(g.accounts) >= g.opt.MaxEntries {
		quiet := func(a *accountState) bool { return recent(&a.fails, now, g.opt.Window) == 0 }
		evict(g.accounts, g.opt.MaxEntries, quiet)
	}
	g.accounts[key] = a
}

// evict makes room in a full table: it drops the quiet entries, and when
// that is not enough an eighth of the table, so that the cost of a sweep
// is paid once per many inserts even when every entry is busy.
func evict[K comparable, V any](m map[K]V, limit int, quiet func(V) bool) {
	for k, v := range m {
		if quiet(v) {
			delete(m, k)
		}
	}
	if len(m) < limit {
		return
	}
	drop := max(len(m)/8, 1)
	for k := range m {
		if drop == 0 {
			break
		}
		delete(m, k)
		drop--
	}
}
