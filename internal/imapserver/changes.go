package imapserver

import (
	"context"
	"sync"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// changesCache shares store.Changes answers between the sessions of one
// mailbox. When a delivery reaches an account with many sessions (many
// devices, or many IDLE connections), every session wakes with the same
// question, "what changed since MODSEQ n?"; one store read answers all of
// them. An answer is shared only with sessions that need nothing newer
// than it covers (minModSeq: the MODSEQ of the events they saw), so a
// session never misses a change by taking an old answer. Entries live for
// a second; answers with many changes are not kept.
type changesCache struct {
	mu        sync.Mutex
	entries   map[changesKey]*changesEntry // guarded by mu
	lastSweep time.Time                    // guarded by mu
}

type changesKey struct {
	acct  store.AccountID
	mb    store.MailboxID
	since mail.ModSeq
}

type changesEntry struct {
	done    chan struct{} // closed when cs and err are set
	cs      *store.ChangeSet
	err     error
	created time.Time
}

const (
	changesTTL        = time.Second
	changesMaxEntries = 1024
	changesMaxShared  = 200 // changed messages; larger answers are not kept
)

// get returns the changes of a mailbox since a MODSEQ, covering at least
// minModSeq. The ChangeSet is shared: callers must not modify it.
func (c *changesCache) get(ctx context.Context, st store.Store, acct store.AccountID, mb store.MailboxID, since, minModSeq mail.ModSeq) (*store.ChangeSet, error) {
	key := changesKey{acct, mb, since}
	now := time.Now()
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[changesKey]*changesEntry{}
	}
	e := c.entries[key]
	if e != nil && now.Sub(e.created) < changesTTL {
		c.mu.Unlock()
		<-e.done
		if e.err == nil && e.cs.HighestModSeq >= minModSeq {
			return e.cs, nil
		}
		c.mu.Lock()
	}
	// Ask the store; sessions with the same question wait for this answer.
	e = &changesEntry{done: make(chan struct{}), created: now}
	if now.Sub(c.lastSweep) >= changesTTL || len(c.entries) >= changesMaxEntries {
		for k, old := range c.entries {
			if now.Sub(old.created) >= changesTTL {
				delete(c.entries, k)
			}
		}
		c.lastSweep = now
	}
	if len(c.entries) < changesMaxEntries {
		c.entries[key] = e
	}
	c.mu.Unlock()
	e.cs, e.err = st.Changes(ctx, acct, mb, since)
	if e.err == nil && len(e.cs.Changed) > changesMaxShared {
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
	}
	close(e.done)
	return e.cs, e.err
}
