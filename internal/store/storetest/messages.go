package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

func testStoreFlags(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	res := appendMsgs(t, s, a.ID, inbox.ID, 4)
	base := res.ModSeq
	set := mail.NewUIDSet(res.UIDs[0], res.UIDs[2])
	r := must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{
		UIDs: set, Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagSeen, "$Work"}}))
	if r.ModSeq <= base || len(r.Updated) != 2 || r.Changed.Len() != 2 {
		t.Fatalf("add: %+v", r)
	}
	for _, u := range r.Updated {
		if u.ModSeq != r.ModSeq || !u.Flags.Equal(mail.NewFlags(mail.FlagSeen, "$work")) {
			t.Fatalf("updated %+v", u)
		}
	}
	st := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID))
	if st.Unseen != 2 || st.HighestModSeq != r.ModSeq {
		t.Fatalf("status %+v", st)
	}
	// A no-op keeps MODSEQs (RFC 7162 §3.1.3).
	r2 := must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{
		UIDs: set, Op: store.FlagsAdd, Flags: mail.Flags{`\SEEN`}}))
	if r2.ModSeq != 0 || !r2.Changed.IsEmpty() || len(r2.Updated) != 2 || r2.Updated[0].ModSeq != r.ModSeq {
		t.Fatalf("no-op store: %+v", r2)
	}
	if st2 := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID)); st2.HighestModSeq != st.HighestModSeq {
		t.Fatal("no-op store raised HIGHESTMODSEQ")
	}
	r3 := must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{
		UIDs: all, Op: store.FlagsReplace, Flags: mail.Flags{mail.FlagDeleted}}))
	if r3.ModSeq <= r.ModSeq || len(r3.Updated) != 4 {
		t.Fatalf("replace: %+v", r3)
	}
	r4 := must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{
		UIDs: mail.NewUIDSet(res.UIDs[1]), Op: store.FlagsRemove, Flags: mail.Flags{mail.FlagDeleted, "$Nope"}}))
	if len(r4.Updated) != 1 || len(r4.Updated[0].Flags) != 0 {
		t.Fatalf("remove: %+v", r4)
	}
	st = must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID))
	if st.Deleted != 3 || st.Unseen != 4 {
		t.Fatalf("status %+v", st)
	}
	_, err := s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{UIDs: all, Op: store.FlagsAdd, Flags: mail.Flags{`\Recent`}})
	if err == nil {
		t.Fatal(`storing \Recent accepted`)
	}
	checkClean(t, s)
}

func testUnchangedSince(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	res := appendMsgs(t, s, a.ID, inbox.ID, 3)
	r := must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{
		UIDs: mail.NewUIDSet(res.UIDs[0]), Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagFlagged}}))
	// RFC 7162 §3.1.3: messages changed after UNCHANGEDSINCE are refused.
	r2 := must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{
		UIDs: all, Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagSeen}, UnchangedSince: res.ModSeq}))
	if !slices.Equal(r2.Modified.UIDs(), []mail.UID{res.UIDs[0]}) || r2.Changed.Len() != 2 {
		t.Fatalf("unchangedsince: modified %v changed %v", r2.Modified, r2.Changed)
	}
	m := list(t, s, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs[0]), store.ListOptions{})[0]
	if m.Flags.Has(mail.FlagSeen) || m.ModSeq != r.ModSeq {
		t.Fatalf("refused message changed: %+v", m)
	}
}

