package imapserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Mailbox caches.
//
// Several devices on one mailbox run the same reads: every SEARCH, SORT
// and THREAD goes over the whole mailbox, FETCH reads windows of it, and
// every commit wakes each session, which then asks what changed. A
// mailbox cache holds the metadata of one mailbox's messages (UID,
// MODSEQ, flags, dates, size, BlobID, EMAILID: store.Message without
// Summary) in UID order, for all the sessions of the server, and is
// brought up to date from store.Changes once per commit, by whichever
// session needs it first; the others use its answer. Summaries and
// headers are cached apart, by body (blobcache.go).
//
// Consistency. A cache is a snapshot of the mailbox at a MODSEQ (mbSnap),
// never modified: an update makes a new snapshot that shares the
// unchanged parts of the old (msglist.go), so readers need no lock. A
// session uses a snapshot only when it is at least as new as everything
// the session must reflect (readFence in viewread.go): its view's MODSEQ,
// the MODSEQ of every event it has been sent (its own writes included:
// the store publishes a write's event before the write returns), so a
// read after a write, or after another session's acknowledged write,
// sees it, as a read of the store would. When the session cannot tell
// (events were dropped), it reads the store. Like a store read, a
// snapshot may be newer than the session's view: the view decides which
// messages the client knows (and their sequence numbers); a message
// expunged in the store is missing from both.
//
// Changes. Each snapshot keeps the UIDs changed and vanished by each
// update since it was loaded (a bounded log), so a session catching up
// from a MODSEQ the log covers gets its ChangeSet from the snapshot
// (changesSince) without a store read; one Changes read per commit
// serves every session of the mailbox.
//
// Memory. A cached message costs about 225 bytes (100,000 messages: about
// 22 MB, BenchmarkMailboxCache100k; equal flag sets are shared). The
// caches of a server hold at most Options.CacheMessages messages together
// (default 500,000); the least recently used caches are dropped to stay
// below, a cache unused for cacheLinger is dropped, and a mailbox larger
// than the budget is not cached. A cache belongs to
// the mailbox, not to a session: sessions look it up for each command
// and hold nothing, so an idle session does not keep one alive; and it
// is loaded only by a command that reads much of the mailbox (or of a
// small one), not by SELECT or IDLE.

// Default limits of the mailbox caches.
const (
	defaultCacheMessages = 500_000
	defaultBlobCacheSize = 128 << 20
	// cacheLinger is how long a cache nobody used is kept.
	cacheLinger = 2 * time.Minute
	// cacheSmall is the size of mailbox that any command may load.
	cacheSmall = 2000
	// cacheLogMax bounds the change log of a snapshot: entries, and
	// UIDs in all of them.
	cacheLogMax     = 256
	cacheLogMaxUIDs = 8192
)

// errCacheTooBig: the mailbox is larger than the cache budget.
var errCacheTooBig = errors.New("mailbox too large for the cache")

type mbKey struct {
	acct store.AccountID
	mb   store.MailboxID
}

// mailboxCaches holds a server's mailbox caches.
type mailboxCaches struct {
	st        store.Store
	max       int                // messages in all loaded caches
	mu        sync.Mutex         // guards the fields below, and mbCache.held
	boxes     map[mbKey]*mbCache // guarded by mu
	held      int                // messages in loaded caches; guarded by mu
	lastSweep time.Time          // guarded by mu

	// Counters, for tests and metrics.
	loads, refreshes, shared atomic.Int64
}

func newMailboxCaches(st store.Store, max int) *mailboxCaches {
	return &mailboxCaches{st: st, max: max, boxes: map[mbKey]*mbCache{}}
}

