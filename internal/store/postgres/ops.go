package postgres

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// OpsOptions configure the safeguards shared with the SQLite backend:
// the mailbox limit, the default quota and the scrub of bodies against
// their hashes (scrub.go). (Its disk reserve is about the embedded
// database's disk; PostgreSQL looks after its own space.)
type OpsOptions struct {
	// MaxMailboxes limits the mailboxes of one account, and its
	// subscriptions, to this many; 0 means no limit.
	MaxMailboxes int
	// ScrubRate is how many bytes of bodies per second the scrub reads and
	// compares with their hashes; 0 turns the scrub off.
	ScrubRate int64
	// ScrubInterval is the pause between the end of one scrub pass and
	// the start of the next; 0 means 24 hours.
	ScrubInterval time.Duration
	// Quota is the default quota of an account without its own
	// (store/quota.go); 0 in a field means no limit.
	Quota store.Quota
}

// opsState is the safeguards' state in a Store.
type opsState struct {
	maxMailboxes int         // immutable after Open
	quota        store.Quota // the default quota; immutable after Open

	mu           sync.Mutex
	damaged      map[int64]string // body row id -> why it is damaged; guarded by mu
	damagedFound atomic.Int64
	scrubbed     atomic.Int64 // body bytes verified
	scrubPasses  atomic.Int64
}

// diskFull is called when a write failed for want of space. PostgreSQL
// keeps no reserve of ours to release; the error goes to the caller.
func (s *Store) diskFull() {}

// startOps starts the scrub; Open calls it once the store works.
func (s *Store) startOps(opt OpsOptions) {
	if opt.ScrubRate > 0 {
		every := opt.ScrubInterval
		if every <= 0 {
			every = 24 * time.Hour
		}
		s.wg.Add(1)
		go s.scrubber(opt.ScrubRate, every)
	}
}