func testExpunge(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	res := appendMsgs(t, s, a.ID, inbox.ID, 5)
	since := res.ModSeq
	must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{
		UIDs: mail.NewUIDSet(res.UIDs[1], res.UIDs[3]), Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagDeleted}}))
	// UID EXPUNGE of a set only expunges \Deleted messages in it.
	ex := must[*store.ExpungeResult](t)(s.Expunge(ctx, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs[0], res.UIDs[1]), true))
	if !slices.Equal(ex.UIDs.UIDs(), []mail.UID{res.UIDs[1]}) {
		t.Fatalf("uid expunge: %v", ex.UIDs)
	}
	ex2 := must[*store.ExpungeResult](t)(s.Expunge(ctx, a.ID, inbox.ID, nil, true))
	if !slices.Equal(ex2.UIDs.UIDs(), []mail.UID{res.UIDs[3]}) || ex2.ModSeq <= ex.ModSeq {
		t.Fatalf("expunge: %+v after %+v", ex2, ex)
	}
	empty := must[*store.ExpungeResult](t)(s.Expunge(ctx, a.ID, inbox.ID, nil, true))
	if !empty.UIDs.IsEmpty() || empty.ModSeq != 0 {
		t.Fatalf("empty expunge: %+v", empty)
	}
	must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{
		UIDs: mail.NewUIDSet(res.UIDs[4]), Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagAnswered}}))
	newer := appendMsgs(t, s, a.ID, inbox.ID, 1)

	cs := must[*store.ChangeSet](t)(s.Changes(ctx, a.ID, inbox.ID, since))
	if !cs.VanishedComplete || !slices.Equal(cs.Vanished.UIDs(), []mail.UID{res.UIDs[1], res.UIDs[3]}) {
		t.Fatalf("vanished %v complete %v", cs.Vanished, cs.VanishedComplete)
	}
	var changed []mail.UID
	for _, m := range cs.Changed {
		changed = append(changed, m.UID)
	}
	if !slices.Equal(changed, []mail.UID{res.UIDs[4], newer.UIDs[0]}) {
		t.Fatalf("changed %v", changed)
	}
	st := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID))
	if cs.HighestModSeq != st.HighestModSeq || cs.UIDNext != st.UIDNext || st.Messages != 4 {
		t.Fatalf("changeset %+v status %+v", cs, st)
	}
	// Changes since the current MODSEQ is empty; since an intermediate
	// one gives only what came later.
	cs = must[*store.ChangeSet](t)(s.Changes(ctx, a.ID, inbox.ID, st.HighestModSeq))
	if len(cs.Changed) != 0 || !cs.Vanished.IsEmpty() {
		t.Fatalf("changes since now: %+v", cs)
	}
	cs = must[*store.ChangeSet](t)(s.Changes(ctx, a.ID, inbox.ID, ex.ModSeq))
	if !slices.Equal(cs.Vanished.UIDs(), []mail.UID{res.UIDs[3]}) || len(cs.Changed) != 2 {
		t.Fatalf("changes since first expunge: %+v", cs)
	}
	// The body stays readable: expunged mail is recoverable for a while.
	if readBody(t, s, list(t, s, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs[0]), store.ListOptions{})[0].BlobID) == "" {
		t.Fatal("empty body")
	}
	checkClean(t, s)
}

func testCopyMove(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	arch := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "Archive"))
	res := appendMsgs(t, s, a.ID, inbox.ID, 3, mail.FlagFlagged, "$Label")
	c := must[*store.CopyResult](t)(s.Copy(ctx, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs[0], res.UIDs[2]), arch.ID))
	if c.UIDValidity != arch.UIDValidity || !slices.Equal(c.Source, []mail.UID{res.UIDs[0], res.UIDs[2]}) || len(c.Dest) != 2 {
		t.Fatalf("copy: %+v", c)
	}
	src := list(t, s, a.ID, inbox.ID, all, store.ListOptions{})
	dst := list(t, s, a.ID, arch.ID, all, store.ListOptions{})
	if len(src) != 3 || len(dst) != 2 {
		t.Fatalf("after copy: %d in source, %d in destination", len(src), len(dst))
	}
	if dst[0].BlobID != src[0].BlobID || dst[0].EmailID != src[0].EmailID || !dst[0].Flags.Equal(src[0].Flags) ||
		!dst[0].InternalDate.Equal(src[0].InternalDate) {
		t.Fatalf("copy differs: %+v vs %+v", dst[0], src[0])
	}
	// COPY into the same mailbox makes duplicates with new UIDs.
	self := must[*store.CopyResult](t)(s.Copy(ctx, a.ID, inbox.ID, all, inbox.ID))
	if len(self.Dest) != 3 || self.Dest[0] <= res.UIDs[2] {
		t.Fatalf("self copy %+v", self)
	}
	m := must[*store.CopyResult](t)(s.Move(ctx, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs[1]), arch.ID))
	if len(m.Dest) != 1 || m.ExpungeModSeq == 0 {
		t.Fatalf("move %+v", m)
	}
	cs := must[*store.ChangeSet](t)(s.Changes(ctx, a.ID, inbox.ID, self.DestModSeq))
	if !slices.Equal(cs.Vanished.UIDs(), []mail.UID{res.UIDs[1]}) {
		t.Fatalf("move left vanished %v", cs.Vanished)
	}
	if st := must[*store.Status](t)(s.Status(ctx, a.ID, arch.ID)); st.Messages != 3 {
		t.Fatalf("archive has %d", st.Messages)
	}
	// MOVE into the same mailbox: the message gets a new UID (with its
	// body, flags and EMAILID) and the old one is expunged; the copy and
	// the expunge get one MODSEQ each.
	before := list(t, s, a.ID, inbox.ID, all, store.ListOptions{})
	moved := before[0]
	self = must[*store.CopyResult](t)(s.Move(ctx, a.ID, inbox.ID, mail.NewUIDSet(moved.UID), inbox.ID))
	if len(self.Dest) != 1 || self.Dest[0] <= before[len(before)-1].UID || self.ExpungeModSeq != self.DestModSeq+1 {
		t.Fatalf("move into the same mailbox: %+v", self)
	}
	after := list(t, s, a.ID, inbox.ID, all, store.ListOptions{})
	if len(after) != len(before) || after[0].UID == moved.UID {
		t.Fatalf("after a move into the same mailbox: %d messages, first UID %d", len(after), after[0].UID)
	}
	last := after[len(after)-1]
	if last.UID != self.Dest[0] || last.BlobID != moved.BlobID || last.EmailID != moved.EmailID || !last.Flags.Equal(moved.Flags) {
		t.Fatalf("moved message %+v, was %+v", last, moved)
	}
	cs = must[*store.ChangeSet](t)(s.Changes(ctx, a.ID, inbox.ID, self.DestModSeq-1))
	if !slices.Equal(cs.Vanished.UIDs(), []mail.UID{moved.UID}) || len(cs.Changed) != 1 || cs.Changed[0].UID != self.Dest[0] {
		t.Fatalf("changes of a move into the same mailbox: %+v", cs)
	}
	empty := must[*store.CopyResult](t)(s.Copy(ctx, a.ID, inbox.ID, mail.NewUIDSet(9999), arch.ID))
	if len(empty.Dest) != 0 {
		t.Fatal("copy of missing UIDs copied something")
	}
	checkClean(t, s)
}

