package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Sweeper is implemented by a store that purges expired mail on request
// (the retention purge): everything expunged before now minus the
// retention window goes for good.
type Sweeper interface {
	Sweep(ctx context.Context, now time.Time) error
}

// wantUsage checks an account's usage against the messages its mailboxes
// report (the sums of STATUS MESSAGES and SIZE) and, when want is not
// nil, against want's Bytes and Messages. It returns the usage.
func wantUsage(t *testing.T, s store.Store, acct store.AccountID, want *store.Usage) *store.Usage {
	t.Helper()
	u := must[*store.Usage](t)(s.Usage(ctx, acct))
	var bytes, msgs int64
	for _, mb := range must[[]store.Mailbox](t)(s.Mailboxes(ctx, acct)) {
		st := must[*store.Status](t)(s.Status(ctx, acct, mb.ID))
		bytes += st.Size
		msgs += int64(st.Messages)
	}
	if u.Bytes != bytes || u.Messages != msgs {
		t.Fatalf("usage %d bytes in %d messages; the mailboxes hold %d bytes in %d messages", u.Bytes, u.Messages, bytes, msgs)
	}
	if want != nil && (u.Bytes != want.Bytes || u.Messages != want.Messages) {
		t.Fatalf("usage %d bytes in %d messages, want %d in %d", u.Bytes, u.Messages, want.Bytes, want.Messages)
	}
	return u
}

// testQuotaUsage: the usage counter is exact after every operation that
// adds or removes mail, counts a copy once per copy, and leaves expunged
// mail kept for the retention window out.
func testQuotaUsage(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	b, _ := account(t, s, "b@example.org")
	arch := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "Archive"))

	u := wantUsage(t, s, a.ID, &store.Usage{})
	if u.Own != (store.Quota{Bytes: store.QuotaDefault, Messages: store.QuotaDefault}) {
		t.Fatalf("a new account has its own quota %+v", u.Own)
	}
	// Append (MULTIAPPEND).
	res := appendMsgs(t, s, a.ID, inbox.ID, 3)
	msgs := list(t, s, a.ID, inbox.ID, all, store.ListOptions{})
	size := msgs[0].Size
	var total int64
	for _, m := range msgs {
		total += m.Size
	}
	wantUsage(t, s, a.ID, &store.Usage{Bytes: total, Messages: 3})
	// Flags change nothing, but \Deleted shows in DeletedSize.
	must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{
		UIDs: mail.NewUIDSet(res.UIDs[0]), Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagDeleted, mail.FlagSeen}}))
	wantUsage(t, s, a.ID, &store.Usage{Bytes: total, Messages: 3})
	if st := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID)); st.DeletedSize != size || st.Deleted != 1 {
		t.Fatalf("after STORE \\Deleted: %d deleted, %d bytes; want 1, %d", st.Deleted, st.DeletedSize, size)
	}
	// A copy counts again, although it shares the body.
	must[*store.CopyResult](t)(s.Copy(ctx, a.ID, inbox.ID, all, arch.ID))
	wantUsage(t, s, a.ID, &store.Usage{Bytes: 2 * total, Messages: 6})
	if st := must[*store.Status](t)(s.Status(ctx, a.ID, arch.ID)); st.DeletedSize != size {
		t.Fatalf("the copy of a \\Deleted message: DeletedSize %d, want %d", st.DeletedSize, size)
	}
	// A move changes nothing, also into the same mailbox.
	mv := must[*store.CopyResult](t)(s.Move(ctx, a.ID, arch.ID, mail.NewUIDSet(1, 2), inbox.ID))
	wantUsage(t, s, a.ID, &store.Usage{Bytes: 2 * total, Messages: 6})
	must[*store.CopyResult](t)(s.Move(ctx, a.ID, inbox.ID, mail.NewUIDSet(mv.Dest[0]), inbox.ID))
	wantUsage(t, s, a.ID, &store.Usage{Bytes: 2 * total, Messages: 6})
	// Removing \Deleted takes it out of DeletedSize.
	must[*store.StoreFlagsResult](t)(s.StoreFlags(ctx, a.ID, inbox.ID, store.StoreFlagsRequest{
		UIDs: all, Op: store.FlagsRemove, Flags: mail.Flags{mail.FlagDeleted}}))
	for _, id := range []store.MailboxID{inbox.ID, arch.ID} {
		if st := must[*store.Status](t)(s.Status(ctx, a.ID, id)); st.DeletedSize != 0 {
			t.Fatalf("mailbox %d: DeletedSize %d after -FLAGS \\Deleted", id, st.DeletedSize)
		}
	}
	// Expunge frees at once; the tombstones kept for the retention window
	// do not count, and their purge changes nothing.
	ex := must[*store.ExpungeResult](t)(s.Expunge(ctx, a.ID, inbox.ID, mail.NewUIDSet(res.UIDs[1]), false))
	if ex.UIDs.IsEmpty() {
		t.Fatal("nothing expunged")
	}
	u = wantUsage(t, s, a.ID, nil)
	if u.Messages != 5 {
		t.Fatalf("after one expunge: %d messages, want 5", u.Messages)
	}
	// Delivery, to two accounts at once and with DeliverAll.
	body := stage(t, s, Msg("delivered", "to both"))
	dres, err := s.Deliver(ctx, body, []store.DeliveryTarget{{Account: a.ID}, {Account: b.ID}})
	ok(t, err)
	if dres[0].Err != nil || dres[1].Err != nil {
		t.Fatalf("deliver: %v, %v", dres[0].Err, dres[1].Err)
	}
	dres, err = s.DeliverAll(ctx, body, []store.DeliveryTarget{{Account: b.ID, Mailbox: "Archive"}})
	ok(t, err)
	if dres[0].Err != nil {
		t.Fatal(dres[0].Err)
	}
	u = wantUsage(t, s, a.ID, &store.Usage{Bytes: u.Bytes + body.Size(), Messages: u.Messages + 1})
	wantUsage(t, s, b.ID, &store.Usage{Bytes: 2 * body.Size(), Messages: 2})
	// A DeliverAll that fails for one target adds nothing for the others.
	dres, err = s.DeliverAll(ctx, body, []store.DeliveryTarget{{Account: b.ID}, {Account: 99999}})
	ok(t, err)
	if !errors.Is(dres[0].Err, store.ErrNotDelivered) {
		t.Fatalf("DeliverAll with a missing account: %v", dres[0].Err)
	}
	wantUsage(t, s, b.ID, &store.Usage{Bytes: 2 * body.Size(), Messages: 2})
	// Renaming INBOX moves its messages: nothing changes.
	ok(t, s.RenameMailbox(ctx, a.ID, "INBOX", "Old"))
	wantUsage(t, s, a.ID, u)
	appendMsgs(t, s, a.ID, inbox.ID, 1)
	// Deleting a mailbox frees what it held, also one kept as \Noselect
	// for its children.
	must[*store.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Archive/2020", nil))
	appendMsgs(t, s, a.ID, arch.ID, 1)
	ok(t, s.DeleteMailbox(ctx, a.ID, arch.ID))
	old := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "Old"))
	ok(t, s.DeleteMailbox(ctx, a.ID, old.ID))
	u = wantUsage(t, s, a.ID, nil)
	if u.Messages != 1 {
		t.Fatalf("after deleting Archive and Old: %d messages, want the one in the new INBOX", u.Messages)
	}
	// The retention purge.
	if sw, isSweeper := s.(Sweeper); isSweeper {
		ok(t, sw.Sweep(ctx, time.Now().Add(10*365*24*time.Hour)))
		wantUsage(t, s, a.ID, u)
	}
	// Durable like the mail it counts.
	if h.Reopen != nil {
		s = h.Reopen(t, s)
		t.Cleanup(func() { s.Close() })
		wantUsage(t, s, a.ID, u)
		wantUsage(t, s, b.ID, &store.Usage{Bytes: 2 * body.Size(), Messages: 2})
	}
	// Deleting an account removes its usage, and leaves the others'.
	ok(t, s.DeleteAccount(ctx, a.ID))
	if _, err := s.Usage(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("usage of a deleted account: %v", err)
	}
	wantUsage(t, s, b.ID, &store.Usage{Bytes: 2 * body.Size(), Messages: 2})
	checkClean(t, s)
}

