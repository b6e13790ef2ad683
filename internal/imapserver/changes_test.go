package imapserver

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// countingStore counts Changes calls.
type countingStore struct {
	store.Store
	n atomic.Int32
}

func (c *countingStore) Changes(ctx context.Context, acct store.AccountID, id store.MailboxID, since mail.ModSeq) (*store.ChangeSet, error) {
	c.n.Add(1)
	return c.Store.Changes(ctx, acct, id, since)
}

func TestChangesCacheSharesOnlyFreshAnswers(t *testing.T) {
	ts := newTestServer(t)
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "1"))
	ctx := context.Background()
	mb, _ := ts.st.Mailbox(ctx, acct, "INBOX")
	cs := &countingStore{Store: ts.st}
	var cache changesCache
	first, err := cache.get(ctx, cs, acct, mb.ID, 0, mb.HighestModSeq)
	if err != nil || len(first.Changed) != 1 {
		t.Fatalf("first: %+v %v", first, err)
	}
	// Another session with the same question shares the answer.
	if again, _ := cache.get(ctx, cs, acct, mb.ID, 0, mb.HighestModSeq); again != first || cs.n.Load() != 1 {
		t.Fatalf("not shared: %d store reads", cs.n.Load())
	}
	// A session that saw a newer event does not take the old answer.
	ts.deliver(acct, "INBOX", msg("two", "2"))
	mb, _ = ts.st.Mailbox(ctx, acct, "INBOX")
	fresh, err := cache.get(ctx, cs, acct, mb.ID, 0, mb.HighestModSeq)
	if err != nil || len(fresh.Changed) != 2 || cs.n.Load() != 2 {
		t.Fatalf("stale answer shared: %d changes, %d store reads", len(fresh.Changed), cs.n.Load())
	}
	// Other accounts never share an entry.
	other := ts.addUser("bob@example.org")
	if _, err := cache.get(ctx, cs, other, mb.ID, 0, 0); err == nil {
		t.Fatal("another account's mailbox was readable")
	}
}