func testMessages(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	res := appendMsgs(t, s, a.ID, inbox.ID, 1200)
	uids := res.UIDs
	// Sparse set across chunk boundaries.
	var want []mail.UID
	for i := 0; i < len(uids); i += 7 {
		want = append(want, uids[i])
	}
	want = append(want, uids[len(uids)-1])
	set := mail.NewUIDSet(want...)
	var got []mail.UID
	for _, m := range list(t, s, a.ID, inbox.ID, set, store.ListOptions{}) {
		got = append(got, m.UID)
	}
	if !slices.Equal(got, set.UIDs()) {
		t.Fatalf("sparse listing: got %d uids, want %d", len(got), set.Len())
	}
	if n := len(list(t, s, a.ID, inbox.ID, all, store.ListOptions{})); n != 1200 {
		t.Fatalf("full listing: %d", n)
	}
	// Early stop.
	n := 0
	for _, err := range s.Messages(ctx, a.ID, inbox.ID, all, store.ListOptions{}) {
		ok(t, err)
		if n++; n == 10 {
			break
		}
	}
	r := must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{
		UIDs: mail.NewUIDSet(uids[5], uids[1100]), Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagSeen}}))
	changed := list(t, s, a.ID, inbox.ID, all, store.ListOptions{ChangedSince: r.ModSeq - 1})
	if len(changed) != 2 || changed[0].UID != uids[5] || changed[1].UID != uids[1100] {
		t.Fatalf("changedsince: %d", len(changed))
	}
	u, modseq, err := s.UIDs(ctx, a.ID, inbox.ID)
	ok(t, err)
	if u.Len() != 1200 || len(u) != 1 || modseq != r.ModSeq {
		t.Fatalf("UIDs: %d in %d ranges, modseq %d", u.Len(), len(u), modseq)
	}
}

