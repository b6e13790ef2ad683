package auth

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/postfach/postfach/internal/store"
)

type fakeStore struct {
	mu    sync.Mutex
	accts map[string]*store.Account
	calls int
}

func (f *fakeStore) Account(ctx context.Context, name string) (*store.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	a, ok := f.accts[strings.ToLower(name)]
	if !ok {
		return nil, store.ErrNotFound
	}
	c := *a
	return &c, nil
}

func (f *fakeStore) set(name, password string) {
	h, err := HashPassword(password)
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := store.AccountID(len(f.accts) + 1)
	if a, ok := f.accts[strings.ToLower(name)]; ok {
		id = a.ID
	}
	f.accts[strings.ToLower(name)] = &store.Account{ID: id, Name: name, PasswordHash: h}
}

var ip = netip.MustParseAddr("192.0.2.1")

func newTestService(t *testing.T, opt Options) (*Service, *fakeStore) {
	fs := &fakeStore{accts: map[string]*store.Account{}}
	fs.set("Alice@Example.org", "correct horse")
	opt.Store = fs
	return New(opt), fs
}

func TestHashVerify(t *testing.T) {
	h, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if h2, _ := HashPassword("s3cret"); h2 == h {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"s3cret", true}, {"s3cret ", false}, {"", false}, {"S3cret", false}} {
		ok, err := VerifyPassword(h, tc.pw)
		if err != nil || ok != tc.want {
			t.Errorf("verify %q = %v, %v", tc.pw, ok, err)
		}
	}
	// bcrypt, for accounts imported from elsewhere.
	bc, err := bcrypt.GenerateFromPassword([]byte("secret"), 4)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := VerifyPassword(string(bc), "secret"); err != nil || !ok {
		t.Fatalf("bcrypt verify: %v %v", ok, err)
	}
	if ok, _ := VerifyPassword(string(bc), "Secret"); ok {
		t.Fatal("bcrypt accepted a wrong password")
	}
	for _, bad := range []string{"", "plain", "$argon2id$v=19$m=0,t=1,p=1$AAAA$AAAA", "$argon2id$v=18$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$x"} {
		if ok, err := VerifyPassword(bad, "x"); ok || err == nil {
			t.Errorf("VerifyPassword(%q) = %v, %v", bad, ok, err)
		}
	}
	if _, err := HashPassword(""); err == nil {
		t.Fatal("empty password hashed")
	}
}

