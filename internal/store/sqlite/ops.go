package sqlite

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/postfach/postfach/internal/store"
)

// Operational safeguards (issue 11): a limit on the mailboxes of an
// account (limits.go), damaged bodies refused one by one (damage.go) and
// found by a background scrub (scrub.go), and a disk reserve so that
// deleting works on a full disk (reserve.go).

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
	// ReserveSize is the size of the disk reserve kept in the data
	// directory and released when the disk fills, so that deleting always
	// works (reserve.go); 0 means none.
	ReserveSize int64
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

	reserveSize int64       // immutable after Open
	low         atomic.Bool // the reserve is released: new data is refused
	reserveMu   sync.Mutex  // serialises releasing and making the reserve
	lowSince    time.Time   // guarded by reserveMu
	lastLook    time.Time   // the last look at the free space; guarded by reserveMu
}

// startOps sets the safeguards up; Open calls it before the writer starts.
func (s *Store) startOps(opt OpsOptions) {
	s.ops.maxMailboxes = opt.MaxMailboxes
	s.ops.quota = opt.Quota
	s.startReserve(opt.ReserveSize)
	// SQLite's temporary files (statement journals of the savepoints every
	// write uses) go to memory, not to a disk that may be full.
	if _, err := s.wdb.Exec(`PRAGMA temp_store = MEMORY`); err != nil {
		s.log.Warn("cannot keep SQLite's temporary files in memory", "err", err)
	}
	if opt.ScrubRate > 0 {
		every := opt.ScrubInterval
		if every <= 0 {
			every = 24 * time.Hour
		}
		s.wg.Add(1)
		go s.scrubber(opt.ScrubRate, every)
	}
}
