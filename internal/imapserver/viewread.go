package imapserver

import (
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

// messages yields the messages of the selected mailbox whose UID is in
// uids, in UID order, as store.Messages does, from the mailbox cache
// when it can. A yielded message is valid after the next one and must
// not be modified.
func (s *session) messages(uids mail.UIDSet, opt store.ListOptions) func(yield func(*store.Message, error) bool) {
	return func(yield func(*store.Message, error) bool) {
		sn := s.snap(uids.Len())
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
			out, err := s.withSummaries(batch)
			batch = batch[:0]
			if err != nil {
				yield(nil, err)
				return false
			}
			for i := range out {
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
// reads in the server's summary cache.
func (s *session) storeMessages(uids mail.UIDSet, opt store.ListOptions) func(yield func(*store.Message, error) bool) {
	it := s.srv.opt.Store.Messages(s.ctx, s.user.Account, s.sel.mb.ID, uids, opt)
	if !opt.Summary {
		return it
	}
	return func(yield func(*store.Message, error) bool) {
		for m, err := range it {
			if err == nil {
				s.srv.blobs.putSummary(m.BlobID, m.Summary)
			}
			if !yield(m, err) {
				return
			}
		}
	}
}

// withSummaries returns copies of cached messages with their summaries:
// from the summary cache, and those it lacks read from the store at once.
// A message the store no longer has (expunged meanwhile) is left out.
func (s *session) withSummaries(batch []*store.Message) ([]store.Message, error) {
	out := make([]store.Message, 0, len(batch))
	var missing mail.UIDSet
	for _, m := range batch {
		if sum := s.srv.blobs.summary(m.BlobID); sum != nil {
			out = append(out, *m)
			out[len(out)-1].Summary = sum
		} else {
			missing = missing.Append(m.UID)
		}
	}
	if missing.IsEmpty() {
		return out, nil
	}
	read := make(map[mail.UID]*message.Summary, missing.Len())
	for m, err := range s.storeMessages(missing, store.ListOptions{Summary: true}) {
		if err != nil {
			return nil, err
		}
		read[m.UID] = m.Summary
	}
	// Put them in UID order among the cached ones.
	all := make([]store.Message, 0, len(batch))
	j := 0
	for _, m := range batch {
		if j < len(out) && out[j].UID == m.UID {
			all = append(all, out[j])
			j++
			continue
		}
		if sum := read[m.UID]; sum != nil {
			all = append(all, *m)
			all[len(all)-1].Summary = sum
		}
	}
	return all, nil
}

// searchSource loads a message's summary, header and body for a search,
// on demand: the summary and header from the server's cache when they
// are there.
type searchSource struct {
	s    *session
	m    *store.Message
	body store.Body
}

var _ imapsearch.HeaderSource = (*searchSource)(nil)

func (src *searchSource) Summary() (*message.Summary, error) {
	if src.m.Summary != nil {
		return src.m.Summary, nil
	}
	if sum := src.s.srv.blobs.summary(src.m.BlobID); sum != nil {
		return sum, nil
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

// Header returns the message's top-level header, from the cache or read
// from its body once.
func (src *searchSource) Header() (message.Header, error) {
	blobs := src.s.srv.blobs
	if h := blobs.header(src.m.BlobID); h != nil {
		return *h, nil
	}
	sum, err := src.Summary()
	if err != nil {
		return message.Header{}, err
	}
	body, err := src.Body()
	if err != nil {
		return message.Header{}, err
	}
	h, err := imapsearch.ReadTopHeader(body, sum)
	if err != nil {
		return message.Header{}, err
	}
	blobs.putHeader(src.m.BlobID, &h)
	return h, nil
}

func (src *searchSource) close() {
	if src.body != nil {
		src.body.Close()
		src.body = nil
	}
}