func TestLogin(t *testing.T) {
	s, fs := newTestService(t, Options{})
	ctx := context.Background()
	p, err := s.Login(ctx, Credentials{Username: "alice@example.ORG", Password: "correct horse", Remote: ip, Service: "imap"})
	if err != nil || p.Name != "Alice@Example.org" || p.Device != "" {
		t.Fatalf("login = %+v, %v", p, err)
	}
	p, err = s.Login(ctx, Credentials{Username: "alice@example.org#office-pc", Password: "correct horse", Remote: ip})
	if err != nil || p.Device != "office-pc" {
		t.Fatalf("device login = %+v, %v", p, err)
	}
	for _, bad := range []Credentials{
		{Username: "alice@example.org", Password: "wrong"},
		{Username: "alice@example.org", Password: ""},
		{Username: "nobody@example.org", Password: "correct horse"},
	} {
		bad.Remote = ip
		if _, err := s.Login(ctx, bad); !errors.Is(err, ErrFailed) {
			t.Errorf("login %+v: %v, want ErrFailed", bad, err)
		}
	}
	// A cached success must not survive a password change.
	fs.set("Alice@Example.org", "new password")
	if _, err := s.Login(ctx, Credentials{Username: "alice@example.org", Password: "correct horse", Remote: ip}); !errors.Is(err, ErrFailed) {
		t.Fatalf("old password after change: %v", err)
	}
	if _, err := s.Login(ctx, Credentials{Username: "alice@example.org", Password: "new password", Remote: ip}); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

func TestCacheHit(t *testing.T) {
	s, _ := newTestService(t, Options{})
	ctx := context.Background()
	c := Credentials{Username: "alice@example.org", Password: "correct horse", Remote: ip}
	if _, err := s.Login(ctx, c); err != nil {
		t.Fatal(err)
	}
	acct, _ := s.store.Account(ctx, c.Username)
	if !s.cache.hit(s.cacheKey(acct, c.Password), time.Now()) {
		t.Fatal("successful login not cached")
	}
	if s.cache.hit(s.cacheKey(acct, "wrong"), time.Now()) {
		t.Fatal("wrong password hits the cache")
	}
	s.Invalidate("alice@example.org")
	if s.cache.hit(s.cacheKey(acct, c.Password), time.Now()) {
		t.Fatal("entry survived Invalidate")
	}
	// TTL.
	s.cache.add(s.cacheKey(acct, c.Password), time.Now().Add(-2*time.Hour))
	if s.cache.hit(s.cacheKey(acct, c.Password), time.Now()) {
		t.Fatal("expired entry hit")
	}
	// LRU bound.
	small := newVerifyCache(2, time.Hour)
	now := time.Now()
	small.add([32]byte{1}, now)
	small.add([32]byte{2}, now)
	small.add([32]byte{3}, now)
	if small.hit([32]byte{1}, now) || !small.hit([32]byte{3}, now) || small.ll.Len() != 2 {
		t.Fatal("LRU eviction wrong")
	}
}

func TestSplitDevice(t *testing.T) {
	for _, tc := range []struct{ in, addr, dev string }{
		{"a@b#phone", "a@b", "phone"},
		{"a@b#office-pc.2_x", "a@b", "office-pc.2_x"},
		{"a@b", "a@b", ""},
		{"a@b#", "a@b#", ""},
		{"#dev", "#dev", ""},
		{"a@b#bad/dev", "a@b#bad/dev", ""},
		{"a@b#" + strings.Repeat("x", 65), "a@b#" + strings.Repeat("x", 65), ""},
	} {
		a, d := SplitDevice(tc.in)
		if a != tc.addr || d != tc.dev {
			t.Errorf("SplitDevice(%q) = %q, %q", tc.in, a, d)
		}
	}
}

func TestSASL(t *testing.T) {
	s, fs := newTestService(t, Options{})
	ctx := context.Background()
	m, _ := s.NewSASL("plain", ConnInfo{Remote: ip, Service: "imap"})
	ch, p, err := m.Next(ctx, nil)
	if err != nil || p != nil || len(ch) != 0 {
		t.Fatalf("PLAIN without initial response: %q %v %v", ch, p, err)
	}
	_, p, err = m.Next(ctx, []byte("\x00alice@example.org\x00correct horse"))
	if err != nil || p == nil {
		t.Fatalf("PLAIN: %v", err)
	}
	m, _ = s.NewSASL("PLAIN", ConnInfo{Remote: ip, Service: "imap"})
	if _, _, err := m.Next(ctx, []byte("bob@example.org\x00alice@example.org\x00correct horse")); !errors.Is(err, ErrFailed) {
		t.Fatalf("PLAIN proxy authz: %v", err)
	}
	// An authzid is the user's own when it names the same account by the
	// store's key, whatever Unicode case folding says: "sam" and "ſam"
	// (long s) are two accounts, which strings.EqualFold takes for one.
	fs.set("sam@example.org", "sam pw")
	fs.set("\u017fam@example.org", "long s pw")
	for _, msg := range []string{"sam@example.org\x00\u017fam@example.org\x00long s pw", "\u017fam@example.org\x00sam@example.org\x00sam pw"} {
		m, _ = s.NewSASL("PLAIN", ConnInfo{Remote: ip, Service: "imap"})
		if _, p, err := m.Next(ctx, []byte(msg)); !errors.Is(err, ErrFailed) {
			t.Errorf("PLAIN %q: %+v %v, want refused", msg, p, err)
		}
	}
	m, _ = s.NewSASL("PLAIN", ConnInfo{Remote: ip, Service: "imap"})
	if _, p, err := m.Next(ctx, []byte("ALICE@EXAMPLE.ORG\x00alice@example.org\x00correct horse")); err != nil || p == nil {
		t.Fatalf("PLAIN with the user's own authzid in capitals: %v", err)
	}
	m, _ = s.NewSASL("PLAIN", ConnInfo{Remote: ip, Service: "imap"})
	if _, _, err := m.Next(ctx, []byte("garbage")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("PLAIN garbage: %v", err)
	}
	m, _ = s.NewSASL("LOGIN", ConnInfo{Remote: ip, Service: "imap"})
	ch, _, _ = m.Next(ctx, nil)
	if string(ch) != "Username:" {
		t.Fatalf("LOGIN first challenge %q", ch)
	}
	ch, _, _ = m.Next(ctx, []byte("alice@example.org"))
	if string(ch) != "Password:" {
		t.Fatalf("LOGIN second challenge %q", ch)
	}
	if _, p, err := m.Next(ctx, []byte("correct horse")); err != nil || p == nil {
		t.Fatalf("LOGIN: %v", err)
	}
	// LOGIN with the user name as initial response (SASL-IR).
	m, _ = s.NewSASL("LOGIN", ConnInfo{Remote: ip, Service: "imap"})
	ch, _, _ = m.Next(ctx, []byte("alice@example.org"))
	if string(ch) != "Password:" {
		t.Fatalf("LOGIN with initial response: %q", ch)
	}
	if _, err := s.NewSASL("CRAM-MD5", ConnInfo{Remote: ip, Service: "imap"}); err == nil {
		t.Fatal("unsupported mechanism accepted")
	}
}

// TestConcurrentLoginsShareVerification: many connections logging in with
// the same credentials at once share argon2id runs.
func TestConcurrentLoginsShareVerification(t *testing.T) {
	s, _ := newTestService(t, Options{CacheSize: -1})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Login(ctx, Credentials{Username: "alice@example.org", Password: "correct horse", Remote: ip})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A wrong password shared with a right one's key is impossible: keys
	// differ, so both run and each gets its own answer.
	var okErr, badErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, okErr = s.Login(ctx, Credentials{Username: "alice@example.org", Password: "correct horse", Remote: ip})
	}()
	go func() {
		defer wg.Done()
		_, badErr = s.Login(ctx, Credentials{Username: "alice@example.org", Password: "wrong", Remote: ip})
	}()
	wg.Wait()
	if okErr != nil || !errors.Is(badErr, ErrFailed) {
		t.Fatalf("right: %v, wrong: %v", okErr, badErr)
	}
	s.verifier.mu.Lock()
	n := len(s.verifier.inflight)
	s.verifier.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d verifications left in flight", n)
	}
}

func TestVerifierShares(t *testing.T) {
	v := newVerifier()
	h, _ := HashPassword("pw")
	key := [32]byte{7}
	// Hold the semaphore so the first call blocks, then add a second call
	// with the same key: it must wait for the first call's result.
	for range cap(v.sem) {
		v.sem <- struct{}{}
	}
	res := make(chan bool, 2)
	go func() { ok, _ := v.verify(key, h, "pw"); res <- ok }()
	for {
		v.mu.Lock()
		_, started := v.inflight[key]
		v.mu.Unlock()
		if started {
			break
		}
		time.Sleep(time.Millisecond)
	}
	go func() { ok, _ := v.verify(key, h, "pw"); res <- ok }()
	for {
		v.mu.Lock()
		w := v.inflight[key].waiters
		v.mu.Unlock()
		if w == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for range cap(v.sem) {
		<-v.sem
	}
	if !<-res || !<-res || v.runs.Load() != 1 {
		t.Fatalf("shared verification: %d runs", v.runs.Load())
	}
}
