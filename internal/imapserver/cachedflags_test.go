package imapserver

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// cachedFlagsStore counts the store calls that the mailbox cache should
// make unnecessary.
type cachedFlagsStore struct {
	store.Store
	storeFlags, messages atomic.Int64
}

func (c *cachedFlagsStore) StoreFlags(ctx context.Context, acct store.AccountID, id store.MailboxID, req store.StoreFlagsRequest) (*store.StoreFlagsResult, error) {
	c.storeFlags.Add(1)
	return c.Store.StoreFlags(ctx, acct, id, req)
}

func (c *cachedFlagsStore) Messages(ctx context.Context, acct store.AccountID, id store.MailboxID, uids mail.UIDSet, opt store.ListOptions) func(func(*store.Message, error) bool) {
	c.messages.Add(1)
	return c.Store.Messages(ctx, acct, id, uids, opt)
}

// TestCachedFlagsUnchanged: a STORE, or the \Seen of BODY[], that
// changes no flag is answered from the loaded mailbox cache without a
// store write, with the response the store would give; one that changes
// a flag, also after another session's change the cache has to catch up
// with, still goes to the store. SELECT finds the first unseen message
// in the cache.
func TestCachedFlagsUnchanged(t *testing.T) {
	t.Parallel()
	var cs *cachedFlagsStore
	ts := newTestServer(t, func(o *Options) {
		cs = &cachedFlagsStore{Store: o.Store}
		o.Store = cs
	})
	acct := ts.addUser("alice")
	ts.deliver(acct, "INBOX", msg("one", "first"), `\Seen`)
	ts.deliver(acct, "INBOX", msg("two", "second"))
	ts.deliver(acct, "INBOX", msg("three", "third"), `\Seen`, `$Label1`)

	c := ts.login("alice")
	c.ok("a1 SELECT INBOX")
	c.ok("a2 FETCH 1:* (FLAGS)") // loads the cache
	writes := cs.storeFlags.Load()

	c.expect(`a3 STORE 1 +FLAGS (\Seen)`,
		`* 1 FETCH (UID 1 FLAGS (\Seen \Recent))`,
		`a3 OK STORE completed`)
	c.expect(`a4 STORE 3 -FLAGS.SILENT ($Label2)`, `a4 OK STORE completed`)
	c.expect(`a5 UID STORE 3 FLAGS ($Label1 \Seen)`,
		`* 3 FETCH (UID 3 FLAGS ($Label1 \Seen \Recent))`,
		`a5 OK UID STORE completed`)
	for _, l := range c.ok(`a6 FETCH 1 (BODY[])`) {
		if strings.Contains(l, "FLAGS") {
			t.Fatalf("BODY[] of a seen message reported a flag change: %s", l)
		}
	}
	if n := cs.storeFlags.Load() - writes; n != 0 {
		t.Fatalf("%d store writes for flag changes that change nothing", n)
	}

	// A real change still writes, and the next SELECT sees it.
	c.expect(`a7 STORE 2 +FLAGS (\Seen)`,
		`* 2 FETCH (UID 2 FLAGS (\Seen \Recent))`,
		`a7 OK STORE completed`)
	if n := cs.storeFlags.Load() - writes; n != 1 {
		t.Fatalf("%d store writes, want 1", n)
	}

	// Another session takes \Seen away: the cache catches up before it
	// answers, so setting it again is a write, not a stale no-op.
	d := ts.login("alice")
	d.ok("b1 SELECT INBOX")
	d.ok(`b2 STORE 1 -FLAGS (\Seen)`)
	c.expect(`a8 STORE 1 +FLAGS (\Seen)`,
		`* 1 FETCH (UID 1 FLAGS (\Seen \Recent))`,
		`a8 OK STORE completed`)
	if n := cs.storeFlags.Load() - writes; n != 3 {
		t.Fatalf("%d store writes, want 3", n)
	}
	mb, err := ts.st.Mailbox(context.Background(), acct, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for m, err := range ts.st.Messages(context.Background(), acct, mb.ID, nil, store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if !m.Flags.Has(mail.FlagSeen) {
			t.Fatalf("UID %d has no \\Seen in the store: %v", m.UID, m.Flags)
		}
	}

	// The first unseen message, from the cache: none now, then 2.
	d.ok(`b3 STORE 2 -FLAGS (\Seen)`)
	reads := cs.messages.Load()
	c.expect(`a9 SELECT INBOX`,
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 \*)] Flags permitted`,
		`* 3 EXISTS`,
		`* 0 RECENT`,
		`* OK [UNSEEN 2] First unseen`,
		`* OK [UIDVALIDITY …] UIDs valid`,
		`* OK [UIDNEXT 4] Predicted next UID`,
		`* OK [HIGHESTMODSEQ …] Highest`,
		`* OK [MAILBOXID (…)] Ok`,
		`a9 OK [READ-WRITE] SELECT completed`)
	if n := cs.messages.Load() - reads; n != 0 {
		t.Fatalf("SELECT read the store's messages %d times", n)
	}
}
