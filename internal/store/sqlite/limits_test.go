package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/sqlite"
)

func openLimited(t *testing.T, max int) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), SweepInterval: -1,
		OpsOptions: sqlite.OpsOptions{MaxMailboxes: max}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mailboxNames(t *testing.T, s store.Store, acct store.AccountID) []string {
	t.Helper()
	mbs, err := s.Mailboxes(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mb := range mbs {
		out = append(out, mb.Name)
	}
	return out
}

// TestMailboxLimit: the store keeps an account at MaxMailboxes, counting
// the parent levels a create makes, all or nothing.
func TestMailboxLimit(t *testing.T) {
	ctx := context.Background()
	s := openLimited(t, 10) // 6 default mailboxes + 4
	a, err := s.CreateAccount(ctx, "alice@example.org", "h")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "one", nil); err != nil {
		t.Fatal(err)
	}
	// a, a/b, a/b/c: three more would make 10 — allowed.
	mb, err := s.CreateMailboxWith(ctx, a.ID, "a/b/c", store.CreateOptions{Parents: true, Subscribe: true})
	if err != nil {
		t.Fatal(err)
	}
	if !mb.Subscribed {
		t.Error("created mailbox not reported subscribed")
	}
	subs, err := s.Subscriptions(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "a/b", "a/b/c"} {
		if !slices.Contains(subs, n) {
			t.Errorf("%s not subscribed: %q", n, subs)
		}
	}
	if slices.Contains(subs, "one") {
		t.Error("a mailbox created without Subscribe was subscribed")
	}
	// Full: a create of two levels fails whole, and so does one level.
	before := mailboxNames(t, s, a.ID)
	if _, err := s.CreateMailboxWith(ctx, a.ID, "x/y", store.CreateOptions{Parents: true}); !errors.Is(err, store.ErrMailboxLimit) {
		t.Fatalf("create past the limit: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "two", nil); !errors.Is(err, store.ErrMailboxLimit) {
		t.Fatalf("create past the limit: %v", err)
	}
	if err := s.RenameMailbox(ctx, a.ID, "INBOX", "Old mail"); !errors.Is(err, store.ErrMailboxLimit) {
		t.Fatalf("rename of INBOX past the limit: %v", err)
	}
	if after := mailboxNames(t, s, a.ID); !slices.Equal(before, after) {
		t.Fatalf("a refused create changed the mailboxes: %q, then %q", before, after)
	}
	// Renaming within the account adds nothing; deleting makes room.
	if err := s.RenameMailbox(ctx, a.ID, "one", "uno"); err != nil {
		t.Fatal(err)
	}
	uno, err := s.Mailbox(ctx, a.ID, "uno")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailbox(ctx, a.ID, uno.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "two", nil); err != nil {
		t.Fatalf("create after a delete: %v", err)
	}
	// Subscriptions are bounded by the same number.
	var last error
	for i := 0; i < 20 && last == nil; i++ {
		last = s.SetSubscribed(ctx, a.ID, fmt.Sprintf("nonexistent%d", i), true)
	}
	if !errors.Is(last, store.ErrMailboxLimit) {
		t.Fatalf("subscriptions past the limit: %v", last)
	}
	if subs, _ := s.Subscriptions(ctx, a.ID); len(subs) != 10 {
		t.Fatalf("%d subscriptions, want 10", len(subs))
	}
	if err := s.SetSubscribed(ctx, a.ID, "INBOX", true); err != nil {
		t.Fatalf("subscribing a name already subscribed at the limit: %v", err)
	}
}

// TestMailboxLimitConcurrent: sessions creating at the same time never
// pass the limit together.
func TestMailboxLimitConcurrent(t *testing.T) {
	ctx := context.Background()
	const max = 50
	s := openLimited(t, max)
	a, err := s.CreateAccount(ctx, "alice@example.org", "h")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, limited := 0, 0
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				_, err := s.CreateMailboxWith(ctx, a.ID, fmt.Sprintf("w%d/m%d", w, i), store.CreateOptions{Parents: true})
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, store.ErrMailboxLimit):
					limited++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if n := len(mailboxNames(t, s, a.ID)); n > max || n < max-1 {
		t.Fatalf("%d mailboxes after concurrent creates (limit %d; %d created, %d refused)", n, max, ok, limited)
	}
	if limited == 0 {
		t.Fatal("no create was refused")
	}
}
