package storetest

import (
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// testQueue checks store.Queue: entries with per-recipient state, bodies
// readable by BlobID, claims that lease, updates, retry, delete, and that
// entries survive a reopen and a sweep.
func testQueue(t *testing.T, h Harness) {
	s := newStore(t, h)
	q, isQueue := s.(store.Queue)
	if !isQueue {
		t.Fatalf("%T does not implement store.Queue", s)
	}
	alice, _ := account(t, s, "alice@example.org")
	if es := must[[]store.QueueEntry](t)(q.QueueEntries(ctx)); len(es) != 0 {
		t.Fatalf("new store has queue entries %+v", es)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	raw := Msg("queued", strings.Repeat("line of the queued body\r\n", 4000)) // a file body
	b := stage(t, s, raw)
	id := must[int64](t)(q.Enqueue(ctx, &store.QueueEntry{Account: alice.ID, From: "alice@example.org", EightBit: true,
		Created: t0, NextAttempt: t0,
		Recipients: []store.QueueRecipient{{Address: "bob@remote.example"}, {Address: "carol@other.example"}}}, b))
	b.Discard()
	small := stage(t, s, Msg("small", "hi"))
	id2 := must[int64](t)(q.Enqueue(ctx, &store.QueueEntry{From: "", SMTPUTF8: true, Created: t0, NextAttempt: t0.Add(time.Hour),
		Recipients: []store.QueueRecipient{{Address: "dan@remote.example"}}}, small))
	small.Discard()
	if id == id2 || id == 0 || id2 == 0 {
		t.Fatalf("ids %d, %d", id, id2)
	}
	_, err := q.Enqueue(ctx, &store.QueueEntry{From: "x@example.org"}, stage(t, s, Msg("none", "x")))
	if err == nil {
		t.Fatal("an entry without recipients was queued")
	}

	check := func(e *store.QueueEntry) {
		t.Helper()
		if e.ID != id || e.Account != alice.ID || e.From != "alice@example.org" || !e.EightBit || e.SMTPUTF8 ||
			!e.Created.Equal(t0) || e.Size != int64(len(raw)) || len(e.Recipients) != 2 ||
			e.Recipients[0].Address != "bob@remote.example" || e.Recipients[1].Address != "carol@other.example" {
			t.Fatalf("entry %+v", e)
		}
		body := must[store.Body](t)(s.OpenBody(ctx, e.BlobID))
		defer body.Close()
		got := must[[]byte](t)(io.ReadAll(io.NewSectionReader(body, 0, body.Size())))
		if string(got) != raw {
			t.Fatalf("queued body differs (%d bytes, want %d)", len(got), len(raw))
		}
	}
	e := must[*store.QueueEntry](t)(q.QueueEntry(ctx, id))
	check(e)
	if e.Recipients[0].State != store.RcptPending || e.Recipients[1].State != store.RcptPending || e.Attempts != 0 {
		t.Fatalf("new entry's state %+v", e)
	}
	_, err = q.QueueEntry(ctx, 999999)
	wantErr(t, err, store.ErrNotFound)

	// Claims: only what is due and not leased, earliest first.
	if es := must[[]store.QueueEntry](t)(q.ClaimQueue(ctx, t0.Add(-time.Second), time.Minute, 10)); len(es) != 0 {
		t.Fatalf("claimed %d entries before they were due", len(es))
	}
	es := must[[]store.QueueEntry](t)(q.ClaimQueue(ctx, t0, time.Minute, 10))
	if len(es) != 1 {
		t.Fatalf("claimed %d entries at t0, want 1", len(es))
	}
	check(&es[0])
	if es := must[[]store.QueueEntry](t)(q.ClaimQueue(ctx, t0.Add(30*time.Second), time.Minute, 10)); len(es) != 0 {
		t.Fatalf("a leased entry was claimed again: %+v", es)
	}
	// The lease ends; then both are due (id first: it was due earlier).
	es = must[[]store.QueueEntry](t)(q.ClaimQueue(ctx, t0.Add(2*time.Hour), time.Minute, 10))
	if len(es) != 2 || es[0].ID != id || es[1].ID != id2 {
		t.Fatalf("claimed after the lease: %+v", es)
	}
	ok(t, q.ReleaseQueueLeases(ctx))
	if es := must[[]store.QueueEntry](t)(q.ClaimQueue(ctx, t0.Add(2*time.Hour), time.Minute, 1)); len(es) != 1 || es[0].ID != id {
		t.Fatalf("claim with limit 1 after releasing the leases: %+v", es)
	}

	// An update records per-recipient results and ends the lease.
	e = must[*store.QueueEntry](t)(q.QueueEntry(ctx, id))
	t1 := t0.Add(5 * time.Minute)
	e.Attempts, e.LastError, e.NextAttempt, e.DelayNotified = 1, "451 4.3.0 try later", t1, true
	e.Recipients[0] = store.QueueRecipient{Address: e.Recipients[0].Address, State: store.RcptDelivered, Status: "2.0.0",
		Diagnostic: "250 ok", Remote: "mx.remote.example", DSNDone: true, Updated: t0.Add(time.Second)}
	e.Recipients[1].Status, e.Recipients[1].Diagnostic = "4.3.0", "451 4.3.0 try later"
	ok(t, q.UpdateQueueEntry(ctx, e))
	got := must[*store.QueueEntry](t)(q.QueueEntry(ctx, id))
	if got.Attempts != 1 || got.LastError != "451 4.3.0 try later" || !got.NextAttempt.Equal(t1) || !got.DelayNotified ||
		!rcptEqual(got.Recipients[0], e.Recipients[0]) || got.Recipients[1].State != store.RcptPending || got.Recipients[1].Status != "4.3.0" {
		t.Fatalf("after update %+v, want %+v", got, e)
	}
	if es := must[[]store.QueueEntry](t)(q.ClaimQueue(ctx, t1, time.Minute, 10)); len(es) != 1 || es[0].ID != id {
		t.Fatalf("claim after the update (lease ended, due at t1): %+v", es)
	}

	// Retry makes an entry due now, leased or not.
	n := must[int](t)(q.RetryQueue(ctx, id2, t0))
	if n != 1 {
		t.Fatalf("retry changed %d entries", n)
	}
	if es := must[[]store.QueueEntry](t)(q.ClaimQueue(ctx, t0, time.Minute, 10)); len(es) != 1 || es[0].ID != id2 {
		t.Fatalf("claim after retry: %+v", es)
	}
	if n := must[int](t)(q.RetryQueue(ctx, 0, t0)); n != 2 {
		t.Fatalf("retry all changed %d entries, want 2", n)
	}
	_, err = q.RetryQueue(ctx, 999999, t0)
	wantErr(t, err, store.ErrNotFound)

	// Concurrent claims never hand out one entry twice.
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			es, err := q.ClaimQueue(ctx, t1, time.Hour, 10)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			for _, e := range es {
				seen[e.ID]++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 2 || seen[id] != 1 || seen[id2] != 1 {
		t.Fatalf("concurrent claims handed out %v", seen)
	}

	// Entries and their bodies survive a sweep (bodies are old enough to
	// go if nothing kept them) and a reopen.
	if h.Reopen != nil {
		s = h.Reopen(t, s)
		q = s.(store.Queue)
	}
	if sw, isSweeper := s.(Sweeper); isSweeper {
		ok(t, sw.Sweep(ctx, time.Now().Add(10*365*24*time.Hour)))
	}
	check(must[*store.QueueEntry](t)(q.QueueEntry(ctx, id)))
	if es := must[[]store.QueueEntry](t)(q.QueueEntries(ctx)); len(es) != 2 || es[0].ID != id || es[1].ID != id2 ||
		len(es[1].Recipients) != 1 || es[1].From != "" || !es[1].SMTPUTF8 {
		t.Fatalf("entries after reopen: %+v", es)
	}

	// Delete removes an entry; a lost update then says so.
	ok(t, q.DeleteQueueEntry(ctx, id))
	wantErr(t, q.DeleteQueueEntry(ctx, id), store.ErrNotFound)
	_, err = q.QueueEntry(ctx, id)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, q.UpdateQueueEntry(ctx, e), store.ErrNotFound)
	if es := must[[]store.QueueEntry](t)(q.QueueEntries(ctx)); len(es) != 1 || es[0].ID != id2 {
		t.Fatalf("entries after delete: %+v", es)
	}
}

// rcptEqual compares recipients, times by Equal.
func rcptEqual(a, b store.QueueRecipient) bool {
	eq := a.Updated.Equal(b.Updated)
	a.Updated, b.Updated = time.Time{}, time.Time{}
	return eq && a == b
}
