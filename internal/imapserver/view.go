package imapserver

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// selected is a session's view of its selected mailbox (RFC 9051 §5.1.2):
// the UIDs it has announced to the client, in order, so a message's
// sequence number is its position; and the MODSEQ of the store it has
// caught up to. UIDs are kept as ranges, so a large mailbox with few gaps
// costs a few bytes.
type selected struct {
	mb       store.Mailbox
	readOnly bool

	// uids are the messages the client knows. Messages expunged in the
	// store but not yet reported (expunged) are still in it: they keep
	// their sequence numbers until an EXPUNGE or VANISHED may be sent.
	uids mail.UIDSet
	n    int // uids.Len()
	// expunged are UIDs gone from the store and not yet reported.
	expunged mail.UIDSet
	// modseq is the HIGHESTMODSEQ the view has caught up to.
	modseq mail.ModSeq
	// uidHigh is the largest UID the view has seen (a UID above it is a
	// new message); uidNext is the UIDNEXT last reported.
	uidHigh mail.UID
	uidNext mail.UID
	// recent are the UIDs that are \Recent in this session (RFC 3501
	// only).
	recentUIDs mail.UIDSet
	// dirty reports an event for this mailbox beyond modseq; wantModSeq
	// is the highest MODSEQ such events announced.
	dirty      bool
	wantModSeq mail.ModSeq
	// fresh: the next catch-up must read the store itself, not a shared
	// answer (changesCache), because the event that made the view dirty
	// carried no MODSEQ to demand: the mailbox was deleted, or events
	// were dropped (store.EventOverflow).
	fresh bool
	// own are the flag changes this session made and already reported
	// (or, for .SILENT, must not report): a change with that MODSEQ to
	// one of those UIDs is not sent again as unsolicited FETCH.
	own []ownChange
	// contexts are the searches kept up to date (RFC 5267, context.go);
	// nil for nearly every session.
	contexts []*searchContext
	// expungeFirst: the next catch-up follows a MOVE into this mailbox
	// and reports its expunges before the EXISTS of the moved messages'
	// new UIDs (see catchUp).
	expungeFirst bool
	// keywords are the keywords the last FLAGS response listed (besides
	// the system flags); known holds every spelling already checked
	// against them, so a FETCH costs one map lookup per keyword.
	keywords mail.Flags
	known    map[string]struct{}
	// cur is the cache entry of the message the session's messages()
	// last yielded (viewread.go), nil when there is none.
	cur *blobEntry
}

// systemFlagList is the FLAGS response's list without keywords.
var systemFlagList = mail.Flags{mail.FlagAnswered, mail.FlagFlagged, mail.FlagDeleted, mail.FlagSeen, mail.FlagDraft}

// writeFlagList writes the FLAGS response and the PERMANENTFLAGS code of
// the selected mailbox: the system flags and the keywords announced so
// far; "\*" allows new keywords (RFC 9051 §7.1, §7.3.5), until there
// are maxKeywords of them. A read-only
// mailbox permits no changes: PERMANENTFLAGS () (RFC 3501 §6.3.2).
func (s *session) writeFlagList(v *selected) {
	e := s.enc
	e.Untagged().Atom("FLAGS").BeginList()
	for _, f := range systemFlagList {
		e.Atom(f)
	}
	for _, f := range v.keywords {
		e.Atom(f)
	}
	e.EndList().End()
	var b strings.Builder
	b.WriteString("PERMANENTFLAGS (")
	if !v.readOnly {
		for _, f := range systemFlagList {
			b.WriteString(f)
			b.WriteByte(' ')
		}
		for _, f := range v.keywords {
			b.WriteString(f)
			b.WriteByte(' ')
		}
		if len(v.keywords) < maxKeywords {
			b.WriteString(`\*`)
		}
	}
	b.WriteByte(')')
	text := "Flags permitted"
	if v.readOnly {
		text = "No permanent flags permitted"
	}
	e.Untagged().Atom(imap.OK).Code(b.String()).Text(text).End()
}