func testDeliver(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	b, _ := account(t, s, "b@example.org")
	body := stage(t, s, Msg("hello", "to both"))
	res, err := s.Deliver(ctx, body, []store.DeliveryTarget{
		{Account: a.ID},
		{Account: b.ID, Mailbox: "Nonexistent", Flags: mail.Flags{mail.FlagFlagged}},
		{Account: 99999},
	})
	ok(t, err)
	if res[0].Err != nil || res[0].Mailbox != inbox.ID || len(res[0].UIDs) != 1 {
		t.Fatalf("delivery to a: %+v", res[0])
	}
	if res[1].Err != nil {
		t.Fatalf("delivery to b: %v", res[1].Err)
	}
	binbox := must[*store.Mailbox](t)(s.Mailbox(ctx, b.ID, "INBOX"))
	if res[1].Mailbox != binbox.ID {
		t.Fatal("missing mailbox did not fall back to INBOX")
	}
	if !errors.Is(res[2].Err, store.ErrNotFound) {
		t.Fatalf("delivery to a missing account: %v", res[2].Err)
	}
	junk := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "Junk"))
	res, err = s.Deliver(ctx, body, []store.DeliveryTarget{{Account: a.ID, Mailbox: "Junk"}})
	ok(t, err)
	if res[0].Mailbox != junk.ID {
		t.Fatal("delivery to a named mailbox went elsewhere")
	}
	m := list(t, s, b.ID, binbox.ID, all, store.ListOptions{})
	if len(m) != 1 || !m[0].Flags.Has(mail.FlagFlagged) {
		t.Fatalf("b's inbox: %+v", m)
	}
	// One delivery stores its body once, shared by every target.
	ma := list(t, s, a.ID, inbox.ID, all, store.ListOptions{})
	if len(ma) != 1 || ma[0].BlobID != m[0].BlobID {
		t.Fatalf("targets of one delivery do not share the body: %q vs %q", ma[0].BlobID, m[0].BlobID)
	}
	checkClean(t, s)
}

// testDeliverAll: the targets of DeliverAll succeed or fail together; a
// failure stores nothing and publishes nothing, for a small body and for
// one large enough to be kept apart from the metadata.
func testDeliverAll(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	b, binbox := account(t, s, "b@example.org")
	sub := s.Subscribe(a.ID)
	defer sub.Close()
	body := stage(t, s, Msg("hello", "to all or none"))
	res, err := s.DeliverAll(ctx, body, []store.DeliveryTarget{{Account: a.ID}, {Account: 99999}, {Account: b.ID}})
	ok(t, err)
	if !errors.Is(res[1].Err, store.ErrNotFound) {
		t.Fatalf("delivery to a missing account: %v", res[1].Err)
	}
	for _, i := range []int{0, 2} {
		if !errors.Is(res[i].Err, store.ErrNotDelivered) || len(res[i].UIDs) != 0 {
			t.Fatalf("target %d after another failed: %+v", i, res[i])
		}
	}
	if m := list(t, s, a.ID, inbox.ID, all, store.ListOptions{}); len(m) != 0 {
		t.Fatalf("a's inbox after a failed DeliverAll: %d messages", len(m))
	}
	if m := list(t, s, b.ID, binbox.ID, all, store.ListOptions{}); len(m) != 0 {
		t.Fatalf("b's inbox after a failed DeliverAll: %d messages", len(m))
	}
	if mb := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX")); mb.UIDNext != inbox.UIDNext || mb.HighestModSeq != inbox.HighestModSeq {
		t.Fatalf("a's inbox changed: UIDNEXT %d, HIGHESTMODSEQ %d", mb.UIDNext, mb.HighestModSeq)
	}
	// A flag that cannot be stored fails its target before any write.
	res, err = s.DeliverAll(ctx, body, []store.DeliveryTarget{{Account: a.ID}, {Account: b.ID, Flags: []string{"\\Recent"}}})
	ok(t, err)
	if res[1].Err == nil || !errors.Is(res[0].Err, store.ErrNotDelivered) {
		t.Fatalf("DeliverAll with a bad flag: %v, %v", res[0].Err, res[1].Err)
	}
	large := stage(t, s, Msg("large", strings.Repeat("a line of a large body\r\n", 20000)))
	res, err = s.DeliverAll(ctx, large, []store.DeliveryTarget{{Account: a.ID}, {Account: 99999}})
	ok(t, err)
	if !errors.Is(res[0].Err, store.ErrNotDelivered) {
		t.Fatalf("large body, target after another failed: %v", res[0].Err)
	}
	if m := list(t, s, a.ID, inbox.ID, all, store.ListOptions{}); len(m) != 0 {
		t.Fatalf("a's inbox after failed DeliverAlls: %d messages", len(m))
	}
	select {
	case <-sub.C():
		if evs := sub.Drain(); len(evs) > 0 {
			t.Fatalf("events from a failed DeliverAll: %+v", evs)
		}
	default:
	}
	checkClean(t, s)

	res, err = s.DeliverAll(ctx, body, []store.DeliveryTarget{{Account: a.ID}, {Account: b.ID}})
	ok(t, err)
	if res[0].Err != nil || res[1].Err != nil || len(res[0].UIDs) != 1 || len(res[1].UIDs) != 1 {
		t.Fatalf("DeliverAll to two accounts: %+v", res)
	}
	// The large body that failed before is delivered whole now.
	res, err = s.DeliverAll(ctx, large, []store.DeliveryTarget{{Account: a.ID}})
	ok(t, err)
	if res[0].Err != nil {
		t.Fatalf("DeliverAll of the large body: %v", res[0].Err)
	}
	if m := list(t, s, a.ID, inbox.ID, mail.NewUIDSet(res[0].UIDs...), store.ListOptions{}); len(m) != 1 || !strings.Contains(readBody(t, s, m[0].BlobID), "a line of a large body") {
		t.Fatal("the large body after a failed DeliverAll is not readable")
	}
	if m := list(t, s, b.ID, binbox.ID, all, store.ListOptions{}); len(m) != 1 {
		t.Fatalf("b's inbox: %d messages", len(m))
	}
	checkClean(t, s)
}

