package sqlite_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/store/storetest"
)

// TestDeliverTargets: a delivery whose only target fails stores nothing
// (neither a message nor a body row: Check stays clean and the next
// delivery gets the first UID), for a small body and a body file; and a
// delivery to a \Noselect mailbox goes to INBOX.
func TestDeliverTargets(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	a, _ := s.CreateAccount(ctx, "a@example.org", "x")
	inbox, _ := s.Mailbox(ctx, a.ID, "INBOX")
	for _, raw := range []string{storetest.Msg("small", "x"), storetest.Msg("large", strings.Repeat("y", 200<<10))} {
		b, err := s.Stage(ctx, strings.NewReader(raw), 0)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Deliver(ctx, b, []store.DeliveryTarget{{Account: 99999}})
		if err != nil || !errors.Is(res[0].Err, store.ErrNotFound) {
			t.Fatalf("delivery to a missing account: %v, %+v", err, res)
		}
		res, err = s.DeliverAll(ctx, b, []store.DeliveryTarget{{Account: 99999}})
		if err != nil || res[0].Err == nil {
			t.Fatalf("DeliverAll to a missing account: %v, %+v", err, res)
		}
		b.Discard()
	}
	if probs, err := s.Check(ctx); err != nil || len(probs) > 0 {
		t.Fatalf("check: %v %v", probs, err)
	}
	// A \Noselect parent: made by deleting a mailbox that has a child.
	lists, err := s.CreateMailbox(ctx, a.ID, "Lists", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "Lists/go", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailbox(ctx, a.ID, lists.ID); err != nil {
		t.Fatal(err)
	}
	b, err := s.Stage(ctx, strings.NewReader(storetest.Msg("to lists", "x")), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Discard()
	res, err := s.Deliver(ctx, b, []store.DeliveryTarget{{Account: a.ID, Mailbox: "Lists"}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("delivery to a \\Noselect mailbox: %v, %+v", err, res)
	}
	if res[0].Mailbox != inbox.ID || len(res[0].UIDs) != 1 || res[0].UIDs[0] != mail.UID(1) {
		t.Fatalf("delivery to a \\Noselect mailbox went to mailbox %d, UIDs %v; want INBOX (%d), UID 1", res[0].Mailbox, res[0].UIDs, inbox.ID)
	}
}
