package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/postfach/postfach/internal/store"
)

// testCreateWith: CreateMailboxWith creates the missing parents with the
// name, all or none, and subscribes what it created when asked.
func testCreateWith(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, _ := account(t, s, "alice@example.org")
	must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "a", nil))
	mb := must[*store.Mailbox](t)(s.CreateMailboxWith(ctx, a.ID, "a/b/c", store.CreateOptions{Parents: true, Subscribe: true, SpecialUse: []string{store.UseArchive}}))
	if mb.Name != "a/b/c" || !mb.Subscribed || !slices.Equal(mb.SpecialUse, []string{store.UseArchive}) {
		t.Fatalf("created %+v", mb)
	}
	b := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "a/b"))
	if len(b.SpecialUse) != 0 {
		t.Errorf("parent got the special use: %v", b.SpecialUse)
	}
	subs := must[[]string](t)(s.Subscriptions(ctx, a.ID))
	if !slices.Contains(subs, "a/b") || !slices.Contains(subs, "a/b/c") || slices.Contains(subs, "a") {
		t.Fatalf("subscriptions %q: want the created a/b and a/b/c, not the existing a", subs)
	}
	// The name exists: nothing is created, not even a missing parent.
	must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "x/y", nil))
	_, err := s.CreateMailboxWith(ctx, a.ID, "x/y", store.CreateOptions{Parents: true})
	wantErr(t, err, store.ErrExists)
	if _, err := s.Mailbox(ctx, a.ID, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed create made its parent: %v", err)
	}
	// INBOX is never a parent to create.
	must[*store.Mailbox](t)(s.CreateMailboxWith(ctx, a.ID, "inbox/sub", store.CreateOptions{Parents: true}))
}