// mbCache is the cache of one mailbox.
type mbCache struct {
	key   mbKey
	owner *mailboxCaches
	used  atomic.Int64 // time of last use, UnixNano
	snap  atomic.Pointer[mbSnap]
	// mu serialises loads and updates: a session that needs a newer
	// snapshot waits for the update in progress, then uses it if it is
	// new enough.
	mu sync.Mutex
	// noLoadUntil: the mailbox was too large to cache; guarded by mu.
	noLoadUntil time.Time
	// flagSets interns the flag sets of the cached messages (internFlags);
	// guarded by mu.
	flagSets map[string]mail.Flags
	// held is the size of snap counted in owner.held; guarded by
	// owner.mu, which is also held when snap is set.
	held int
	// claimed is a UID below which every message of the mailbox is known
	// to have been claimed \Recent by a session of this server (see
	// session.claimRecent); claims only grow.
	claimed atomic.Uint32
}

// mbSnap is an immutable snapshot of a mailbox.
type mbSnap struct {
	modseq  mail.ModSeq
	uidNext mail.UID
	msgs    *msgList
	// log lists the updates since logFrom, oldest first: the MODSEQ
	// each brought the snapshot to and the UIDs it changed and removed.
	// Only appended to (by the snapshot that follows) and read up to
	// its own length, so snapshots may share its array.
	logFrom mail.ModSeq
	log     []mbDelta
}

type mbDelta struct {
	to       mail.ModSeq
	changed  mail.UIDSet
	vanished mail.UIDSet
}

// get returns the cache of a mailbox, creating an empty one when create
// is set; nil otherwise.
func (cs *mailboxCaches) get(acct store.AccountID, mb store.MailboxID, create bool) *mbCache {
	if cs == nil {
		return nil
	}
	k := mbKey{acct, mb}
	now := time.Now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if now.Sub(cs.lastSweep) > cacheLinger/4 {
		cs.lastSweep = now
		for key, c := range cs.boxes {
			if now.UnixNano()-c.used.Load() > int64(cacheLinger) {
				cs.dropLocked(c)
				delete(cs.boxes, key)
			}
		}
	}
	c := cs.boxes[k]
	if c == nil && create {
		c = &mbCache{key: k, owner: cs}
		cs.boxes[k] = c
	}
	if c != nil {
		c.used.Store(now.UnixNano())
	}
	return c
}

// dropLocked forgets a cache's snapshot; cs.mu must be held.
func (cs *mailboxCaches) dropLocked(c *mbCache) {
	c.snap.Store(nil)
	cs.held -= c.held
	c.held = 0
}

// keep makes sn the cache's snapshot, within the budget: other caches
// are dropped, least recently used first, to make room. A cache that was
// swept meanwhile keeps nothing.
func (cs *mailboxCaches) keep(c *mbCache, sn *mbSnap) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.boxes[c.key] != c {
		cs.dropLocked(c)
		return
	}
	n := sn.msgs.len()
	cs.held += n - c.held
	c.held = n
	c.snap.Store(sn)
	for cs.held > cs.max {
		var victim *mbCache
		for _, o := range cs.boxes {
			if o != c && o.held > 0 && (victim == nil || o.used.Load() < victim.used.Load()) {
				victim = o
			}
		}
		if victim == nil {
			victim = c
		}
		cs.dropLocked(victim)
		if victim == c {
			return
		}
	}
}

// forget drops a cache (its mailbox is gone).
func (cs *mailboxCaches) forget(c *mbCache) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.dropLocked(c)
	if cs.boxes[c.key] == c {
		delete(cs.boxes, c.key)
	}
}

// current returns the cache's snapshot, or nil when it is not loaded.
func (c *mbCache) current() *mbSnap { return c.snap.Load() }

