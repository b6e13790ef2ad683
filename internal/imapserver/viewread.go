package imapserver

import (
	"errors"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/imapsearch"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// Reads of the selected mailbox: from its mailbox cache when that is
// fit for the command (mbcache.go), otherwise from the store.

// summaryBatch is how many messages get their summaries in one go.
const summaryBatch = 256

// takeEvents returns, in order, the store events that have arrived and
// not been applied: those readFence set aside, then the subscription's.
func (s *session) takeEvents() []store.Event {
	q := s.queued
	s.queued = nil
	if s.sub != nil {
		more := s.sub.Drain()
		if len(q) == 0 {
			return more
		}
		q = append(q, more...)
	}
	return q
}

// readFence returns the MODSEQ of the selected mailbox that the reads of
// the current command must reflect: the view's, and that of every event
// of the mailbox the session has been sent. The store publishes a write's
// event before the write returns, so this covers the session's own
// writes and every write acknowledged to anyone before now. The events
// are set aside, unapplied, for the next sync point (takeEvents). ok is
// false when the session cannot tell (events were dropped, the mailbox
// was deleted): the command then reads the store.
func (s *session) readFence() (fence mail.ModSeq, ok bool) {
	v := s.sel
	if s.sub == nil || v.fresh {
		return 0, false
	}
	if more := s.sub.Drain(); len(more) > 0 {
		s.queued = append(s.queued, more...)
	}
	fence = max(v.modseq, v.wantModSeq)
	for _, ev := range s.queued {
		switch {
		case ev.Kind == store.EventOverflow:
			return 0, false
		case ev.Mailbox != v.mb.ID:
		case ev.Kind == store.EventMessages:
			fence = max(fence, ev.ModSeq)
		case ev.Kind == store.EventMailboxDeleted:
			return 0, false
		}
	}
	return fence, true
}

// snap returns a snapshot of the selected mailbox for a command that
// reads about reads of its messages, or nil when the command should read
// the store: the cache is off, the session cannot tell what it must
// reflect, or the mailbox is not cached and the command reads too little
// of it to be worth loading it.
func (s *session) snap(reads int) *mbSnap {
	v := s.sel
	if s.srv.caches == nil || v == nil {
		return nil
	}
	fence, ok := s.readFence()
	if !ok {
		return nil
	}
	load := v.n <= cacheSmall || reads*4 >= v.n
	c := s.srv.caches.get(s.user.Account, v.mb.ID, load)
	if c == nil {
		return nil
	}
	sn, err := c.at(s.ctx, fence, load)
	if err != nil {
		s.log.Debug("mailbox cache unavailable, reading the store", "err", err)
		return nil
	}
	return sn
}

// loadedSnap is snap for a command that reads too little to load the
// cache: the snapshot of the selected mailbox when it is loaded (brought
// up to date if needed), else nil.
func (s *session) loadedSnap() *mbSnap {
	v := s.sel
	if s.srv.caches == nil || v == nil {
		return nil
	}
	fence, ok := s.readFence()
	if !ok {
		return nil
	}
	c := s.srv.caches.get(s.user.Account, v.mb.ID, false)
	if c == nil {
		return nil
	}
	sn, err := c.at(s.ctx, fence, false)
	if err != nil {
		return nil
	}
	return sn
}

// unchangedFlags answers a flag change that would change nothing from the
// mailbox cache, without a store write: a client sets \Seen on mail it
// has read, and BODY[] sets it on every fetch. Each message of uids that
// the snapshot holds must already have the flags the change asks for;
// the result is then the one StoreFlags gives for it (every message with
// its flags and MODSEQ, nothing changed, no MODSEQ of its own). The
// snapshot reflects every write acknowledged before the command
// (readFence), so the answer is what the store would have said at that
// moment; a write still in flight is ordered after it, as it would be
// after a store call. ok is false when the cache cannot tell or a message
// would change: the caller asks the store.
func (s *session) unchangedFlags(uids mail.UIDSet, op store.FlagOp, flags mail.Flags) (*store.StoreFlagsResult, bool) {
	sn := s.loadedSnap()
	if sn == nil {
		return nil, false
	}
	flags = mail.NewFlags(flags...)
	res := &store.StoreFlagsResult{}
	same := true
	sn.msgs.each(uids, func(m *store.Message) bool {
		var nf mail.Flags
		switch op {
		case store.FlagsAdd:
			nf = m.Flags.Union(flags)
		case store.FlagsRemove:
			nf = m.Flags.Minus(flags)
		default:
			nf = flags
		}
		if !nf.Equal(m.Flags) {
			same = false
			return false
		}
		res.Updated = append(res.Updated, store.FlagUpdate{UID: m.UID, ModSeq: m.ModSeq, Flags: m.Flags})
		return true
	})
	if !same {
		return nil, false
	}
	return res, true
}

// cachedChanges answers a catch-up of the view from the mailbox cache,
// when it is loaded and its log reaches back to the view's MODSEQ.
func (s *session) cachedChanges(since, want mail.ModSeq) (*store.ChangeSet, bool) {
	v := s.sel
	c := s.srv.caches.get(s.user.Account, v.mb.ID, false)
	if c == nil {
		return nil, false
	}
	sn, err := c.at(s.ctx, max(since, want), false)
	if err != nil || sn == nil {
		return nil, false
	}
	return sn.changesSince(since)
}

// ownFlags takes the session's own flag change into the mailbox cache.
func (s *session) ownFlags(res *store.StoreFlagsResult) {
	if res.Changed.IsEmpty() {
		return
	}
	if c := s.srv.caches.get(s.user.Account, s.sel.mb.ID, false); c != nil {
		c.applyFlags(res.ModSeq, res.Updated)
	}
}

// ownExpunge takes the session's own expunge into the mailbox cache.
func (s *session) ownExpunge(res *store.ExpungeResult) {
	if res.UIDs.IsEmpty() {
		return
	}
	if c := s.srv.caches.get(s.user.Account, s.sel.mb.ID, false); c != nil {
		c.applyExpunge(res.ModSeq, res.UIDs)
	}
}

// claimRecent is store.ClaimRecent for a session that claims (upTo > 1),
// without the write when this server already claimed the messages below
// upTo: the store's first recent UID is then at least upTo, so none of
// the messages the session claims for is recent for it, whatever the
// exact value (RFC 3501 §2.3.2: only the first session to be told of a
// message sees it as \Recent). Several sessions of one mailbox learn of
// each new message; only the first now waits for the writer. The memory
// of the claims is kept with the mailbox's cache, when it has one (a
// session only in IDLE adds nothing). A read-only view (upTo 1) needs the
// exact value and always asks the store.
func (s *session) claimRecent(mb store.MailboxID, upTo mail.UID) (mail.UID, error) {
	c := s.srv.caches.get(s.user.Account, mb, false)
	if c != nil && upTo > 1 {
		if claimed := mail.UID(c.claimed.Load()); claimed >= upTo {
			return claimed, nil
		}
	}
	first, err := s.srv.opt.Store.ClaimRecent(s.ctx, s.user.Account, mb, upTo)
	if err == nil && c != nil && upTo > 1 {
		// The store's first recent UID is now at least both.
		now := uint32(max(first, upTo))
		for {
			old := c.claimed.Load()
			if old >= now || c.claimed.CompareAndSwap(old, now) {
				break
			}
		}
	}
	return first, err
}

// deletedUIDs returns the messages of the selected mailbox that have
// \Deleted, every one in the mailbox and not only those of the view, from
// its cache; ok is false when the cache cannot say. EXPUNGE and CLOSE
// hand them to store.Expunge (which expunges those of them that have
// \Deleted when it runs), so that the store need not read every message
// of the mailbox to find them. The snapshot reflects every change
// acknowledged before the command (readFence); one made meanwhile is as
// concurrent as it would be to a store read.
func (s *session) deletedUIDs() (mail.UIDSet, bool) {
	sn := s.snap(0)
	if sn == nil {
		return nil, false
	}
	del := mail.UIDSet{}
	sn.msgs.each(nil, func(m *store.Message) bool {
		for _, f := range m.Flags {
			if f == mail.FlagDeleted {
				del = del.Append(m.UID)
				break
			}
		}
		return true
	})
	return del, true
}

// messages yields the messages of the selected mailbox whose UID is in
// uids, in UID order, as store.Messages does, from the mailbox cache
// when it can. A yielded message is valid after the next one and must
// not be modified.
func (s *session) messages(uids mail.UIDSet, opt store.ListOptions) func(yield func(*store.Message, error) bool) {
	return func(yield func(*store.Message, error) bool) {
		reads := uids.Len()
		s.admit = s.srv.blobs.admits(reads)
		sn := s.snap(reads)
		if sn == nil {
			s.storeMessages(uids, opt)(yield)
			return
		}
		if !opt.Summary {
			sn.msgs.each(uids, func(m *store.Message) bool {
				if m.ModSeq <= opt.ChangedSince {
					return true
				}
				return yield(m, nil)
			})
			return
		}
		batch := make([]*store.Message, 0, summaryBatch)
		stopped := false
		flush := func() bool {
			out, ents, err := s.withSummaries(batch)
			batch = batch[:0]
			if err != nil {
				yield(nil, err)
				return false
			}
			v := s.sel
			defer func() { v.cur = nil }()
			for i := range out {
				v.cur = ents[i]
				if !yield(&out[i], nil) {
					return false
				}
			}
			return true
		}
		sn.msgs.each(uids, func(m *store.Message) bool {
			if m.ModSeq <= opt.ChangedSince {
				return true
			}
			batch = append(batch, m)
			if len(batch) == summaryBatch && !flush() {
				stopped = true
				return false
			}
			return true
		})
		if !stopped && len(batch) > 0 {
			flush()
		}
	}
}

// storeMessages reads messages from the store, keeping the summaries it
// reads in the server's cache when the command may add to it.
func (s *session) storeMessages(uids mail.UIDSet, opt store.ListOptions) func(yield func(*store.Message, error) bool) {
	v := s.sel
	it := s.srv.opt.Store.Messages(s.ctx, s.user.Account, v.mb.ID, uids, opt)
	if !opt.Summary {
		return it
	}
	return func(yield func(*store.Message, error) bool) {
		defer func() { v.cur = nil }()
		// A summary the store may still replace (store.SummaryRefresher)
		// is not kept.
		keep := s.admit && s.srv.summariesCurrent()
		for m, err := range it {
			v.cur = nil
			if err == nil {
				if keep {
					v.cur = s.srv.blobs.putSummary(m.BlobID, m.Summary)
				} else {
					v.cur = s.srv.blobs.lookup(m.BlobID)
				}
			}
			if !yield(m, err) {
				return
			}
		}
	}
}

// withSummaries returns copies of cached messages with their summaries,
// and their cache entries (nil where there is none): from the cache, and
// those it lacks read from the store at once. A message the store no
// longer has (expunged meanwhile) is left out.
func (s *session) withSummaries(batch []*store.Message) ([]store.Message, []*blobEntry, error) {
	out := make([]store.Message, 0, len(batch))
	ents := make([]*blobEntry, 0, len(batch))
	var missing mail.UIDSet
	for _, m := range batch {
		if e := s.srv.blobs.lookup(m.BlobID); e != nil {
			out = append(out, *m)
			out[len(out)-1].Summary = e.sum
			ents = append(ents, e)
		} else {
			missing = missing.Append(m.UID)
		}
	}
	if missing.IsEmpty() {
		return out, ents, nil
	}
	type read struct {
		sum *message.Summary
		e   *blobEntry
	}
	got := make(map[mail.UID]read, missing.Len())
	v := s.sel
	for m, err := range s.storeMessages(missing, store.ListOptions{Summary: true}) {
		if err != nil {
			return nil, nil, err
		}
		got[m.UID] = read{m.Summary, v.cur}
	}
	// Put them in UID order among the cached ones.
	all := make([]store.Message, 0, len(batch))
	allEnts := make([]*blobEntry, 0, len(batch))
	j := 0
	for _, m := range batch {
		if j < len(out) && out[j].UID == m.UID {
			all = append(all, out[j])
			allEnts = append(allEnts, ents[j])
			j++
			continue
		}
		if r, ok := got[m.UID]; ok {
			all = append(all, *m)
			all[len(all)-1].Summary = r.sum
			allEnts = append(allEnts, r.e)
		}
	}
	return all, allEnts, nil
}

// entryOf returns the cache entry of a message: that of the message
// messages last yielded, or looked up.
func (s *session) entryOf(m *store.Message) *blobEntry {
	if v := s.sel; v != nil && v.cur != nil && v.cur.blob == m.BlobID {
		return v.cur
	}
	return s.srv.blobs.lookup(m.BlobID)
}

// keysOf returns the SORT and THREAD keys of a message whose summary was
// loaded (nil otherwise), from the cache or computed once.
func (s *session) keysOf(m *store.Message) *imapsearch.Keys {
	if m.Summary == nil {
		return nil
	}
	e := s.entryOf(m)
	if e != nil {
		if k := e.keys.Load(); k != nil {
			return k
		}
	}
	keys := imapsearch.NewKeys(m.Summary)
	if e != nil && e.sum == m.Summary {
		s.srv.blobs.setKeys(e, keys)
	}
	return keys
}

// searchSource loads a message's summary, header and body for a search,
// on demand: the summary and header from the server's cache when they
// are there.
type searchSource struct {
	s    *session
	m    *store.Message
	body store.Body
}

var _ imapsearch.TextSource = (*searchSource)(nil)

func (src *searchSource) Summary() (*message.Summary, error) {
	if src.m.Summary != nil {
		return src.m.Summary, nil
	}
	if e := src.s.entryOf(src.m); e != nil {
		return e.sum, nil
	}
	for m, err := range src.s.storeMessages(mail.NewUIDSet(src.m.UID), store.ListOptions{Summary: true}) {
		if err != nil {
			return nil, err
		}
		return m.Summary, nil
	}
	return nil, store.ErrNotFound
}

func (src *searchSource) Body() (imap.MessageSource, error) {
	if src.body == nil {
		b, err := src.s.srv.opt.Store.OpenBody(src.s.ctx, src.m.BlobID)
		if err != nil {
			return nil, err
		}
		src.body = b
	}
	return src.body, nil
}

// HeaderText returns the message's top-level header prepared for
// search: from the cache, or read from its body (and kept when the
// message has a cache entry).
func (src *searchSource) HeaderText() (*imapsearch.HeaderText, error) {
	e := src.s.entryOf(src.m)
	if e != nil {
		if t := e.htext.Load(); t != nil {
			return t, nil
		}
	}
	sum, err := src.Summary()
	if err != nil {
		return nil, err
	}
	body, err := src.Body()
	if err != nil {
		return nil, err
	}
	h, err := imapsearch.ReadTopHeader(body, sum)
	if err != nil {
		return nil, err
	}
	t := imapsearch.NewHeaderText(h)
	if e != nil {
		src.s.srv.blobs.setHeaderText(e, t)
	}
	return t, nil
}

// maxBodyText is the most text of one message kept prepared for search;
// the text of a larger one is read from its body for each search.
const maxBodyText = 256 << 10

// BodyText returns the message's body prepared for search, from the cache
// or read from its body once; nil when the message has no cache entry or
// too much text: the search then reads the body as it goes.
func (src *searchSource) BodyText() (*imapsearch.BodyText, error) {
	e := src.s.entryOf(src.m)
	if e == nil {
		return nil, nil
	}
	if t := e.btext.Load(); t != nil {
		if t == noBodyText {
			return nil, nil
		}
		return t, nil
	}
	sum, err := src.Summary()
	if err != nil {
		return nil, err
	}
	body, err := src.Body()
	if err != nil {
		return nil, err
	}
	t, err := imapsearch.ReadBodyText(src.s.ctx, body, sum, maxBodyText)
	if errors.Is(err, imapsearch.ErrTextTooLarge) {
		// Remember that, so the next search streams at once.
		src.s.srv.blobs.setBodyText(e, noBodyText)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	src.s.srv.blobs.setBodyText(e, t)
	return t, nil
}

func (src *searchSource) close() {
	if src.body != nil {
		src.body.Close()
		src.body = nil
	}
}
