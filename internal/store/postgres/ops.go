package postgres

import (
	"sync"
	"sync/atomic"

	"github.com/postfach/postfach/internal/store"
)

// OpsOptions configure the safeguards the SQLite backend shares: the
// mailbox limit and the default quota. (Its scrub and disk reserve are
// about local files and the embedded database; PostgreSQL and the blob
// store look after their own space.)
type OpsOptions struct {
	// MaxMailboxes limits the mailboxes of one account, and its
	// subscriptions, to this many; 0 means no limit.
	MaxMailboxes int
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
}

// diskFull is called when a write failed for want of space. PostgreSQL
// keeps no reserve of ours to release; the error goes to the caller.
func (s *Store) diskFull() {}