// at returns a snapshot at least at MODSEQ fence, updating the cache from
// the store when it is older (one update serves every session waiting
// for it), or loading it when it is not loaded and load is set. It
// returns nil, nil when the cache is not loaded and load is not set.
func (c *mbCache) at(ctx context.Context, fence mail.ModSeq, load bool) (*mbSnap, error) {
	if sn := c.snap.Load(); sn != nil && sn.modseq >= fence {
		return sn, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sn := c.snap.Load()
	switch {
	case sn != nil && sn.modseq >= fence:
		c.owner.shared.Add(1)
		return sn, nil
	case sn == nil && (!load || time.Now().Before(c.noLoadUntil)):
		return nil, nil
	case sn == nil:
		return c.load(ctx)
	}
	return c.refresh(ctx, sn)
}

// load reads the mailbox: its UIDs and the MODSEQ they reflect, the
// messages, and the changes since that MODSEQ, which the message reads
// (in chunks, not one snapshot) may have seen in part. c.mu must be held.
func (c *mbCache) load(ctx context.Context) (*mbSnap, error) {
	cs := c.owner
	for range 3 {
		uids, m0, err := cs.st.UIDs(ctx, c.key.acct, c.key.mb)
		if err != nil {
			return nil, c.failed(err)
		}
		if uids.Len() > cs.max {
			c.noLoadUntil = time.Now().Add(cacheLinger)
			return nil, errCacheTooBig
		}
		msgs := make([]store.Message, 0, uids.Len())
		for m, err := range cs.st.Messages(ctx, c.key.acct, c.key.mb, uids, store.ListOptions{}) {
			if err != nil {
				return nil, c.failed(err)
			}
			msgs = append(msgs, *m)
		}
		ch, err := cs.st.Changes(ctx, c.key.acct, c.key.mb, m0)
		if err != nil {
			return nil, c.failed(err)
		}
		if !ch.VanishedComplete {
			continue // tombstones were pruned meanwhile: read again
		}
		cs.loads.Add(1)
		c.internFlags(msgs)
		c.internFlags(ch.Changed)
		sn := &mbSnap{modseq: ch.HighestModSeq, uidNext: ch.UIDNext, logFrom: ch.HighestModSeq,
			msgs: newMsgList(msgs).apply(ch.Changed, ch.Vanished)}
		cs.keep(c, sn)
		return sn, nil
	}
	return nil, errors.New("mailbox cache: the store's tombstones keep moving")
}

// refresh brings the snapshot up to date with store.Changes. c.mu must be
// held.
func (c *mbCache) refresh(ctx context.Context, sn *mbSnap) (*mbSnap, error) {
	cs := c.owner
	ch, err := cs.st.Changes(ctx, c.key.acct, c.key.mb, sn.modseq)
	if err != nil {
		return nil, c.failed(err)
	}
	cs.refreshes.Add(1)
	if !ch.VanishedComplete {
		// Tombstones since the snapshot are gone: read it all again.
		return c.load(ctx)
	}
	if ch.HighestModSeq <= sn.modseq {
		return sn, nil
	}
	c.internFlags(ch.Changed)
	var changed mail.UIDSet
	for i := range ch.Changed {
		changed = changed.Append(ch.Changed[i].UID)
	}
	next := sn.next(ch.HighestModSeq, sn.msgs.apply(ch.Changed, ch.Vanished), changed, ch.Vanished)
	next.uidNext = max(sn.uidNext, ch.UIDNext)
	cs.keep(c, next)
	return next, nil
}

// maxFlagSets bounds the flag sets a cache interns.
const maxFlagSets = 1024

// internFlags makes messages with equal flags share one Flags slice (the
// empty set is nil): most messages of a mailbox have one of a few sets,
// and a cached message then costs no slice of its own (about 80 bytes of
// its 300). The messages are the cache's; c.mu must be held.
func (c *mbCache) internFlags(msgs []store.Message) {
	var key []byte
	for i := range msgs {
		fl := msgs[i].Flags
		if len(fl) == 0 {
			msgs[i].Flags = nil
			continue
		}
		key = key[:0]
		for _, f := range fl {
			key = append(key, f...)
			key = append(key, ' ')
		}
		if shared, ok := c.flagSets[string(key)]; ok {
			msgs[i].Flags = shared
			continue
		}
		if c.flagSets == nil {
			c.flagSets = map[string]mail.Flags{}
		}
		if len(c.flagSets) < maxFlagSets {
			c.flagSets[string(key)] = slices.Clip(fl)
		}
	}
}

// failed handles a store error of a load or update: a mailbox that is
// gone takes its cache with it.
func (c *mbCache) failed(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		c.owner.forget(c)
	}
	return fmt.Errorf("mailbox cache: %w", err)
}