// announceKeywords tells the client of the keywords in fl it has not
// heard of, with FLAGS and PERMANENTFLAGS, before the response that uses
// them: RFC 3501 §7.2.6 and RFC 9051 §7.3.5 make the FLAGS response the
// list of flags applicable in the mailbox, which a client records, so a
// FETCH must not show a keyword before it. Keywords come from other
// sessions (a STORE, APPEND or COPY with a new keyword, seen in an
// update, a FETCH, a NOTIFY fetch or a QRESYNC catch-up) and from the
// session's own STORE.
func (s *session) announceKeywords(fl mail.Flags) {
	v := s.sel
	if v == nil {
		return
	}
	added := false
	for _, f := range fl {
		if len(f) > 0 && f[0] == '\\' {
			continue
		}
		if _, ok := v.known[f]; ok {
			continue
		}
		if v.known == nil {
			v.known = make(map[string]struct{})
		}
		v.known[f] = struct{}{}
		if !v.keywords.Has(f) {
			v.keywords = v.keywords.With(f)
			added = true
		}
	}
	if added {
		s.writeFlagList(v)
	}
}

type ownChange struct {
	modseq mail.ModSeq
	uids   mail.UIDSet
}

// need marks the view as behind the store up to modseq (after a write of
// this session that the client must hear about).
func (v *selected) need(modseq mail.ModSeq) {
	v.dirty = true
	v.wantModSeq = max(v.wantModSeq, modseq)
}

// isOwn reports whether a change was made and reported by this session.
func (v *selected) isOwn(m *store.Message) bool {
	for _, o := range v.own {
		if o.modseq == m.ModSeq && o.uids.Contains(m.UID) {
			return true
		}
	}
	return false
}

func (v *selected) addOwn(modseq mail.ModSeq, uids mail.UIDSet) {
	if modseq == 0 || uids.IsEmpty() {
		return
	}
	// Every store operation gets a MODSEQ larger than any before, so when
	// this write's MODSEQ follows the view's directly, nothing else changed
	// in between: the view is simply at that MODSEQ now, and its event
	// needs no store read to catch up with (unless search contexts must
	// see the change).
	if modseq == v.modseq+1 && !v.dirty && len(v.contexts) == 0 {
		v.modseq = modseq
		return
	}
	v.own = append(v.own, ownChange{modseq, uids})
}

// recent reports whether uid is \Recent in this session.
func (v *selected) recent(uid mail.UID) bool {
	return v.recentUIDs.Contains(uid)
}

// seqsToUIDs maps a normalised set of sequence numbers (as a UIDSet of
// numbers, all ≤ n) to the UIDs at those positions.
func (v *selected) seqsToUIDs(seqs mail.UIDSet) mail.UIDSet {
	var out mail.UIDSet
	i, base := 0, 0 // base: messages in v.uids[:i]
	for _, sr := range seqs {
		lo, hi := int(sr.Lo), int(sr.Hi)
		for lo <= hi && i < len(v.uids) {
			r := v.uids[i]
			rlen := int(r.Hi-r.Lo) + 1
			if lo > base+rlen {
				base += rlen
				i++
				continue
			}
			end := min(hi, base+rlen)
			out = append(out, mail.UIDRange{Lo: r.Lo + mail.UID(lo-base-1), Hi: r.Lo + mail.UID(end-base-1)})
			lo = end + 1
		}
	}
	return out
}

// seqOf returns the sequence number of uid, or 0.
func (v *selected) seqOf(uid mail.UID) uint32 {
	c := seqCursor{v: v}
	return c.seq(uid)
}

// uidAt returns the UID at sequence number seq (1-based), or 0.
func (v *selected) uidAt(seq int) mail.UID {
	base := 0
	for _, r := range v.uids {
		rlen := int(r.Hi-r.Lo) + 1
		if seq <= base+rlen {
			return r.Lo + mail.UID(seq-base-1)
		}
		base += rlen
	}
	return 0
}

// seqCursor finds sequence numbers for ascending UIDs in one pass.
type seqCursor struct {
	v    *selected
	i    int
	base int
}

// seq returns the sequence number of uid (which must not be below the
// previous call's), or 0 when uid is not in the view.
func (c *seqCursor) seq(uid mail.UID) uint32 {
	u := c.v.uids
	for c.i < len(u) && u[c.i].Hi < uid {
		c.base += int(u[c.i].Hi-u[c.i].Lo) + 1
		c.i++
	}
	if c.i < len(u) && u[c.i].Lo <= uid {
		return uint32(c.base + int(uid-u[c.i].Lo) + 1)
	}
	return 0
}

// errBadSeq answers sequence numbers beyond the mailbox (RFC 9051 §9
// seq-number: BAD, with CLIENTBUG as RFC 5530 suggests for client errors).
var errBadSeq = bad("CLIENTBUG", "Invalid message sequence number")

