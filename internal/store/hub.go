package store

import "sync"

// Hub fans events out to subscriptions. Backends embed one and call Publish
// after each commit. Publish never blocks: each subscription queues events
// and signals its channel.
type Hub struct {
	mu   sync.Mutex
	subs map[AccountID]map[*hubSub]struct{} // guarded by mu
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{subs: map[AccountID]map[*hubSub]struct{}{}}
}

// Subscribe implements Store.Subscribe.
func (h *Hub) Subscribe(acct AccountID) Subscription {
	s := &hubSub{hub: h, acct: acct, c: make(chan struct{}, 1)}
	h.mu.Lock()
	m := h.subs[acct]
	if m == nil {
		m = map[*hubSub]struct{}{}
		h.subs[acct] = m
	}
	m[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Publish queues events for the subscribers of their accounts.
func (h *Hub) Publish(events ...Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range events {
		for s := range h.subs[ev.Account] {
			s.push(ev)
		}
	}
}

// Subscribers returns the number of subscriptions of an account.
func (h *Hub) Subscribers(acct AccountID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[acct])
}

// Notifier is implemented by subscriptions that can call a function when
// an event is queued, besides signalling C. A session that waits for its
// client without a goroutine of its own (IMAP IDLE with its buffers
// released) uses it to be woken. The function runs on the publisher's
// goroutine with the hub's lock held: it must be quick and must not call
// back into the hub or the store.
type Notifier interface {
	// SetNotify sets the function (nil removes it).
	SetNotify(f func())
}

var _ Notifier = (*hubSub)(nil)

// EventNotifier is implemented by subscriptions that can hand each event
// to a function as it is queued (the event stays queued for Drain). A
// session that must end at once on some events (EventAccountDeleted,
// EventDeviceRevoked of its device), whatever it is doing, uses it. The
// function runs on the publisher's goroutine with the hub's lock held: it
// must be quick and must not call back into the hub or the store.
type EventNotifier interface {
	// SetEventNotify sets the function (nil removes it).
	SetEventNotify(f func(Event))
}

var _ EventNotifier = (*hubSub)(nil)

// maxQueued bounds a subscription's queue. Events are hints (the package
// doc), so when a subscriber falls behind, the oldest EventMessages events of
// a mailbox can be coalesced without losing information. When the other
// kinds alone still fill half the queue, they are replaced by one
// EventOverflow: a subscriber that does not drain (a session waiting for
// its client's next command) then holds a bounded queue however many
// mailboxes the account's other sessions create or rename.
const maxQueued = 1024

type hubSub struct {
	hub  *Hub
	acct AccountID
	c    chan struct{}

	mu     sync.Mutex
	queue  []Event // guarded by mu
	closed bool    // guarded by mu
	notify func()  // guarded by mu
	// onEvent sees every event pushed; guarded by mu.
	onEvent func(Event)
}

func (s *hubSub) push(ev Event) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= maxQueued {
		s.queue = coalesce(s.queue)
		if len(s.queue) >= maxQueued/2 {
			s.queue = overflow(s.queue)
		}
	}
	s.queue = append(s.queue, ev)
	notify, onEvent := s.notify, s.onEvent
	s.mu.Unlock()
	if onEvent != nil {
		onEvent(ev)
	}
	select {
	case s.c <- struct{}{}:
	default:
	}
	if notify != nil {
		notify()
	}
}

// SetNotify implements Notifier.
func (s *hubSub) SetNotify(f func()) {
	s.mu.Lock()
	s.notify = f
	s.mu.Unlock()
}

// SetEventNotify implements EventNotifier.
func (s *hubSub) SetEventNotify(f func(Event)) {
	s.mu.Lock()
	s.onEvent = f
	s.mu.Unlock()
}

// coalesce keeps, for each mailbox, only the last EventMessages event (it
// carries the highest MODSEQ); other kinds are kept in order.
func coalesce(q []Event) []Event {
	last := map[MailboxID]int{}
	for i, ev := range q {
		if ev.Kind == EventMessages {
			last[ev.Mailbox] = i
		}
	}
	out := q[:0]
	for i, ev := range q {
		if ev.Kind == EventMessages && last[ev.Mailbox] != i {
			continue
		}
		out = append(out, ev)
	}
	return out
}

// overflow replaces a queue by one EventOverflow, keeping an
// EventAccountDeleted and the EventDeviceRevoked events (sessions must
// still end).
func overflow(q []Event) []Event {
	out := []Event{{Kind: EventOverflow}}
	deleted := false
	for _, ev := range q {
		switch {
		case ev.Kind == EventAccountDeleted && !deleted:
			deleted = true
			out = append(out, ev)
		case ev.Kind == EventDeviceRevoked:
			out = append(out, ev)
		}
	}
	return out
}

func (s *hubSub) C() <-chan struct{} { return s.c }

func (s *hubSub) Drain() []Event {
	s.mu.Lock()
	q := s.queue
	s.queue = nil
	s.mu.Unlock()
	return q
}

func (s *hubSub) Close() {
	s.mu.Lock()
	s.closed = true
	s.notify = nil
	s.onEvent = nil
	s.queue = nil
	s.mu.Unlock()
	s.hub.mu.Lock()
	if m := s.hub.subs[s.acct]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(s.hub.subs, s.acct)
		}
	}
	s.hub.mu.Unlock()
}