// next returns the snapshot that follows sn at modseq, with msgs and a
// log entry for the change.
func (sn *mbSnap) next(modseq mail.ModSeq, msgs *msgList, changed, vanished mail.UIDSet) *mbSnap {
	log := append(sn.log, mbDelta{to: modseq, changed: changed, vanished: vanished})
	from := sn.logFrom
	uids := 0
	for i := range log {
		uids += len(log[i].changed) + len(log[i].vanished)
	}
	for len(log) > cacheLogMax || len(log) > 1 && uids > cacheLogMaxUIDs {
		uids -= len(log[0].changed) + len(log[0].vanished)
		from = log[0].to
		log = log[1:]
	}
	return &mbSnap{modseq: modseq, uidNext: sn.uidNext, msgs: msgs, logFrom: from, log: log}
}

// applyFlags takes a flag change of this server's own into the cache
// without a store read, when it directly follows the snapshot (every
// store write gets the next MODSEQ, so nothing else happened between);
// otherwise the next use reads the changes. updates are
// StoreFlagsResult.Updated; those with the change's MODSEQ changed.
func (c *mbCache) applyFlags(modseq mail.ModSeq, updates []store.FlagUpdate) {
	if modseq == 0 || !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	sn := c.snap.Load()
	if sn == nil || sn.modseq+1 != modseq {
		return
	}
	var changed []store.Message
	var set mail.UIDSet
	for _, u := range updates {
		if u.ModSeq != modseq {
			continue
		}
		m := sn.msgs.find(u.UID)
		if m == nil {
			return // not what the cache thinks: let the store say
		}
		nm := *m
		nm.Flags, nm.ModSeq = u.Flags, u.ModSeq
		changed = append(changed, nm)
		set = set.Append(u.UID)
	}
	c.internFlags(changed)
	c.owner.keep(c, sn.next(modseq, sn.msgs.apply(changed, nil), set, nil))
}

// applyExpunge takes an expunge of this server's own into the cache, like
// applyFlags.
func (c *mbCache) applyExpunge(modseq mail.ModSeq, uids mail.UIDSet) {
	if modseq == 0 || !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	sn := c.snap.Load()
	if sn == nil || sn.modseq+1 != modseq {
		return
	}
	c.owner.keep(c, sn.next(modseq, sn.msgs.apply(nil, uids), nil, slices.Clone(uids)))
}

// changesSince answers store.Changes(since) from the snapshot, when its
// log reaches back to since. The messages are copies the caller may
// keep; it must not modify them.
func (sn *mbSnap) changesSince(since mail.ModSeq) (*store.ChangeSet, bool) {
	if since < sn.logFrom || since > sn.modseq {
		return nil, false
	}
	cs := &store.ChangeSet{HighestModSeq: sn.modseq, UIDNext: sn.uidNext, VanishedComplete: true}
	var changed mail.UIDSet
	// The entries after since: the first one whose MODSEQ is above it.
	i, _ := slices.BinarySearchFunc(sn.log, since, func(d mbDelta, m mail.ModSeq) int {
		if d.to <= m {
			return -1
		}
		return 1
	})
	for _, d := range sn.log[i:] {
		changed = changed.Union(d.changed)
		cs.Vanished = cs.Vanished.Union(d.vanished)
	}
	sn.msgs.each(changed, func(m *store.Message) bool {
		if m.ModSeq > since {
			cs.Changed = append(cs.Changed, *m)
		}
		return true
	})
	return cs, true
}