// resolve turns the sequence set of a command into UIDs of the view: by
// sequence number, or by UID for UID commands (UIDs not in the view are
// dropped, RFC 9051 §6.4.9). "$" is the saved SEARCHRES result.
func (s *session) resolve(set imap.SeqSet, uid bool) (mail.UIDSet, error) {
	v := s.sel
	var saved mail.UIDSet
	if set.Saved {
		saved = s.saved.Intersect(v.uids)
	}
	if uid {
		star := uint32(v.uids.Max())
		if star == 0 {
			star = uint32(max(v.uidNext, 1) - 1)
		}
		all := imap.SeqSet{Ranges: set.Ranges}.Resolve(star, nil)
		out := all.Intersect(v.uids)
		if set.Saved {
			out = out.Union(saved)
		}
		return out, nil
	}
	if len(set.Ranges) > 0 {
		if v.n == 0 {
			return nil, errBadSeq
		}
		if set.Max() > uint32(v.n) {
			return nil, errBadSeq
		}
	}
	seqs := imap.SeqSet{Ranges: set.Ranges}.Resolve(uint32(v.n), nil)
	out := v.seqsToUIDs(seqs)
	if set.Saved {
		out = out.Union(saved)
	}
	return out, nil
}

// sync brings the client up to date at a point where unsolicited
// responses are allowed: it applies queued store events, reports new
// messages (EXISTS), flag changes by others (FETCH) and, when allowed,
// expunges (EXPUNGE, or VANISHED with QRESYNC), and the NOTIFY
// notifications of other mailboxes.
func (s *session) sync(allowExpunge bool) error {
	return s.syncPoint(allowExpunge, false)
}

// syncBetween is sync for a NOTIFY session between commands (RFC 5465
// §6.1): the selected mailbox is reported only with the selected filter
// (expunges included), not with selected-delayed or without either.
func (s *session) syncBetween() error {
	return s.syncPoint(true, true)
}

func (s *session) syncPoint(allowExpunge, between bool) error {
	for _, ev := range s.takeEvents() {
		s.event(ev)
	}
	if s.notify != nil {
		if err := s.notifyReport(); err != nil {
			return err
		}
	}
	v := s.sel
	if v == nil || between && !s.pushesSelected() {
		if err := s.enc.Err(); err != nil {
			return &connError{err}
		}
		return nil
	}
	// A shared answer may cover less than an event announced; then ask
	// once more.
	for i := 0; v.dirty && i < 2; i++ {
		if err := s.catchUp(allowExpunge); err != nil {
			return err
		}
	}
	if allowExpunge && !v.expunged.IsEmpty() {
		s.reportExpunged()
	}
	if err := s.enc.Err(); err != nil {
		return &connError{err}
	}
	return nil
}

// event applies one store event: a change of the selected mailbox makes
// the view dirty (unless NOTIFY says the client does not want others'
// changes of it); NOTIFY collects what it reports; the rest goes to the
// hook for other mailboxes.
func (s *session) event(ev store.Event) {
	v := s.sel
	if s.notify != nil {
		s.notify.collect(s, ev)
	}
	switch ev.Kind {
	case store.EventAccountDeleted:
		s.gone = true
		return
	case store.EventOverflow:
		// Events were dropped: the selected mailbox catches up from the
		// store (which also finds it deleted), and NOTIFY reports
		// [NOTIFICATIONOVERFLOW] (RFC 5465 §5.8).
		if v != nil {
			v.dirty, v.fresh = true, true
		}
		if n := s.notify; n != nil && n.active() {
			n.overflow = true
			n.pending, n.seen = nil, nil
		}
		return
	case store.EventMessages, store.EventMailboxDeleted:
		if v != nil && ev.Mailbox == v.mb.ID {
			if ev.Kind == store.EventMailboxDeleted {
				v.dirty, v.fresh = true, true
			} else if ev.ModSeq > v.modseq && s.wantsSelected() {
				v.dirty = true
				v.wantModSeq = max(v.wantModSeq, ev.ModSeq)
			}
			return
		}
	case store.EventMailboxRenamed:
		if v != nil && ev.Mailbox == v.mb.ID {
			v.mb.Name = ev.Name
			return
		}
	}
	if h := s.srv.opt.OtherMailboxEvent; h != nil {
		h(s.enc, ev)
	}
}

