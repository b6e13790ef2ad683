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
	Store AccountLookup
	// Credentials keeps devices and SCRAM keys; nil means no device
	// passwords and no SCRAM (logins with the account password only).
	Credentials store.Credentials
	// RequireDevicePasswords refuses the account password: only device
	// passwords sign in (auth.require_device_passwords). The account
	// setting of that name overrides it.
	RequireDevicePasswords bool
	// Secret keys the fake SCRAM salts of unknown users (RFC 5802 §9);
	// it must stay the same across restarts, or a prober could tell an
	// unknown user by a salt that changed. nil means a random one.
	Secret []byte
	Logger *slog.Logger
	// CacheSize bounds the verification cache (entries); 0 means 10,000,
	// negative disables the cache.
	CacheSize int
	// CacheTTL is how long a successful verification is remembered; 0
	// means one hour.
	CacheTTL time.Duration
	// Guard configures the guessing protection (guard.go): delays and
	// blocks per client, delays per account.
	Guard GuardOptions
	// Metrics count what the guessing protection does.
	Metrics Metrics
	// Now is the clock; nil means time.Now. Sleep waits for the guessing
	// protection's delays; nil means a timer that ends early with ctx.
	// Tests replace both.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Service verifies logins. It is safe for concurrent use.
type Service struct {
	store   AccountLookup
	creds   store.Credentials // nil: no devices, no SCRAM
	require bool              // auth.require_device_passwords
	log     *slog.Logger
	now     func() time.Time
	secret  []byte // keys the cache so its entries reveal nothing
	// saltSecret keys the fake SCRAM salts (scram.go).
	saltSecret []byte
	// serverNonce makes the server's part of SCRAM nonces; tests fix it.
	serverNonce func() string

	cache    *verifyCache
	verifier *verifier
	guard    *guard

	dummyHash string // verified for unknown users, so timing does not tell
}

