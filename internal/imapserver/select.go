package imapserver

import (
	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// cmdSelect: SELECT and EXAMINE (RFC 9051 §6.3.2, §6.3.3), with the
// CONDSTORE (RFC 7162 §3.1.8) and QRESYNC (§3.2.5) parameters.
func (s *session) cmdSelect(cmd imap.Command) error {
	c := cmd.(*imap.Select)
	if c.QResync != nil && !s.qresync {
		// RFC 7162 §3.2.5: QRESYNC must be enabled first.
		return bad("CLIENTBUG", "QRESYNC is not enabled")
	}
	if s.sel != nil {
		// RFC 9051 §6.3.2, RFC 7162 §3.2.11: the previous mailbox is
		// closed (without expunge) before the new one is opened.
		s.sel = nil
		s.state = stateAuth
		if s.qresync || s.rev2 {
			s.enc.Untagged().Atom(imap.OK).Code("CLOSED").Text("Previous mailbox closed").End()
		}
	}
	s.saved = nil
	mb, err := s.lookupMailbox(c.Mailbox, "")
	if err != nil {
		return err
	}
	if c.CondStore {
		s.condstore = true
	}
	st := s.srv.opt.Store
	acct := s.user.Account
	if s.sub != nil {
		// Events up to now are covered by the snapshot below.
		for _, ev := range s.takeEvents() {
			if ev.Kind == store.EventAccountDeleted {
				s.gone = true
			} else if ev.Mailbox != mb.ID {
				s.event(ev)
			}
		}
	}
	uids, modseq, err := st.UIDs(s.ctx, acct, mb.ID)
	if err != nil {
		return err
	}
	v := &selected{mb: *mb, readOnly: c.ReadOnly(), uids: uids, n: uids.Len(), modseq: modseq}
	v.uidNext = max(mb.UIDNext, uids.Max()+1)
	v.uidHigh = max(uids.Max(), v.uidNext-1)
	unseen := uint32(0)
	if !s.rev2 {
		// RFC 3501 §2.3.1.2, §2.3.2: this session is the first to see
		// the messages no session has claimed yet, so they are \Recent
		// here. SELECT claims them; EXAMINE shows them as recent too
		// (RFC 3501 §6.3.2: it does not change \Recent for others).
		first, err := s.claimRecent(mb.ID, s.claimUpTo(v))
		if err != nil {
			return err
		}
		v.recentUIDs = uids.Intersect(mail.UIDSet{{Lo: max(first, 1), Hi: mail.MaxUID}})
		if unseen, err = s.firstUnseen(v); err != nil {
			return err
		}
	}
	// RFC 9051 §7.3.5, RFC 3501 §7.2.6: FLAGS lists the flags
	// applicable in the mailbox, the keywords in use among them (as
	// Dovecot does). Keywords set later, or missed here, are announced
	// when a response first shows one (announceKeywords).
	if err := s.selectKeywords(v); err != nil {
		return err
	}
	e := s.enc
	// RFC 9051 §6.3.2 and RFC 3501 §6.3.1: the required responses.
	s.writeFlagList(v)
	e.Untagged().Number(uint32(v.n)).Atom("EXISTS").End()
	if !s.rev2 {
		e.Untagged().Number(uint32(v.recentCount())).Atom("RECENT").End()
		if unseen != 0 {
			// RFC 3501 §6.3.1, §7.1: the first unseen message, for
			// clients that open a mailbox there (gone in IMAP4rev2).
			e.Untagged().Atom(imap.OK).Code("UNSEEN " + itoa64(int64(unseen))).Text("First unseen").End()
		}
	} else {
		e.Untagged().Atom("LIST").BeginList().EndList().String("/").Mailbox(mb.Name).End()
	}
	e.Untagged().Atom(imap.OK).Code("UIDVALIDITY " + itoa64(int64(mb.UIDValidity))).Text("UIDs valid").End()
	e.Untagged().Atom(imap.OK).Code("UIDNEXT " + itoa64(int64(v.uidNext))).Text("Predicted next UID").End()
	// RFC 7162 §3.1.2: every mailbox has MODSEQ; never NOMODSEQ.
	e.Untagged().Atom(imap.OK).Code("HIGHESTMODSEQ " + itoa64(int64(modseq))).Text("Highest").End()
	// RFC 8474 §4.2.
	e.Untagged().Atom(imap.OK).Code("MAILBOXID (" + mailboxObjectID(mb.ID) + ")").Text("Ok").End()
	s.sel = v
	s.state = stateSelected
	if q := c.QResync; q != nil && q.UIDValidity == mb.UIDValidity {
		if err := s.qresyncSelect(q); err != nil {
			return err
		}
	}
	if v.readOnly {
		s.okCode = "READ-ONLY"
	} else {
		s.okCode = "READ-WRITE"
	}
	s.okText = c.Name + " completed"
	return nil
}

// claimUpTo is the ClaimRecent bound of the view: the first UID it has
// not announced, or, for a read-only view (EXAMINE), 1, which claims
// nothing and only reads where the claims stand. Reading it through
// ClaimRecent, not Status, sees the claims of other sessions as soon as
// they are made, before their commit.
func (s *session) claimUpTo(v *selected) mail.UID {
	if v.readOnly {
		return 1
	}
	return v.uidHigh + 1
}

// firstUnseen returns the sequence number of the view's first message
// without \Seen, or 0. The mailbox cache answers when it is loaded (a
// client that selects the mailbox again, as many do every few minutes);
// otherwise, when the store counts no unseen message, no message is read,
// and else messages are read in UID order up to the first unseen one.
func (s *session) firstUnseen(v *selected) (uint32, error) {
	if v.n == 0 {
		return 0, nil
	}
	if c := s.srv.caches.get(s.user.Account, v.mb.ID, false); c != nil {
		// At least as new as the view: a message expunged since is
		// missing from both, as from a store read.
		if sn, err := c.at(s.ctx, v.modseq, false); err == nil && sn != nil {
			cur := seqCursor{v: v}
			seq := uint32(0)
			sn.msgs.each(v.uids, func(m *store.Message) bool {
				if m.Flags.Has(mail.FlagSeen) {
					return true
				}
				seq = cur.seq(m.UID)
				return false
			})
			return seq, nil
		}
	}
	counts, err := s.srv.opt.Store.Status(s.ctx, s.user.Account, v.mb.ID)
	if err != nil {
		return 0, err
	}
	if counts.Unseen == 0 {
		return 0, nil
	}
	c := seqCursor{v: v}
	for m, err := range s.srv.opt.Store.Messages(s.ctx, s.user.Account, v.mb.ID, v.uids, store.ListOptions{}) {
		if err != nil {
			return 0, err
		}
		if !m.Flags.Has(mail.FlagSeen) {
			return c.seq(m.UID), nil
		}
	}
	return 0, nil
}

// qresyncSelect reports what changed since the client's MODSEQ (RFC 7162
// §3.2.5): VANISHED (EARLIER) for expunged UIDs, then FETCH for changed
// messages. The work grows with the changes, not with the mailbox.
func (s *session) qresyncSelect(q *imap.QResync) error {
	v := s.sel
	st := s.srv.opt.Store
	cs, err := st.Changes(s.ctx, s.user.Account, v.mb.ID, q.ModSeq)
	if err != nil {
		return err
	}
	known := q.KnownUIDs
	if known == nil {
		known = mail.UIDSet{{Lo: 1, Hi: max(v.uidNext, 2) - 1}}
	}
	var vanished mail.UIDSet
	if cs.VanishedComplete {
		vanished = cs.Vanished.Intersect(known)
	} else {
		// RFC 7162 §3.2.5.2: tombstones older than the client's MODSEQ
		// are gone, so report every known UID that no longer exists.
		// The sequence match data narrows it: where the client's
		// message number still maps to the same UID, nothing below it
		// was expunged.
		floor := mail.UID(0)
		if q.MatchSeqs != nil {
			seqs, uidl := q.MatchSeqs.UIDs(), q.MatchUIDs.UIDs()
			for i := range seqs {
				if i < len(uidl) && v.uidAt(int(seqs[i])) == uidl[i] {
					floor = uidl[i]
				}
			}
		}
		vanished = known.Diff(v.uids)
		if floor > 0 {
			vanished = vanished.Intersect(mail.UIDSet{{Lo: floor + 1, Hi: mail.MaxUID}})
		}
	}
	// Only UIDs that are not in the view: a message expunged after the
	// view's snapshot is reported later, with its sequence number.
	vanished = vanished.Diff(v.uids)
	vanished = vanished.Intersect(mail.UIDSet{{Lo: 1, Hi: max(v.uidNext, 2) - 1}})
	if !vanished.IsEmpty() {
		s.enc.Untagged().Atom("VANISHED").BeginList().Atom("EARLIER").EndList().UIDSet(vanished).End()
	}
	c := seqCursor{v: v}
	for i := range cs.Changed {
		m := &cs.Changed[i]
		if q.KnownUIDs != nil && !q.KnownUIDs.Contains(m.UID) && m.UID <= q.KnownUIDs.Max() {
			continue
		}
		seq := c.seq(m.UID)
		if seq == 0 {
			continue
		}
		s.writeFlagsFetch(seq, m.UID, m.Flags, m.ModSeq, true)
	}
	return nil
}

// cmdClose: RFC 9051 §6.4.1. Messages with \Deleted are expunged without
// EXPUNGE responses (not in a read-only mailbox).
func (s *session) cmdClose(cmd imap.Command) error {
	v := s.sel
	var uids mail.UIDSet
	ok := false
	if !v.readOnly {
		uids, ok = s.deletedUIDs()
	}
	s.sel = nil
	s.state = stateAuth
	s.saved = nil
	if v.readOnly || ok && uids.IsEmpty() {
		return nil
	}
	if _, err := s.srv.opt.Store.Expunge(s.ctx, s.user.Account, v.mb.ID, uids, true); err != nil {
		return err
	}
	return nil
}

// cmdUnselect: RFC 3691, RFC 9051 §6.4.2: close without expunge.
func (s *session) cmdUnselect(imap.Command) error {
	s.sel = nil
	s.state = stateAuth
	s.saved = nil
	return nil
}

// cmdCheck: RFC 3501 §6.4.1. Every write is durable when acknowledged, so
// CHECK only reports updates.
func (s *session) cmdCheck(imap.Command) error { return nil }

// cmdExpunge: EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (§6.4.9, RFC
// 4315 §2.1). The EXPUNGE (or VANISHED) responses are sent by the sync
// that precedes the tagged OK.
func (s *session) cmdExpunge(cmd imap.Command) error {
	c := cmd.(*imap.Expunge)
	v := s.sel
	if v.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	var uids mail.UIDSet
	if c.UID {
		var err error
		if uids, err = s.resolve(c.UIDs, true); err != nil {
			return err
		}
		if uids.IsEmpty() {
			return nil
		}
	} else if del, ok := s.deletedUIDs(); ok {
		if del.IsEmpty() {
			return nil
		}
		uids = del
	}
	res, err := s.srv.opt.Store.Expunge(s.ctx, s.user.Account, v.mb.ID, uids, true)
	if err != nil {
		return err
	}
	s.ownExpunge(res)
	if !res.UIDs.IsEmpty() && !v.expungedOwn(res.ModSeq, res.UIDs) {
		v.need(res.ModSeq)
	}
	return nil
}

// selectKeywords puts the keywords in use in the mailbox into the new
// view's FLAGS list (and the ones it has announced): from the mailbox
// cache when it is loaded, otherwise from the store when it can list
// them (store.MailboxKeywords).
func (s *session) selectKeywords(v *selected) error {
	kws, ok := s.cachedKeywords(v)
	if kl, can := s.srv.opt.Store.(store.MailboxKeywords); !ok && can {
		var err error
		if kws, err = kl.MailboxKeywords(s.ctx, s.user.Account, v.mb.ID); err != nil {
			return err
		}
	}
	for _, f := range kws {
		if v.known == nil {
			v.known = make(map[string]struct{}, len(kws))
		}
		v.known[f] = struct{}{}
		v.keywords = v.keywords.With(f)
	}
	return nil
}

// cachedKeywords returns the keywords of the messages in the mailbox
// cache, when it is loaded; ok is false when it is not.
func (s *session) cachedKeywords(v *selected) (kws mail.Flags, ok bool) {
	c := s.srv.caches.get(s.user.Account, v.mb.ID, false)
	if c == nil {
		return nil, false
	}
	sn, err := c.at(s.ctx, v.modseq, false)
	if err != nil || sn == nil {
		return nil, false
	}
	var last mail.Flags // messages share their flag sets (internFlags)
	sn.msgs.each(nil, func(m *store.Message) bool {
		if len(m.Flags) == 0 || len(last) > 0 && &m.Flags[0] == &last[0] && len(m.Flags) == len(last) {
			return true
		}
		last = m.Flags
		for _, f := range m.Flags {
			if len(f) > 0 && f[0] != '\\' && !kws.Has(f) {
				kws = kws.With(f)
			}
		}
		return true
	})
	return kws, true
}