// catchUp reads what changed since the view's MODSEQ (store.Changes is
// the source of truth; events only say that something did) and reports
// it. New messages are announced (EXISTS) before expunges, as RFC 8508's
// example of REPLACE shows; after a MOVE into the selected mailbox itself
// (expungeFirst) the expunges go first, so that the move reads as
// "* n EXPUNGE" then "* m EXISTS" with m the mailbox's size, as it does
// with other servers.
func (s *session) catchUp(allowExpunge bool) error {
	v := s.sel
	v.dirty = false
	var cs *store.ChangeSet
	var err error
	if v.fresh {
		v.fresh = false
		cs, err = s.srv.opt.Store.Changes(s.ctx, s.user.Account, v.mb.ID, v.modseq)
	} else if c, ok := s.cachedChanges(v.modseq, v.wantModSeq); ok {
		cs = c
	} else {
		cs, err = s.srv.changes.get(s.ctx, s.srv.opt.Store, s.user.Account, v.mb.ID, v.modseq, v.wantModSeq)
	}
	if errors.Is(err, store.ErrNotFound) {
		// The mailbox was deleted: every message is gone.
		v.expunged = slices.Clone(v.uids)
		return nil
	}
	if err != nil {
		return err
	}
	vanished := cs.Vanished.Intersect(v.uids)
	if !cs.VanishedComplete {
		// Tombstones were pruned: compare UID lists (RFC 7162 §3.2.5.2).
		cur, _, err := s.srv.opt.Store.UIDs(s.ctx, s.user.Account, v.mb.ID)
		if err != nil {
			return err
		}
		vanished = v.uids.Diff(cur)
	}
	v.expunged = v.expunged.Union(vanished)
	var added mail.UIDSet
	flags := s.reportsFlags()
	// Search contexts see every change, the session's own included.
	track := len(v.contexts) > 0
	var changedMsgs, addedMsgs []*store.Message
	for i := range cs.Changed {
		m := &cs.Changed[i]
		switch {
		case m.UID > v.uidHigh:
			added = added.Append(m.UID)
			if track {
				addedMsgs = append(addedMsgs, m)
			}
		case v.expunged.Contains(m.UID) || !v.uids.Contains(m.UID):
		default:
			if track {
				changedMsgs = append(changedMsgs, m)
			}
			if !v.isOwn(m) && flags {
				s.writeFlagsFetch(0, m.UID, m.Flags, m.ModSeq, true)
			}
		}
	}
	v.own = v.own[:0]
	v.modseq = max(v.modseq, cs.HighestModSeq)
	v.uidNext = max(v.uidNext, cs.UIDNext)
	if v.modseq < v.wantModSeq {
		v.dirty = true
	}
	if !added.IsEmpty() {
		if v.expungeFirst && allowExpunge && !v.expunged.IsEmpty() {
			s.reportExpunged()
		}
		if err := s.announceAdded(added); err != nil {
			return err
		}
	}
	if track {
		// After EXISTS: ADDTO may name the new sequence numbers (RFC
		// 5267 §4.3.3).
		s.updateContexts(changedMsgs, addedMsgs)
	}
	if !v.dirty {
		v.expungeFirst = false
	}
	return nil
}

// announceAdded adds new UIDs (all above the view's highest) to the view
// and tells the client: EXISTS, for IMAP4rev1 RECENT (claiming the
// messages' \Recent), and NOTIFY's MessageNew fetch attributes.
func (s *session) announceAdded(added mail.UIDSet) error {
	v := s.sel
	v.uids = v.uids.Union(added)
	v.n += added.Len()
	v.uidHigh = added.Max()
	v.uidNext = max(v.uidNext, v.uidHigh+1)
	s.enc.Untagged().Number(uint32(v.n)).Atom("EXISTS").End()
	if !s.rev2 {
		if s.idle != nil && !v.readOnly {
			// Push the news before the write that claims \Recent.
			_ = s.flush()
		}
		// RFC 3501 §7.3.2: the first session to see a message
		// sees it as \Recent.
		// Only up to what this session announced: a message that
		// arrives meanwhile stays recent for whoever sees it first.
		// A read-only session (EXAMINE) sees the unclaimed ones as
		// recent and claims nothing.
		first, err := s.claimRecent(v.mb.ID, s.claimUpTo(v))
		if err == nil {
			claimed := added.Intersect(mail.UIDSet{{Lo: max(first, 1), Hi: mail.MaxUID}})
			v.recentUIDs = v.recentUIDs.Union(claimed)
		}
		s.enc.Untagged().Number(uint32(v.recentCount())).Atom("RECENT").End()
	}
	if n := s.notify; n != nil && n.sel != nil && len(n.sel.fetch) > 0 {
		// RFC 5465 §5.2: the fetch attributes of MessageNew.
		if err := s.fetchNew(added, n.sel.fetch); err != nil {
			return err
		}
	}
	return nil
}