// testQuotaEnforced: Append and Copy are refused when the account would
// be over its quota, and then change nothing; Move, expunge and delivery
// are not.
func testQuotaEnforced(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	other, _ := account(t, s, "other@example.org")
	arch := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "Archive"))
	raw := Msg("fixed size", "x")
	size := int64(len(raw))

	if err := s.SetQuota(ctx, 99999, store.Quota{Bytes: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetQuota of a missing account: %v", err)
	}
	if _, err := s.Usage(ctx, 99999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Usage of a missing account: %v", err)
	}
	// Room for exactly three messages.
	ok(t, s.SetQuota(ctx, a.ID, store.Quota{Bytes: 3 * size, Messages: store.QuotaDefault}))
	u := wantUsage(t, s, a.ID, &store.Usage{})
	if u.Limit.Bytes != 3*size || u.Own.Bytes != 3*size || u.Own.Messages != store.QuotaDefault {
		t.Fatalf("after SetQuota: %+v", u)
	}
	appendRaw := func(mb store.MailboxID, n int) error {
		msgs := make([]store.NewMessage, n)
		for i := range msgs {
			msgs[i] = store.NewMessage{Body: stage(t, s, raw)}
		}
		_, err := s.Append(ctx, a.ID, mb, msgs)
		return err
	}
	ok(t, appendRaw(inbox.ID, 2))
	// A MULTIAPPEND that would pass the limit stores none of its messages.
	st := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID))
	wantErr(t, appendRaw(inbox.ID, 2), store.ErrOverQuota)
	if after := must[*store.Status](t)(s.Status(ctx, a.ID, inbox.ID)); after.Messages != 2 || after.UIDNext != st.UIDNext ||
		after.HighestModSeq != st.HighestModSeq {
		t.Fatalf("a refused append changed the mailbox: %+v, was %+v", after, st)
	}
	wantUsage(t, s, a.ID, &store.Usage{Bytes: 2 * size, Messages: 2})
	// Up to the limit exactly is allowed.
	ok(t, appendRaw(inbox.ID, 1))
	wantUsage(t, s, a.ID, &store.Usage{Bytes: 3 * size, Messages: 3})
	wantErr(t, appendRaw(arch.ID, 1), store.ErrOverQuota)
	// COPY adds usage and is refused; MOVE does not and goes through.
	_, err := s.Copy(ctx, a.ID, inbox.ID, mail.NewUIDSet(1), arch.ID)
	wantErr(t, err, store.ErrOverQuota)
	if st := must[*store.Status](t)(s.Status(ctx, a.ID, arch.ID)); st.Messages != 0 {
		t.Fatalf("a refused copy left %d messages", st.Messages)
	}
	must[*store.CopyResult](t)(s.Move(ctx, a.ID, inbox.ID, mail.NewUIDSet(1), arch.ID))
	// A copy of nothing is no copy.
	must[*store.CopyResult](t)(s.Copy(ctx, a.ID, inbox.ID, mail.NewUIDSet(9999), arch.ID))
	// Delivery is not refused here (the delivery path decides at RCPT)
	// and may take the account over.
	res, err := s.Deliver(ctx, stage(t, s, raw), []store.DeliveryTarget{{Account: a.ID}, {Account: other.ID}})
	ok(t, err)
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("deliver over the quota: %v, %v", res[0].Err, res[1].Err)
	}
	u = wantUsage(t, s, a.ID, &store.Usage{Bytes: 4 * size, Messages: 4})
	if !u.Limit.Over(u.Bytes, u.Messages) {
		t.Fatalf("Over(%d, %d) is false for %+v", u.Bytes, u.Messages, u.Limit)
	}
	// Over the limit, any append is refused, and expunge frees room.
	wantErr(t, appendRaw(inbox.ID, 1), store.ErrOverQuota)
	must[*store.ExpungeResult](t)(s.Expunge(ctx, a.ID, arch.ID, nil, false))
	wantUsage(t, s, a.ID, &store.Usage{Bytes: 3 * size, Messages: 3})
	// The message limit, on its own.
	ok(t, s.SetQuota(ctx, a.ID, store.Quota{Bytes: 0, Messages: 3}))
	wantErr(t, appendRaw(inbox.ID, 1), store.ErrOverQuota)
	ok(t, s.SetQuota(ctx, a.ID, store.Quota{Bytes: 0, Messages: 4}))
	ok(t, appendRaw(inbox.ID, 1))
	// Back to the default (none in the suite's stores): anything goes.
	ok(t, s.SetQuota(ctx, a.ID, store.Quota{Bytes: store.QuotaDefault, Messages: store.QuotaDefault}))
	u = wantUsage(t, s, a.ID, nil)
	if u.Own != (store.Quota{Bytes: store.QuotaDefault, Messages: store.QuotaDefault}) {
		t.Fatalf("own quota after the reset: %+v", u.Own)
	}
	ok(t, appendRaw(inbox.ID, 2))
	if err := s.SetQuota(ctx, a.ID, store.Quota{Bytes: -2}); err == nil {
		t.Fatal("SetQuota took a negative limit")
	}
	// Another account's quota is its own.
	wantUsage(t, s, other.ID, &store.Usage{Bytes: size, Messages: 1})
	checkClean(t, s)
}

