package pop3server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// seenBatchDelay is how long the seen marker collects UIDs before it
// stores them: IMAP clients see a retrieved message as read within about
// this time plus one commit.
const seenBatchDelay = 5 * time.Millisecond

// seenMarker sets \Seen on retrieved messages from a goroutine of its own,
// in batches: while one StoreFlags commits, the UIDs of the RETRs that
// follow collect, so a pipelined download of n messages costs a few
// commits instead of n. IMAP sessions see each flag as soon as its batch
// commits (the store publishes the change).
type seenMarker struct {
	st     Store
	acct   store.AccountID
	mbox   store.MailboxID
	origin uint64
	log    *slog.Logger

	wake    chan struct{} // capacity 1: work is waiting
	closing chan struct{} // closed by close: stop collecting, store now
	done    chan struct{} // closed when the goroutine has ended

	mu      sync.Mutex
	pending mail.UIDSet // guarded by mu
	closed  bool        // guarded by mu
}

func newSeenMarker(st Store, acct store.AccountID, mbox store.MailboxID, origin uint64, log *slog.Logger) *seenMarker {
	m := &seenMarker{st: st, acct: acct, mbox: mbox, origin: origin, log: log,
		wake: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{})}
	go m.loop()
	return m
}

// add queues a UID. It never blocks.
func (m *seenMarker) add(uid mail.UID) {
	m.mu.Lock()
	m.pending = m.pending.Append(uid)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// close stores what is pending and waits for the goroutine to end. It may
// be called more than once.
func (m *seenMarker) close() {
	m.mu.Lock()
	first := !m.closed
	m.closed = true
	m.mu.Unlock()
	if first {
		close(m.closing)
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
	<-m.done
}

func (m *seenMarker) loop() {
	defer close(m.done)
	// Not the connection's context: flags of messages already sent are
	// stored even when the connection drops or the server drains.
	ctx := store.WithOrigin(context.Background(), m.origin)
	timer := time.NewTimer(0)
	<-timer.C
	for range m.wake {
		// Collect for a moment: a download in progress adds a UID every
		// fraction of a millisecond, and one commit for many of them
		// leaves the CPU to the download. QUIT (close) cuts it short.
		timer.Reset(seenBatchDelay)
		select {
		case <-timer.C:
		case <-m.closing:
			timer.Stop()
		}
		m.mu.Lock()
		uids, closed := m.pending, m.closed
		m.pending = nil
		m.mu.Unlock()
		if !uids.IsEmpty() {
			_, err := m.st.StoreFlags(ctx, m.acct, m.mbox, store.StoreFlagsRequest{
				UIDs: uids, Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagSeen},
			})
			if err != nil {
				m.log.Warn("marking retrieved messages seen failed", "uids", uids.String(), "err", err)
			}
		}
		if closed {
			m.mu.Lock()
			rest := m.pending
			m.mu.Unlock()
			if rest.IsEmpty() {
				return
			}
			// Added between the read and close: go round once more.
			select {
			case m.wake <- struct{}{}:
			default:
			}
		}
	}
}