// appendedOwn takes the session's own APPEND to the selected mailbox
// into the view without reading the store's changes, when nothing else
// changed the mailbox since the view's MODSEQ (every store operation gets
// the next MODSEQ) and no search context must see the change. It reports
// whether it did; otherwise the view catches up at the next sync point.
func (s *session) appendedOwn(res *store.AppendResult) (bool, error) {
	v := s.sel
	if res.ModSeq != v.modseq+1 || v.dirty || len(v.contexts) > 0 || len(res.UIDs) == 0 || res.UIDs[0] <= v.uidHigh {
		return false, nil
	}
	var added mail.UIDSet
	for _, u := range res.UIDs {
		added = added.Append(u)
	}
	v.modseq = res.ModSeq
	return true, s.announceAdded(added)
}

// expungedOwn takes the session's own expunge of uids into the view
// without reading the store's changes, under the same condition as
// appendedOwn; the expunges are reported at the sync point. It reports
// whether it did.
func (v *selected) expungedOwn(modseq mail.ModSeq, uids mail.UIDSet) bool {
	if modseq != v.modseq+1 || v.dirty || len(v.contexts) > 0 {
		return false
	}
	v.expunged = v.expunged.Union(uids.Intersect(v.uids))
	v.modseq = modseq
	return true
}

// recentCount returns the number of \Recent messages of the view.
func (v *selected) recentCount() int {
	return v.recentUIDs.Intersect(v.uids).Len()
}

// writeFlagsFetch writes "* seq FETCH (UID u FLAGS (...) [MODSEQ (m)])"
// for a flag change. seq 0 means look it up. UID is always included
// (RFC 7162 §3.1 requires it for CONDSTORE sessions; it never hurts).
func (s *session) writeFlagsFetch(seq uint32, uid mail.UID, fl mail.Flags, modseq mail.ModSeq, withFlags bool) {
	v := s.sel
	if seq == 0 {
		seq = v.seqOf(uid)
		if seq == 0 {
			return
		}
	}
	if withFlags {
		s.announceKeywords(fl)
	}
	e := s.enc
	e.Untagged().Number(seq).Atom("FETCH").BeginList()
	e.Atom("UID").Number(uint32(uid))
	if withFlags {
		e.Atom("FLAGS")
		s.writeFlags(fl, uid)
	}
	if s.condstore {
		e.Atom("MODSEQ").BeginList().Number64(uint64(modseq)).EndList()
	}
	e.EndList().End()
}

// writeFlags writes a flag list, with \Recent for IMAP4rev1 sessions
// where the message is recent.
func (s *session) writeFlags(fl mail.Flags, uid mail.UID) {
	e := s.enc
	e.BeginList()
	for _, f := range fl {
		e.Atom(f)
	}
	if s.sel != nil && s.sel.recent(uid) {
		e.Atom(`\Recent`)
	}
	e.EndList()
}

// reportExpunged sends the pending expunges: one VANISHED for QRESYNC
// sessions (RFC 7162 §3.2.10), else EXPUNGE responses (RFC 9051 §7.5.1),
// highest sequence number first so none shifts the next.
func (s *session) reportExpunged() {
	v := s.sel
	gone := v.expunged.Intersect(v.uids)
	v.expunged = nil
	if gone.IsEmpty() {
		return
	}
	if len(v.contexts) > 0 {
		s.contextsExpunge(gone)
	}
	if s.qresync {
		s.enc.Untagged().Atom("VANISHED").UIDSet(gone).End()
	} else {
		seqs := make([]uint32, 0, min(gone.Len(), 1<<16))
		c := seqCursor{v: v}
		for _, r := range gone {
			for u := r.Lo; ; u++ {
				if q := c.seq(u); q != 0 {
					seqs = append(seqs, q)
				}
				if u == r.Hi {
					break
				}
			}
		}
		slices.Reverse(seqs)
		for _, q := range seqs {
			s.enc.Untagged().Number(q).Atom("EXPUNGE").End()
		}
	}
	v.uids = v.uids.Diff(gone)
	v.n = v.uids.Len()
	v.recentUIDs = v.recentUIDs.Diff(gone)
	s.saved = s.saved.Diff(gone)
	if len(v.contexts) > 0 {
		s.contextsAfterExpunge()
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