// testQuotaConcurrent: concurrent deliveries, appends, copies and
// expunges leave the usage exact.
func testQuotaConcurrent(t *testing.T, h Harness) {
	s := newStore(t, h)
	a, inbox := account(t, s, "a@example.org")
	b, _ := account(t, s, "b@example.org")
	arch := must[*store.Mailbox](t)(s.Mailbox(ctx, a.ID, "Archive"))
	const workers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, 4*workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				raw := Msg(fmt.Sprintf("w%d-%d", w, i), strings.Repeat("x", w*100+i))
				body, err := s.Stage(ctx, stringsReader(raw), 0)
				if err != nil {
					errs <- err
					return
				}
				res, err := s.Deliver(ctx, body, []store.DeliveryTarget{{Account: a.ID}, {Account: b.ID}})
				if err == nil {
					err = errors.Join(res[0].Err, res[1].Err)
				}
				if err == nil {
					_, err = s.Append(ctx, a.ID, arch.ID, []store.NewMessage{{Body: body}})
				}
				body.Discard()
				if err == nil && i%3 == 0 {
					_, err = s.Copy(ctx, a.ID, inbox.ID, mail.NewUIDSet(res[0].UIDs...), arch.ID)
				}
				if err == nil && i%5 == 0 {
					_, err = s.Expunge(ctx, a.ID, arch.ID, mail.UIDSet{{Lo: 1, Hi: mail.UID(w + 1)}}, false)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantUsage(t, s, a.ID, nil)
	u := wantUsage(t, s, b.ID, nil)
	if u.Messages != workers*each {
		t.Fatalf("b has %d messages, want %d", u.Messages, workers*each)
	}
	checkClean(t, s)
}