func waitEvent(t *testing.T, sub store.Subscription, match func(store.Event) bool) store.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-sub.C():
			for _, ev := range sub.Drain() {
				if match(ev) {
					return ev
				}
			}
		case <-deadline:
			t.Fatal("event did not arrive")
		}
	}
}

func testEvents(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	b, _ := account(t, s, "b@example.org")
	sub := s.Subscribe(a.ID)
	defer sub.Close()
	subB := s.Subscribe(b.ID)
	defer subB.Close()
	res := must[*store.AppendResult](t)(s.Append(store.WithOrigin(ctx, 42), a.ID, inbox.ID,
		[]store.NewMessage{{Body: stage(t, s, Msg("ev", "x"))}}))
	ev := waitEvent(t, sub, func(ev store.Event) bool { return ev.Kind == store.EventMessages })
	if ev.Mailbox != inbox.ID || ev.ModSeq != res.ModSeq || ev.Origin != 42 {
		t.Fatalf("event %+v", ev)
	}
	// The committed state is visible when the event arrives.
	if st := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID)); st.HighestModSeq < ev.ModSeq {
		t.Fatal("event arrived before its commit was visible")
	}
	must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "New", nil))
	waitEvent(t, sub, func(ev store.Event) bool { return ev.Kind == store.EventMailboxCreated && ev.Name == "New" })
	ok(t, s.RenameMailbox(ctx, a.ID, "New", "Newer"))
	waitEvent(t, sub, func(ev store.Event) bool {
		return ev.Kind == store.EventMailboxRenamed && ev.Name == "Newer" && ev.OldName == "New"
	})
	ok(t, s.SetPassword(ctx, a.ID, "x"))
	waitEvent(t, sub, func(ev store.Event) bool { return ev.Kind == store.EventPassword })
	ok(t, s.DeleteAccount(ctx, a.ID))
	waitEvent(t, sub, func(ev store.Event) bool { return ev.Kind == store.EventAccountDeleted })
	if evs := subB.Drain(); len(evs) != 0 {
		t.Fatalf("other account got events: %+v", evs)
	}
}