// New returns a Service.
func New(opt Options) *Service {
	s := &Service{store: opt.Store, creds: opt.Credentials, require: opt.RequireDevicePasswords,
		log: opt.Logger, now: opt.Now, verifier: newVerifier(), saltSecret: opt.Secret, serverNonce: randomNonce}
	if len(s.saltSecret) == 0 {
		s.saltSecret = make([]byte, 32)
		rand.Read(s.saltSecret)
	}
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
	s.guard = newGuard(opt.Guard, s.now, opt.Sleep, s.log, opt.Metrics)
	s.dummyHash, _ = HashPassword("postfach dummy password")
	return s
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
// whether the user exists. Before the password is checked, Login may wait
// (the guessing protection, guard.go) until ctx ends; it then returns
// ErrUnavailable wrapping ctx's error.
//
// The password may be a device's (docs/devices.md): with the plain address
// Login tries every device of the account (a fast hash each, device.go),
// and the device whose password it is signs in; with "ADDRESS#NAME" only
// that device's. Then, unless device passwords are required for the
// account (or the device named was revoked), the account password is
// checked (argon2id). An unknown user costs the same: one argon2id
// verification of a dummy hash.
func (s *Service) Login(ctx context.Context, c Credentials) (*Principal, error) {
	name, device := SplitDevice(c.Username)
	device = strings.ToLower(device)
	lname := strings.ToLower(name)
	att, err := s.Begin(ctx, c.Remote, lname, c.Service)
	if err != nil {
		return nil, err
	}
	acct, err := s.store.Account(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		s.dummyVerify(c.Password)
		att.Fail("unknown user")
		return nil, ErrFailed
	}
	if err != nil {
		att.Abandon()
		s.log.Error("login: account lookup failed", "err", err)
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var devs []store.Device
	if s.creds != nil {
		if devs, err = s.creds.Devices(ctx, acct.ID); err != nil {
			att.Abandon()
			s.log.Error("login: device lookup failed", "err", err)
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	// Device passwords first: a fast hash per device.
	if dev := s.matchDevice(devs, device, c.Password); dev != "" {
		att.Succeed()
		s.recordDevice(ctx, acct, dev, c.Remote, c.Service)
		return &Principal{Account: acct.ID, Name: acct.Name, Device: dev, Named: device != ""}, nil
	}
	if reason := s.accountPasswordRefused(acct, devs, device); reason != "" {
		s.dummyVerify(c.Password) // the time of a wrong password
		att.Fail(reason)
		return nil, ErrFailed
	}
	now := s.now()
	key := s.cacheKey(acct, c.Password)
	if s.cache != nil && s.cache.hit(key, now) {
		att.Succeed()
		s.recordDevice(ctx, acct, device, c.Remote, c.Service)
		return &Principal{Account: acct.ID, Name: acct.Name, Device: device, Named: device != ""}, nil
	}
	ok, err := s.verifier.verify(key, acct.PasswordHash, c.Password)
	if err != nil && !errors.Is(err, errBadHash) {
		att.Abandon()
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !ok {
		att.Fail("wrong password")
		return nil, ErrFailed
	}
	att.Succeed()
	if s.cache != nil {
		s.cache.add(key, now)
	}
	s.upgradeSCRAM(ctx, acct, devs, c.Password)
	s.recordDevice(ctx, acct, device, c.Remote, c.Service)
	return &Principal{Account: acct.ID, Name: acct.Name, Device: device, Named: device != ""}, nil
}

// dummyVerify spends the time of an account password check.
func (s *Service) dummyVerify(password string) {
	s.verifier.verify(s.dummyKey(password), s.dummyHash, password)
}

// matchDevice returns the device whose password pw is: among all of devs
// when device is "", else only that one. Every hash is compared in
// constant time.
func (s *Service) matchDevice(devs []store.Device, device, typed string) string {
	pw, ok := NormalizeDevicePassword(typed)
	if !ok {
		return ""
	}
	found := ""
	for _, d := range devs {
		if d.PasswordHash == "" || device != "" && d.Name != device {
			continue
		}
		h, err := parseDeviceHash(d.PasswordHash)
		if err != nil {
			s.log.Warn("device password hash unreadable", "device", d.Name, "err", err)
			continue
		}
		if h.matches(pw) && found == "" {
			found = d.Name
		}
	}
	return found
}

// RequireDevicePasswords is the account setting that overrides
// Options.RequireDevicePasswords for one account.
const RequireDevicePasswords = "auth.require_device_passwords"

// requiresDevicePasswords says whether the account password is refused
// for acct.
func (s *Service) requiresDevicePasswords(acct *store.Account) bool {
	if v, ok := acct.Settings[RequireDevicePasswords]; ok {
		return v == "true"
	}
	return s.require
}

// accountPasswordRefused returns why the account password may not sign
// in (a reason for the log), or "" when it may.
func (s *Service) accountPasswordRefused(acct *store.Account, devs []store.Device, device string) string {
	if s.requiresDevicePasswords(acct) {
		return "account password refused: device passwords required"
	}
	if device != "" {
		for _, d := range devs {
			if d.Name == device && !d.Revoked.IsZero() {
				return "device revoked"
			}
		}
	}
	return ""
}

// recordDevice notes a device's sign-in; a failure is only logged.
func (s *Service) recordDevice(ctx context.Context, acct *store.Account, device string, remote netip.Addr, service string) {
	if device == "" || s.creds == nil {
		return
	}
	r := ""
	if remote.IsValid() {
		r = remote.String()
	}
	if err := s.creds.RecordDeviceLogin(ctx, acct.ID, device, store.DeviceLogin{At: s.now(), Remote: r, Proto: service}); err != nil {
		s.log.Warn("could not record a device login", "user", acct.Name, "device", device, "err", err)
	}
}

// NoteClient records the name and version a device's client gave (IMAP
// ID, RFC 2971), for `postfach device list`. It does nothing for a
// login without a device.
func (s *Service) NoteClient(ctx context.Context, p *Principal, client string) {
	if p == nil || p.Device == "" || s.creds == nil || client == "" {
		return
	}
	if err := s.creds.SetDeviceClient(ctx, p.Account, p.Device, client); err != nil {
		s.log.Warn("could not record a device's client", "user", p.Name, "device", p.Device, "err", err)
	}
}

// Begin starts a login attempt from remote for an account name (lower
// case, without a device) under the guessing protection: it answers
// ErrRateLimited for a blocked client, or waits as the client's and the
// account's recent failures require (ErrUnavailable wrapping ctx's error
// when ctx ends first). Login uses it; a mechanism that checks credentials
// itself (a challenge-response one) calls it before the check and reports
// the outcome on the Attempt.
func (s *Service) Begin(ctx context.Context, remote netip.Addr, account, service string) (*Attempt, error) {
	att, err := s.guard.begin(ctx, remote, account, service)
	if errors.Is(err, ErrRateLimited) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return att, nil
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
// malformed SASL exchange, say) against the client.
func (s *Service) RecordFailure(remote netip.Addr) {
	s.guard.failClient(remote, "sasl")
}

// BlockedClients returns how many clients (IPv4 addresses, IPv6 /64s) the
// guessing protection refuses now.
func (s *Service) BlockedClients() int { return s.guard.blockedClients() }

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
