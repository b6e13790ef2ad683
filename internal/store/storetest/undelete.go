package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

func undeleter(t *testing.T, s store.Store) store.Undeleter {
	t.Helper()
	u, isU := s.(store.Undeleter)
	if !isU {
		t.Fatalf("%T does not implement store.Undeleter", s)
	}
	return u
}

func deleted(t *testing.T, u store.Undeleter, acct store.AccountID, since time.Time) []*store.ExpungedMessage {
	t.Helper()
	var out []*store.ExpungedMessage
	for m, err := range u.Deleted(ctx, acct, since) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func refsOf(ms []*store.ExpungedMessage) []store.DeletedRef {
	var out []store.DeletedRef
	for _, m := range ms {
		out = append(out, store.DeletedRef{Mailbox: m.Mailbox, UID: m.UID})
	}
	return out
}

// testUndelete: expunged messages and those of a deleted mailbox are
// listed with what a person recognises them by, and come back as new
// messages (new UIDs, a new MODSEQ) with their flags, internal date and
// body; a moved message is not listed; undeleting twice adds nothing;
// the quota applies to what comes back, not to what is retained.
func testUndelete(t *testing.T, h Harness) {
	s := newStore(t, h)
	u := undeleter(t, s)
	a, inbox := account(t, s, "a@example.org")
	b, _ := account(t, s, "b@example.org")
	arch := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "Archive"))
	date := time.Date(2020, 5, 6, 7, 8, 9, 0, time.FixedZone("", 2*3600))
	raw := Msg("lost report", "the numbers")
	app := must[*store.AppendResult](t)(s.Append(ctx, a.ID, inbox.ID, []store.NewMessage{
		{Body: stage(t, s, raw), Flags: mail.Flags{mail.FlagSeen, mail.FlagDeleted, "$Work"}, InternalDate: date},
		{Body: stage(t, s, Msg("kept", "x"))},
		{Body: stage(t, s, Msg("moved away", "x"))},
	}))
	appendMsgs(t, s, b.ID, must[*store.Mailbox](t)(s.Mailbox(ctx, b.ID, "INBOX")).ID, 1)
	if got := deleted(t, u, a.ID, time.Time{}); len(got) != 0 {
		t.Fatalf("nothing expunged yet, Deleted lists %d", len(got))
	}
	before := time.Now().Add(-2 * time.Second)
	must[*store.ExpungeResult](t)(s.Expunge(ctx, a.ID, inbox.ID, nil, true))
	must[*store.CopyResult](t)(s.Move(ctx, a.ID, inbox.ID, mail.NewUIDSet(app.UIDs[2]), arch.ID))
	usage := must[*store.Usage](t)(s.Usage(ctx, a.ID))

	got := deleted(t, u, a.ID, time.Time{})
	if len(got) != 1 {
		t.Fatalf("Deleted lists %d messages, want the expunged one (not the moved one)", len(got))
	}
	d := got[0]
	if d.Mailbox != inbox.ID || d.MailboxName != "INBOX" || d.UID != app.UIDs[0] || d.Summary == nil ||
		d.Summary.Root.Envelope == nil || d.Summary.Root.Envelope.Subject != "lost report" || d.Hash != hexSHA([]byte(raw)) ||
		d.Expunged.Before(before) || !d.InternalDate.Equal(date) {
		t.Fatalf("Deleted: %+v", d)
	}
	if got := deleted(t, u, a.ID, time.Now().Add(time.Hour)); len(got) != 0 {
		t.Fatalf("Deleted since a time after the expunge lists %d", len(got))
	}
	if got := deleted(t, u, b.ID, time.Time{}); len(got) != 0 {
		t.Fatalf("another account's Deleted lists %d", len(got))
	}

	st := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID))
	sub := s.Subscribe(a.ID)
	defer sub.Close()
	res := must[*store.UndeleteResult](t)(u.Undelete(ctx, a.ID, inbox.ID, refsOf(got)))
	if len(res.UIDs) != 1 || res.UIDs[0] != st.UIDNext || res.ModSeq != st.HighestModSeq+1 || res.UIDValidity != st.UIDValidity ||
		len(res.Refs) != 1 || res.Refs[0] != refsOf(got)[0] {
		t.Fatalf("Undelete: %+v (mailbox was %+v)", res, st)
	}
	waitEvent(t, sub, func(ev store.Event) bool {
		return ev.Kind == store.EventMessages && ev.Mailbox == inbox.ID && ev.ModSeq == res.ModSeq
	})
	back := list(t, s, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs[0]), store.ListOptions{})
	if len(back) != 1 || !slices.Equal(back[0].Flags, mail.NewFlags(mail.FlagSeen, "$Work")) || !back[0].InternalDate.Equal(date) ||
		readBody(t, s, back[0].BlobID) != raw {
		t.Fatalf("undeleted message: %+v", back)
	}
	// Changes since the old state report it as new.
	cs := must[*store.ChangeSet](t)(s.Changes(ctx, a.ID, inbox.ID, st.HighestModSeq))
	if len(cs.Changed) != 1 || cs.Changed[0].UID != res.UIDs[0] || !cs.Vanished.IsEmpty() {
		t.Fatalf("changes after the undelete: %+v", cs)
	}
	wantUsage(t, s, a.ID, &store.Usage{Bytes: usage.Bytes + back[0].Size, Messages: usage.Messages + 1})
	// Twice adds nothing, and it is no longer listed.
	again := must[*store.UndeleteResult](t)(u.Undelete(ctx, a.ID, inbox.ID, refsOf(got)))
	if len(again.UIDs) != 0 || len(deleted(t, u, a.ID, time.Time{})) != 0 {
		t.Fatalf("a second undelete: %+v", again)
	}
	// Another account cannot name this account's messages.
	if r := must[*store.UndeleteResult](t)(u.Undelete(ctx, b.ID, must[*store.Mailbox](t)(s.Mailbox(ctx, b.ID, "INBOX")).ID, refsOf(got))); len(r.UIDs) != 0 {
		t.Fatalf("another account undeleted %+v", r)
	}
	if _, err := u.Undelete(ctx, a.ID, must[*store.Mailbox](t)(s.Mailbox(ctx, b.ID, "INBOX")).ID, refsOf(got)); err == nil {
		t.Fatal("undelete into another account's mailbox succeeded")
	}

	// A deleted mailbox: its messages are listed under its name and come
	// back into a mailbox made again.
	work := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Work", nil))
	appendMsgs(t, s, a.ID, work.ID, 3, mail.FlagFlagged)
	ok(t, s.DeleteMailbox(ctx, a.ID, work.ID))
	got = deleted(t, u, a.ID, time.Time{})
	if len(got) != 3 {
		t.Fatalf("Deleted lists %d messages of the deleted mailbox, want 3", len(got))
	}
	for _, m := range got {
		if m.Mailbox != work.ID || m.MailboxName != "Work" {
			t.Fatalf("message of the deleted mailbox: %+v", m)
		}
	}
	// Retained messages do not count against the quota, what comes back
	// does.
	used := wantUsage(t, s, a.ID, nil)
	one := list(t, s, a.ID, inbox.ID, all, store.ListOptions{})[0].Size
	ok(t, s.SetQuota(ctx, a.ID, store.Quota{Bytes: used.Bytes + one, Messages: store.QuotaDefault}))
	again2 := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Work", nil))
	if _, err := u.Undelete(ctx, a.ID, again2.ID, refsOf(got)); !errors.Is(err, store.ErrOverQuota) {
		t.Fatalf("undelete past the quota: %v", err)
	}
	if st := must[*store.Status](t)(s.Status(ctx, a.ID, again2.ID)); st.Messages != 0 {
		t.Fatalf("a refused undelete added %d messages", st.Messages)
	}
	ok(t, s.SetQuota(ctx, a.ID, store.Quota{Bytes: store.QuotaDefault, Messages: store.QuotaDefault}))
	res = must[*store.UndeleteResult](t)(u.Undelete(ctx, a.ID, again2.ID, refsOf(got)))
	if !slices.Equal(res.UIDs, []mail.UID{1, 2, 3}) {
		t.Fatalf("undelete into the new Work: %+v", res)
	}
	for _, m := range list(t, s, a.ID, again2.ID, all, store.ListOptions{}) {
		if !slices.Equal(m.Flags, mail.Flags{mail.FlagFlagged}) {
			t.Fatalf("undeleted message of Work: flags %v", m.Flags)
		}
	}
	// A \Noselect mailbox takes nothing.
	must[*store.Mailbox](t)(s.CreateMailboxWith(ctx, a.ID, "P/c", store.CreateOptions{Parents: true}))
	p := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "P"))
	appendMsgs(t, s, a.ID, p.ID, 1)
	ok(t, s.DeleteMailbox(ctx, a.ID, p.ID))
	got = deleted(t, u, a.ID, time.Time{})
	if len(got) != 1 || got[0].MailboxName != "P" {
		t.Fatalf("Deleted after deleting P: %+v", got)
	}
	if _, err := u.Undelete(ctx, a.ID, p.ID, refsOf(got)); !errors.Is(err, store.ErrNoSelect) {
		t.Fatalf("undelete into a \\Noselect mailbox: %v", err)
	}
	checkClean(t, s)
}

// testUndeleteMany: Deleted lists every retained message of a long list
// in which most are moved (not lost), whatever the store's chunks.
func testUndeleteMany(t *testing.T, h Harness) {
	s := newStore(t, h)
	u := undeleter(t, s)
	a, inbox := account(t, s, "a@example.org")
	arch := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "Archive"))
	res := appendMsgs(t, s, a.ID, inbox.ID, 1100)
	var moved, lost mail.UIDSet
	for i, uid := range res.UIDs {
		if i%7 == 3 {
			lost = lost.Append(uid)
		} else {
			moved = moved.Append(uid)
		}
	}
	must[*store.CopyResult](t)(s.Move(ctx, a.ID, inbox.ID, moved, arch.ID))
	must[*store.ExpungeResult](t)(s.Expunge(ctx, a.ID, inbox.ID, nil, false))
	var got mail.UIDSet
	for _, m := range deleted(t, u, a.ID, time.Time{}) {
		got = got.Append(m.UID)
	}
	if got.String() != lost.String() {
		t.Fatalf("Deleted lists %s, want %s", got, lost)
	}
}