func testIsolation(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inboxA := account(t, s, "a@example.org")
	b, _ := account(t, s, "b@example.org")
	res := appendMsgs(t, s, a.ID, inboxA.ID, 2)
	uids := mail.NewUIDSet(res.UIDs...)
	binbox := must[*store.Mailbox](t)(s.Mailbox(ctx, b.ID, "INBOX"))
	// Every call with b's account and a's mailbox must fail with ErrNotFound.
	_, err := s.MailboxByID(ctx, b.ID, inboxA.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Status(ctx, b.ID, inboxA.ID)
	wantErr(t, err, store.ErrNotFound)
	_, _, err = s.UIDs(ctx, b.ID, inboxA.ID)
	wantErr(t, err, store.ErrNotFound)
	for _, err := range s.Messages(ctx, b.ID, inboxA.ID, uids, store.ListOptions{}) {
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = s.Changes(ctx, b.ID, inboxA.ID, 0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.StoreFlags(ctx, b.ID, inboxA.ID, store.StoreFlagsRequest{UIDs: uids, Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagSeen}})
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Expunge(ctx, b.ID, inboxA.ID, nil, false)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Copy(ctx, b.ID, inboxA.ID, uids, binbox.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Move(ctx, b.ID, binbox.ID, uids, inboxA.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Copy(ctx, a.ID, inboxA.ID, uids, binbox.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.Append(ctx, b.ID, inboxA.ID, []store.NewMessage{{Body: stage(t, s, Msg("x", "y"))}})
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteMailbox(ctx, b.ID, inboxA.ID), store.ErrNotFound)
	wantErr(t, s.SetSpecialUse(ctx, b.ID, inboxA.ID, nil), store.ErrNotFound)
	_, err = s.ClaimRecent(ctx, b.ID, inboxA.ID, mail.MaxUID)
	wantErr(t, err, store.ErrNotFound)
	// a's mail is untouched.
	if st := must[*store.Status](t)(s.Status(ctx, a.ID, inboxA.ID)); st.Messages != 2 || st.Unseen != 2 {
		t.Fatalf("a's inbox changed: %+v", st)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	const workers, each = 16, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	var uids []mail.UID
	modseqs := map[mail.ModSeq]int{}
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				b, err := s.Stage(ctx, stringsReader(Msg(fmt.Sprintf("w%d-%d", w, i), "x")), 0)
				if err != nil {
					errs <- err
					return
				}
				res, err := s.Deliver(ctx, b, []store.DeliveryTarget{{Account: a.ID}})
				b.Discard()
				if err == nil {
					err = res[0].Err
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				uids = append(uids, res[0].UIDs...)
				modseqs[res[0].ModSeq]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(uids)
	if len(slices.Compact(slices.Clone(uids))) != workers*each {
		t.Fatal("duplicate UIDs handed out")
	}
	for ms, n := range modseqs {
		if n != 1 {
			t.Fatalf("MODSEQ %d given to %d separate appends", ms, n)
		}
	}
	st := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID))
	if st.Messages != workers*each || st.UIDNext != uids[len(uids)-1]+1 {
		t.Fatalf("status %+v", st)
	}
	checkClean(t, s)
}

func testDurability(t *testing.T, h Harness) {
	s := h.New(t)
	a, inbox := account(t, s, "a@example.org")
	res := appendMsgs(t, s, a.ID, inbox.ID, 3, mail.FlagSeen)
	must[*store.ExpungeResult](t)(s.Expunge(ctx, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs[0]), false))
	s = h.Reopen(t, s)
	defer s.Close()
	st := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID))
	if st.Messages != 2 || st.UIDNext != res.UIDs[2]+1 {
		t.Fatalf("after reopen: %+v", st)
	}
	cs := must[*store.ChangeSet](t)(s.Changes(ctx, a.ID, inbox.ID, res.ModSeq))
	if !slices.Equal(cs.Vanished.UIDs(), res.UIDs[:1]) {
		t.Fatalf("tombstones after reopen: %v", cs.Vanished)
	}
	checkClean(t, s)
}

func testUIDsNeverReused(t *testing.T, h Harness) {
	s := h.New(t)
	a, inbox := account(t, s, "a@example.org")
	res := appendMsgs(t, s, a.ID, inbox.ID, 2)
	must[*store.ExpungeResult](t)(s.Expunge(ctx, a.ID, inbox.ID, nil, false))
	s = h.Reopen(t, s)
	defer s.Close()
	res2 := appendMsgs(t, s, a.ID, inbox.ID, 1)
	if res2.UIDs[0] <= res.UIDs[1] {
		t.Fatalf("UID %d reused after expunging up to %d", res2.UIDs[0], res.UIDs[1])
	}
	if res2.ModSeq <= res.ModSeq {
		t.Fatal("MODSEQ went backwards")
	}
}

func testClaimRecent(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	res := appendMsgs(t, s, a.ID, inbox.ID, 2)
	// A session that has seen only the first message claims only it.
	first := must[mail.UID](t)(s.ClaimRecent(ctx, a.ID, inbox.ID, res.UIDs[0]+1))
	if first != res.UIDs[0] {
		t.Fatalf("first recent %d, want %d", first, res.UIDs[0])
	}
	// The next claimer gets the second; a claim beyond UIDNEXT stops there.
	next := must[mail.UID](t)(s.ClaimRecent(ctx, a.ID, inbox.ID, mail.MaxUID))
	if next != res.UIDs[1] {
		t.Fatalf("second claim %d, want %d", next, res.UIDs[1])
	}
	again := must[mail.UID](t)(s.ClaimRecent(ctx, a.ID, inbox.ID, mail.MaxUID))
	if again != res.UIDs[1]+1 {
		t.Fatalf("third claim %d: messages recent twice", again)
	}
	// A claim below the current first changes nothing.
	if low := must[mail.UID](t)(s.ClaimRecent(ctx, a.ID, inbox.ID, 1)); low != res.UIDs[1]+1 {
		t.Fatalf("low claim %d", low)
	}
	more := appendMsgs(t, s, a.ID, inbox.ID, 1)
	if got := must[mail.UID](t)(s.ClaimRecent(ctx, a.ID, inbox.ID, mail.MaxUID)); got != more.UIDs[0] {
		t.Fatalf("claim after a new message %d, want %d", got, more.UIDs[0])
	}
}

func testPOP3Views(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	res := appendMsgs(t, s, a.ID, inbox.ID, 4)
	v := must[*store.POP3View](t)(s.POP3View(ctx, a.ID, "laptop", inbox.ID))
	if !v.Created.IsZero() || !v.Hidden.IsEmpty() || v.UIDValidity != inbox.UIDValidity {
		t.Fatalf("new view %+v", v)
	}
	ok(t, s.HidePOP3(ctx, a.ID, "laptop", inbox.ID, mail.NewUIDSet(res.UIDs[0], res.UIDs[1])))
	ok(t, s.HidePOP3(ctx, a.ID, "laptop", inbox.ID, mail.NewUIDSet(res.UIDs[3])))
	ok(t, s.HidePOP3(ctx, a.ID, "", inbox.ID, mail.NewUIDSet(res.UIDs[2])))
	v = must[*store.POP3View](t)(s.POP3View(ctx, a.ID, "laptop", inbox.ID))
	if !slices.Equal(v.Hidden.UIDs(), []mail.UID{res.UIDs[0], res.UIDs[1], res.UIDs[3]}) || v.Created.IsZero() {
		t.Fatalf("laptop view %+v", v)
	}
	plain := must[*store.POP3View](t)(s.POP3View(ctx, a.ID, "", inbox.ID))
	if !slices.Equal(plain.Hidden.UIDs(), []mail.UID{res.UIDs[2]}) {
		t.Fatalf("plain view %+v", plain)
	}
	views := must[[]store.POP3View](t)(s.POP3Views(ctx, a.ID))
	if len(views) != 2 || views[0].Device != "" || views[1].Device != "laptop" {
		t.Fatalf("views %+v", views)
	}
	// Other accounts see nothing of it.
	b, binbox := account(t, s, "b@example.org")
	if v := must[*store.POP3View](t)(s.POP3View(ctx, b.ID, "laptop", binbox.ID)); !v.Hidden.IsEmpty() {
		t.Fatal("view leaked across accounts")
	}
	_, err := s.POP3View(ctx, b.ID, "laptop", inbox.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.HidePOP3(ctx, b.ID, "laptop", inbox.ID, mail.NewUIDSet(1)), store.ErrNotFound)
	ok(t, s.ForgetPOP3View(ctx, a.ID, "laptop"))
	wantErr(t, s.ForgetPOP3View(ctx, a.ID, "laptop"), store.ErrNotFound)
	if v := must[*store.POP3View](t)(s.POP3View(ctx, a.ID, "laptop", inbox.ID)); !v.Hidden.IsEmpty() {
		t.Fatal("forgotten view still hides messages")
	}
	// A view recorded under an old UIDVALIDITY starts afresh: rename INBOX
	// away and deliver again; INBOX keeps its UIDVALIDITY here, so instead
	// check a recreated mailbox.
	mb := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Other", nil))
	ok(t, s.HidePOP3(ctx, a.ID, "x", mb.ID, mail.NewUIDSet(1)))
	ok(t, s.DeleteMailbox(ctx, a.ID, mb.ID))
	mb2 := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Other", nil))
	if v := must[*store.POP3View](t)(s.POP3View(ctx, a.ID, "x", mb2.ID)); !v.Hidden.IsEmpty() {
		t.Fatal("view of a deleted mailbox carried over")
	}
}

func testMetadata(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	b, _ := account(t, s, "b@example.org")
	sub := s.Subscribe(a.ID)
	defer sub.Close()
	ok(t, s.SetMetadata(ctx, a.ID, 0, map[string][]byte{"/private/comment": []byte("server note")}, 0, 0))
	ok(t, s.SetMetadata(ctx, a.ID, inbox.ID, map[string][]byte{"/shared/comment": []byte("inbox"), "/private/x": {}}, 0, 0))
	waitEvent(t, sub, func(ev store.Event) bool { return ev.Kind == store.EventMetadata && ev.Mailbox == inbox.ID })
	srv := must[map[string][]byte](t)(s.Metadata(ctx, a.ID, 0))
	if string(srv["/private/comment"]) != "server note" || len(srv) != 1 {
		t.Fatalf("server metadata %v", srv)
	}
	mb := must[map[string][]byte](t)(s.Metadata(ctx, a.ID, inbox.ID))
	if string(mb["/shared/comment"]) != "inbox" || mb["/private/x"] == nil || len(mb) != 2 {
		t.Fatalf("mailbox metadata %v", mb)
	}
	if other := must[map[string][]byte](t)(s.Metadata(ctx, b.ID, 0)); len(other) != 0 {
		t.Fatal("metadata leaked across accounts")
	}
	_, err := s.Metadata(ctx, b.ID, inbox.ID)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.SetMetadata(ctx, b.ID, inbox.ID, map[string][]byte{"/private/x": []byte("y")}, 0, 0), store.ErrNotFound)
	// Deleting an entry, and limits that leave everything unchanged.
	ok(t, s.SetMetadata(ctx, a.ID, inbox.ID, map[string][]byte{"/private/x": nil}, 0, 0))
	wantErr(t, s.SetMetadata(ctx, a.ID, inbox.ID, map[string][]byte{"/private/y": []byte("1"), "/private/z": []byte("2")}, 3, 0), store.ErrOverQuota)
	wantErr(t, s.SetMetadata(ctx, a.ID, inbox.ID, map[string][]byte{"/private/big": make([]byte, 100)}, 0, 50), store.ErrOverQuota)
	mb = must[map[string][]byte](t)(s.Metadata(ctx, a.ID, inbox.ID))
	if len(mb) != 1 {
		t.Fatalf("after refused changes: %v", mb)
	}
	// Entries follow renames and go with deleted mailboxes.
	box := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Box", nil))
	ok(t, s.SetMetadata(ctx, a.ID, box.ID, map[string][]byte{"/private/comment": []byte("c")}, 0, 0))
	ok(t, s.RenameMailbox(ctx, a.ID, "Box", "Box2"))
	if m := must[map[string][]byte](t)(s.Metadata(ctx, a.ID, box.ID)); string(m["/private/comment"]) != "c" {
		t.Fatal("metadata lost by rename")
	}
	ok(t, s.DeleteMailbox(ctx, a.ID, box.ID))
	box3 := must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Box2", nil))
	if m := must[map[string][]byte](t)(s.Metadata(ctx, a.ID, box3.ID)); len(m) != 0 {
		t.Fatal("metadata of a deleted mailbox came back")
	}
}

