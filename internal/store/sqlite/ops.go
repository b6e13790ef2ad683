package sqlite

import (
	"sync"
	"sync/atomic"
	"time"
)

// Operational safeguards (issue 11): a limit on the mailboxes of an
// account (limits.go), damaged bodies refused one by one (damage.go) and
// found by a background scrub (scrub.go).

// OpsOptions configure the safeguards; the zero value turns them off.
type OpsOptions struct {
	// MaxMailboxes limits the mailboxes of one account, and its
	// subscriptions, to this many; 0 means no limit.
	MaxMailboxes int
	// ScrubRate is how many bytes of bodies per second the scrub reads and
	// compares with their hashes; 0 turns the scrub off.
	ScrubRate int64
	// ScrubInterval is the pause between the end of one scrub pass and
	// the start of the next; the first starts after ScrubInterval or 10
	// minutes, whichever is shorter. 0 means 24 hours.
	ScrubInterval time.Duration
}

// opsState is the safeguards' state in a Store.
type opsState struct {
	maxMailboxes int // immutable after Open

	mu           sync.Mutex
	damaged      map[int64]string // body row id -> why it is damaged; guarded by mu
	damagedFound atomic.Int64
	scrubbed     atomic.Int64 // body bytes verified
	scrubPasses  atomic.Int64
}

// startOps sets the safeguards up; Open calls it before the writer starts.
func (s *Store) startOps(opt OpsOptions) {
	s.ops.maxMailboxes = opt.MaxMailboxes
	if opt.ScrubRate > 0 {
		every := opt.ScrubInterval
		if every <= 0 {
			every = 24 * time.Hour
		}
		s.wg.Add(1)
		go s.scrubber(opt.ScrubRate, every)
	}
}
