package store

import (
	"testing"

	"github.com/postfach/postfach/internal/mail"
)

// TestHubQueueBounded: a subscriber that does not drain holds a bounded
// queue. Message events of a mailbox coalesce into the last; when other
// kinds fill the queue they become one EventOverflow, and an
// EventAccountDeleted survives.
func TestHubQueueBounded(t *testing.T) {
	h := NewHub()
	sub := h.Subscribe(1)
	other := h.Subscribe(2)
	for i := range 3 * maxQueued {
		h.Publish(Event{Account: 1, Kind: EventMessages, Mailbox: 7, ModSeq: 1000 + mail.ModSeq(i)})
	}
	q := sub.Drain()
	if len(q) > maxQueued || q[len(q)-1].ModSeq != 1000+mail.ModSeq(3*maxQueued-1) {
		t.Fatalf("message events: %d queued, last %+v", len(q), q[len(q)-1])
	}
	for _, ev := range q {
		if ev.Kind == EventOverflow {
			t.Fatal("message events alone overflowed")
		}
	}

	h.Publish(Event{Account: 1, Kind: EventMessages, Mailbox: 7, ModSeq: 5000})
	h.Publish(Event{Account: 1, Kind: EventAccountDeleted})
	for i := range 3 * maxQueued {
		h.Publish(Event{Account: 1, Kind: EventMailboxCreated, Mailbox: MailboxID(100 + i)})
	}
	q = sub.Drain()
	if len(q) > maxQueued {
		t.Fatalf("%d events queued, want at most %d", len(q), maxQueued)
	}
	if q[0].Kind != EventOverflow {
		t.Fatalf("first event %+v, want EventOverflow", q[0])
	}
	deleted := 0
	for _, ev := range q {
		if ev.Kind == EventAccountDeleted {
			deleted++
		}
	}
	if deleted != 1 {
		t.Fatalf("%d EventAccountDeleted kept, want 1", deleted)
	}
	if last := q[len(q)-1]; last.Kind != EventMailboxCreated || last.Mailbox != MailboxID(100+3*maxQueued-1) {
		t.Fatalf("newest event %+v lost", last)
	}
	if q := other.Drain(); len(q) != 0 {
		t.Fatalf("another account's subscriber got %d events", len(q))
	}
}

// TestEventNotifyAndOverflowKeepRevocations: the event hook sees every
// event as it is queued, and an overflow keeps the revocations, which end
// sessions.
func TestEventNotifyAndOverflowKeepRevocations(t *testing.T) {
	h := NewHub()
	sub := h.Subscribe(1)
	defer sub.Close()
	var seen []EventKind
	sub.(EventNotifier).SetEventNotify(func(ev Event) { seen = append(seen, ev.Kind) })
	h.Publish(Event{Account: 1, Kind: EventDeviceRevoked, Name: "phone"})
	for i := 0; i < 2*maxQueued; i++ {
		h.Publish(Event{Account: 1, Kind: EventMailboxCreated, Name: "x"})
	}
	if len(seen) != 2*maxQueued+1 || seen[0] != EventDeviceRevoked {
		t.Fatalf("hook saw %d events, first %v", len(seen), seen[0])
	}
	q := sub.Drain()
	found := false
	for _, ev := range q {
		found = found || ev.Kind == EventDeviceRevoked && ev.Name == "phone"
	}
	if !found || len(q) > maxQueued {
		t.Fatalf("after overflow: %d events, revocation kept: %v", len(q), found)
	}
}