// testModSeqSteps: every message-changing operation takes exactly the next
// MODSEQ of the mailbox it changes (the Store documentation's promise).
func testModSeqSteps(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	arch := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "Archive"))
	highest := func(id store.MailboxID) mail.ModSeq {
		t.Helper()
		return must[*store.Status](t)(s.Status(ctx, a.ID, id)).HighestModSeq
	}
	step := func(what string, id store.MailboxID, before, got mail.ModSeq) {
		t.Helper()
		if got != before+1 || highest(id) != got {
			t.Fatalf("%s: MODSEQ %d after %d (HIGHESTMODSEQ %d), want %d", what, got, before, highest(id), before+1)
		}
	}
	m := highest(inbox.ID)
	res := appendMsgs(t, s, a.ID, inbox.ID, 3)
	step("append", inbox.ID, m, res.ModSeq)
	m = highest(inbox.ID)
	fl := must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{UIDs: mail.NewUIDSet(res.UIDs...), Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagDeleted}}))
	step("store", inbox.ID, m, fl.ModSeq)
	m, ma := highest(inbox.ID), highest(arch.ID)
	mv := must[*store.CopyResult](t)(s.Move(ctx, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs[0]), arch.ID))
	step("move, destination", arch.ID, ma, mv.DestModSeq)
	step("move, source", inbox.ID, m, mv.ExpungeModSeq)
	ma = highest(arch.ID)
	cp := must[*store.CopyResult](t)(s.Copy(ctx, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs[1]), arch.ID))
	step("copy", arch.ID, ma, cp.DestModSeq)
	m = highest(inbox.ID)
	ex := must[*store.ExpungeResult](t)(s.Expunge(ctx, a.ID, inbox.ID, nil, true))
	step("expunge", inbox.ID, m, ex.ModSeq)
}
