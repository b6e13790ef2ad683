package auth

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// AccountLookup is the part of the store the auth service needs.
type AccountLookup interface {
	Account(ctx context.Context, name string) (*store.Account, error)
}

// Options configure a Service.
type Options struct {
	Store  AccountLookup
	Logger *slog.Logger
	// CacheSize bounds the verification cache (entries); 0 means 10,000,
	// negative disables the cache.
	CacheSize int
	// CacheTTL is how long a successful verification is remembered; 0
	// means one hour.
	CacheTTL time.Duration
	// MaxFailuresPerIP and MaxFailuresPerAccount limit failed logins within
	// FailureWindow; beyond them Login answers ErrRateLimited without
	// checking the password. Zero means the defaults (20 per IP, 50 per
	// account, 5 minutes); negative disables that limit.
	MaxFailuresPerIP      int
	MaxFailuresPerAccount int
	FailureWindow         time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service verifies logins. It is safe for concurrent use.
type Service struct {
	store  AccountLookup
	log    *slog.Logger
	now    func() time.Time
	secret []byte // keys the cache so its entries reveal nothing

	cache    *verifyCache
	verifier *verifier
	ipLim    *failureLimiter
	acLim    *failureLimiter

	dummyHash string // verified for unknown users, so timing does not tell
}

// New returns a Service.
func New(opt Options) *Service {
	s := &Service{store: opt.Store, log: opt.Logger, now: opt.Now, verifier: newVerifier()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.secret = make([]byte, 32)
	rand.Read(s.secret)
	size, ttl := opt.CacheSize, opt.CacheTTL
	if size == 0 {
		size = 10000
	}
	if ttl == 0 {
		ttl = time.Hour
	}
	if size > 0 {
		s.cache = newVerifyCache(size, ttl)
	}
	window := opt.FailureWindow
	if window == 0 {
		window = 5 * time.Minute
	}
	s.ipLim = newFailureLimiter(defaultInt(opt.MaxFailuresPerIP, 20), window)
	s.acLim = newFailureLimiter(defaultInt(opt.MaxFailuresPerAccount, 50), window)
	s.dummyHash, _ = HashPassword("postfach dummy password")
	return s
}

func defaultInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// SplitDevice splits "ADDRESS#DEVICE" into the address and the device name.
// A device name is 1 to 64 of letters, digits, ".", "_" and "-"; anything
// else after "#" makes the whole string the address.
func SplitDevice(username string) (addr, device string) {
	i := strings.LastIndexByte(username, '#')
	if i <= 0 {
		return username, ""
	}
	dev := username[i+1:]
	if !ValidDeviceName(dev) {
		return username, ""
	}
	return username[:i], dev
}

// ValidDeviceName reports whether s can name a device.
func ValidDeviceName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Login checks a username and password. Errors are ErrFailed,
// ErrRateLimited or ErrUnavailable (wrapped); the message never says
// whether the user exists.
func (s *Service) Login(ctx context.Context, c Credentials) (*Principal, error) {
	name, device := SplitDevice(c.Username)
	lname := strings.ToLower(name)
	now := s.now()
	if s.ipLim.limited(c.Remote.String(), now) || s.acLim.limited(lname, now) {
		s.log.Info("login refused: rate limited", "service", c.Service, "remote", c.Remote, "user", name)
		return nil, ErrRateLimited
	}
	acct, err := s.store.Account(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		s.verifier.verify(s.dummyKey(c.Password), s.dummyHash, c.Password)
		s.fail(c, lname, now, "unknown user")
		return nil, ErrFailed
	}
	if err != nil {
		s.log.Error("login: account lookup failed", "err", err)
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	key := s.cacheKey(acct, c.Password)
	if s.cache != nil && s.cache.hit(key, now) {
		return &Principal{Account: acct.ID, Name: acct.Name, Device: device}, nil
	}
	ok, err := s.verifier.verify(key, acct.PasswordHash, c.Password)
	if err != nil && !errors.Is(err, errBadHash) {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !ok {
		s.fail(c, lname, now, "wrong password")
		return nil, ErrFailed
	}
	if s.cache != nil {
		s.cache.add(key, now)
	}
	return &Principal{Account: acct.ID, Name: acct.Name, Device: device}, nil
}

func (s *Service) fail(c Credentials, lname string, now time.Time, why string) {
	s.ipLim.add(c.Remote.String(), now)
	s.acLim.add(lname, now)
	s.log.Info("login failed", "service", c.Service, "remote", c.Remote, "user", lname, "reason", why)
}

// cacheKey binds a verification to the account, its current password hash
// and the password given: a wrong password or a changed hash never hits.
func (s *Service) cacheKey(acct *store.Account, password string) [32]byte {
	m := hmac.New(sha256.New, s.secret)
	fmt.Fprintf(m, "%d\x00%s\x00", acct.ID, acct.PasswordHash)
	m.Write([]byte(password))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// dummyKey keys the verification that hides unknown users.
func (s *Service) dummyKey(password string) [32]byte {
	return s.cacheKey(&store.Account{PasswordHash: s.dummyHash}, password)
}

// Invalidate forgets cached verifications; name is the account whose
// credentials changed. Password changes do not strictly need it (the cache
// key includes the stored hash, so a new hash never matches an old entry),
// but dropping entries at once keeps the cache small. Entries are keyed by
// an HMAC and cannot be told apart by account, so everything is dropped.
func (s *Service) Invalidate(name string) {
	if s.cache != nil {
		s.cache.clear()
	}
}

// RecordFailure counts a failed login that was decided outside Login (a
// malformed SASL exchange, say) against the client's IP.
func (s *Service) RecordFailure(remote netip.Addr) {
	s.ipLim.add(remote.String(), s.now())
}

// verifyCache is an LRU of successful verifications with a TTL.
type verifyCache struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	ll    *list.List                 // of *cacheEntry, most recent first; guarded by mu
	items map[[32]byte]*list.Element // guarded by mu
}

type cacheEntry struct {
	key [32]byte
	at  time.Time
}

func newVerifyCache(size int, ttl time.Duration) *verifyCache {
	return &verifyCache{size: size, ttl: ttl, ll: list.New(), items: map[[32]byte]*list.Element{}}
}

func (c *verifyCache) hit(key [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return false
	}
	if now.Sub(e.Value.(*cacheEntry).at) > c.ttl {
		c.ll.Remove(e)
		delete(c.items, key)
		return false
	}
	c.ll.MoveToFront(e)
	return true
}

func (c *verifyCache) add(key [32]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		e.Value.(*cacheEntry).at = now
		c.ll.MoveToFront(e)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, at: now})
	for c.ll.Len() > c.size {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
}

func (c *verifyCache) clear() {
	c.mu.Lock()
	c.ll.Init()
	c.items = map[[32]byte]*list.Element{}
	c.mu.Unlock()
}

// failureLimiter counts failures per key in a fixed window.
type failureLimiter struct {
	max    int
	window time.Duration

	mu     sync.Mutex
	counts map[string]*failCount // guarded by mu
}

type failCount struct {
	start time.Time
	n     int
}

func newFailureLimiter(max int, window time.Duration) *failureLimiter {
	return &failureLimiter{max: max, window: window, counts: map[string]*failCount{}}
}

func (l *failureLimiter) limited(key string, now time.Time) bool {
	if l.max < 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.counts[key]
	if c == nil {
		return false
	}
	if now.Sub(c.start) > l.window {
		delete(l.counts, key)
		return false
	}
	return c.n >= l.max
}

func (l *failureLimiter) add(key string, now time.Time) {
	if l.max < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.counts[key]
	if c == nil || now.Sub(c.start) > l.window {
		if len(l.counts) > 100000 {
			l.prune(now)
		}
		c = &failCount{start: now}
		l.counts[key] = c
	}
	c.n++
}

// prune drops expired windows; l.mu must be held.
func (l *failureLimiter) prune(now time.Time) {
	for k, c := range l.counts {
		if now.Sub(c.start) > l.window {
			delete(l.counts, k)
		}
	}
}
