package imapserver

import (
	"errors"
	"slices"
	"strings"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// mailboxName decodes a mailbox argument (modified UTF-7 unless UTF-8 is
// enabled) into a canonical postfach name.
func (s *session) mailboxName(raw string) (string, error) {
	return imap.DecodeMailbox(raw, s.utf8)
}

// lookupMailbox finds a mailbox by its client-side name. A missing or
// \Noselect mailbox is NO [NONEXISTENT] (or code, when given: TRYCREATE
// for APPEND, COPY and MOVE, RFC 9051 §6.3.12).
func (s *session) lookupMailbox(raw, missingCode string) (*store.Mailbox, error) {
	name, err := s.mailboxName(raw)
	if err != nil {
		return nil, err
	}
	mb, err := s.srv.opt.Store.Mailbox(s.ctx, s.user.Account, name)
	if errors.Is(err, store.ErrNotFound) || err == nil && mb.NoSelect {
		if missingCode == "" {
			missingCode = "NONEXISTENT"
		}
		return nil, no(missingCode, "No such mailbox")
	}
	return mb, err
}

// validSpecialUse reports whether a is a special-use attribute postfach
// knows (RFC 6154 §2).
func validSpecialUse(a string) bool {
	switch a {
	case store.UseAll, store.UseArchive, store.UseDrafts, store.UseFlagged, store.UseJunk, store.UseSent, store.UseTrash:
		return true
	}
	return false
}

// cmdCreate: RFC 9051 §6.3.4, with USE (RFC 6154 §3). Missing parent
// levels are created too.
func (s *session) cmdCreate(cmd imap.Command) error {
	c := cmd.(*imap.Create)
	raw := c.Mailbox
	// RFC 9051 §6.3.4: a trailing separator declares the intent to
	// create children; the name is created without it.
	if len(raw) > 1 && raw[len(raw)-1] == imap.Separator {
		raw = raw[:len(raw)-1]
	}
	name, err := s.mailboxName(raw)
	if err != nil {
		return err
	}
	if err := imap.ValidNewMailbox(name); err != nil {
		return err
	}
	if imap.IsInbox(name) {
		return no("ALREADYEXISTS", "INBOX always exists")
	}
	for _, u := range c.SpecialUse {
		if !validSpecialUse(u) {
			// RFC 6154 §3: USEATTR for attributes the server does not
			// support.
			return no("USEATTR", "Unsupported special-use attribute")
		}
	}
	// Missing superior levels are created with the name, in one store
	// write (all or none, and counted against the mailbox limit
	// together). RFC 3501 §6.3.3 and RFC 9051 §6.3.4 leave subscribing to
	// the server: with AutoSubscribe the new mailboxes are subscribed.
	mb, err := s.srv.opt.Store.CreateMailboxWith(s.ctx, s.user.Account, name,
		store.CreateOptions{SpecialUse: c.SpecialUse, Parents: true, Subscribe: s.srv.opt.AutoSubscribe})
	if err != nil {
		return err
	}
	// RFC 8474 §4.1.
	s.okCode = "MAILBOXID (" + mailboxObjectID(mb.ID) + ")"
	return nil
}

// mailboxObjectID is the MAILBOXID of a mailbox (RFC 8474 §4): stable
// across renames, never reused (store IDs are not).
func mailboxObjectID(id store.MailboxID) string {
	return "M" + itoa64(int64(id))
}

// cmdDelete: RFC 9051 §6.3.5. A mailbox with children loses its messages
// and becomes \Noselect; a \Noselect one with children cannot be deleted
// (NO [HASCHILDREN]).
func (s *session) cmdDelete(cmd imap.Command) error {
	c := cmd.(*imap.Delete)
	name, err := s.mailboxName(c.Mailbox)
	if err != nil {
		return err
	}
	if imap.IsInbox(name) {
		return no("CANNOT", "INBOX cannot be deleted")
	}
	mb, err := s.srv.opt.Store.Mailbox(s.ctx, s.user.Account, name)
	if err != nil {
		return err
	}
	return s.srv.opt.Store.DeleteMailbox(s.ctx, s.user.Account, mb.ID)
}

// cmdRename: RFC 9051 §6.3.6. Renaming INBOX moves its messages to the
// new mailbox (the store does it); missing parents of the new name are
// created.
func (s *session) cmdRename(cmd imap.Command) error {
	c := cmd.(*imap.Rename)
	from, err := s.mailboxName(c.From)
	if err != nil {
		return err
	}
	to, err := s.mailboxName(c.To)
	if err != nil {
		return err
	}
	if err := imap.ValidNewMailbox(to); err != nil {
		return err
	}
	if imap.IsInbox(to) {
		return no("ALREADYEXISTS", "INBOX already exists")
	}
	st := s.srv.opt.Store
	if _, err := st.Mailbox(s.ctx, s.user.Account, from); err != nil {
		return err
	}
	if _, err := st.Mailbox(s.ctx, s.user.Account, to); err == nil {
		return no("ALREADYEXISTS", "Mailbox already exists")
	}
	if strings.HasPrefix(to, from+"/") {
		return no("CANNOT", "Cannot rename a mailbox into itself")
	}
	if i := strings.LastIndexByte(to, imap.Separator); i > 0 && !imap.IsInbox(to[:i]) {
		// The missing superior levels of the new name, in one write
		// (counted against the mailbox limit).
		_, err := st.CreateMailboxWith(s.ctx, s.user.Account, to[:i], store.CreateOptions{Parents: true, Subscribe: s.srv.opt.AutoSubscribe})
		if err != nil && !errors.Is(err, store.ErrExists) {
			return err
		}
	}
	// The store moves the subscriptions of the renamed mailboxes (and of
	// those below them) to the new names. DELETE leaves subscriptions
	// alone (RFC 3501 §6.3.6: the server must not remove a name from the
	// subscription list by itself).
	if err := st.RenameMailbox(s.ctx, s.user.Account, from, to); err != nil {
		return err
	}
	if imap.IsInbox(from) && s.srv.opt.AutoSubscribe {
		// RFC 9051 §6.3.6: renaming INBOX made a new mailbox.
		return st.SetSubscribed(s.ctx, s.user.Account, to, true)
	}
	return nil
}

// cmdSubscribe: RFC 9051 §6.3.7. The name need not exist.
func (s *session) cmdSubscribe(cmd imap.Command) error {
	name, err := s.mailboxName(cmd.(*imap.Subscribe).Mailbox)
	if err != nil {
		return err
	}
	return s.srv.opt.Store.SetSubscribed(s.ctx, s.user.Account, name, true)
}

// cmdUnsubscribe: RFC 9051 §6.3.8.
func (s *session) cmdUnsubscribe(cmd imap.Command) error {
	name, err := s.mailboxName(cmd.(*imap.Unsubscribe).Mailbox)
	if err != nil {
		return err
	}
	return s.srv.opt.Store.SetSubscribed(s.ctx, s.user.Account, name, false)
}

// cmdNamespace: RFC 9051 §6.3.10 (RFC 2342): one personal namespace.
func (s *session) cmdNamespace(imap.Command) error {
	e := s.enc
	e.Untagged().Atom("NAMESPACE").BeginList().BeginList().String("").String("/").EndList().EndList().Nil().Nil().End()
	return nil
}

// listEntry is one name a LIST or LSUB may report.
type listEntry struct {
	name       string
	mb         *store.Mailbox // nil for a name that is not a mailbox
	subscribed bool
	// children: a mailbox exists below the name (\HasChildren, RFC 5258
	// §4); a subscription to a name that does not exist is no child.
	children bool
	subChild bool // has a subscribed descendant (LSUB)
	// hiddenMatch: a descendant meets the LIST selection criteria but
	// matches no pattern, so it is not listed (CHILDINFO, RFC 5258
	// §3.5); set by cmdList.
	hiddenMatch bool
}

// listEntries collects every mailbox, every subscribed name and every
// implied parent, sorted by name.
func (s *session) listEntries(withSubs bool) ([]*listEntry, error) {
	st := s.srv.opt.Store
	mbs, err := st.Mailboxes(s.ctx, s.user.Account)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*listEntry, len(mbs))
	var out []*listEntry
	add := func(name string) *listEntry {
		e := byName[name]
		if e == nil {
			e = &listEntry{name: name}
			byName[name] = e
			out = append(out, e)
		}
		return e
	}
	for i := range mbs {
		e := add(mbs[i].Name)
		e.mb = &mbs[i]
		e.subscribed = mbs[i].Subscribed
	}
	if withSubs {
		subs, err := st.Subscriptions(s.ctx, s.user.Account)
		if err != nil {
			return nil, err
		}
		for _, n := range subs {
			add(n).subscribed = true
		}
	}
	// Parents: mark children, and add levels that are not mailboxes.
	names := make([]string, 0, len(out))
	for _, e := range out {
		names = append(names, e.name)
	}
	for _, n := range names {
		en := byName[n]
		for i := len(n) - 1; i > 0; i-- {
			if n[i] != imap.Separator {
				continue
			}
			p := add(n[:i])
			if en.mb != nil {
				p.children = true
			}
			if en.subscribed {
				p.subChild = true
			}
		}
	}
	slices.SortFunc(out, func(a, b *listEntry) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// cmdList: RFC 9051 §6.3.9 with LIST-EXTENDED (RFC 5258), LIST-STATUS
// (RFC 5819) and SPECIAL-USE (RFC 6154).
func (s *session) cmdList(cmd imap.Command) error {
	c := cmd.(*imap.List)
	e := s.enc
	ref := s.decodePattern(c.Reference)
	if len(c.Patterns) == 1 && c.Patterns[0] == "" && !c.Extended {
		// RFC 9051 §6.3.9: the hierarchy delimiter and root.
		e.Untagged().Atom("LIST").BeginList().Atom(`\Noselect`).EndList().String("/").String("").End()
		return nil
	}
	var pats []string
	for _, p := range c.Patterns {
		if p == "" {
			continue
		}
		pats = append(pats, imap.ListReference(ref, s.decodePattern(p)))
	}
	matches := func(name string) bool {
		for _, p := range pats {
			if imap.MatchList(p, name) {
				return true
			}
		}
		return false
	}
	sel, ret := c.Select, c.Return
	if err := s.rev2StatusItems(ret.Status); err != nil {
		return err
	}
	needSubs := sel.Subscribed || ret.Subscribed
	entries, err := s.listEntries(needSubs)
	if err != nil {
		return err
	}
	// The selection criteria (RFC 5258 §3.1): every base option given
	// must hold; without one, every mailbox and every level that has
	// mailboxes below it (RFC 9051 §6.3.9: \Noselect or \NonExistent)
	// is listed, and a subscription to a name that does not exist is not.
	criteria := sel.Subscribed || sel.SpecialUse
	meets := func(en *listEntry) bool {
		if !criteria {
			return en.mb != nil || en.children
		}
		if sel.Subscribed && !en.subscribed {
			return false
		}
		return !sel.SpecialUse || en.mb != nil && len(en.mb.SpecialUse) > 0
	}
	var childInfo []string
	if sel.RecursiveMatch && criteria {
		// RFC 5258 §3.5: CHILDINFO tells that a descendant meets the
		// criteria; it goes with a name the pattern matches only when
		// such a descendant is not listed itself (so no CHILDINFO is
		// redundant), and lists a name that does not meet the criteria
		// only for it (§3.4, \NonExistent condition 2).
		if sel.Subscribed {
			childInfo = append(childInfo, "SUBSCRIBED")
		}
		if sel.SpecialUse {
			childInfo = append(childInfo, "SPECIAL-USE")
		}
		byName := make(map[string]*listEntry, len(entries))
		for _, en := range entries {
			byName[en.name] = en
		}
		for _, en := range entries {
			if !meets(en) || matches(en.name) {
				continue
			}
			for i := len(en.name) - 1; i > 0; i-- {
				if en.name[i] == imap.Separator {
					if p := byName[en.name[:i]]; p != nil {
						p.hiddenMatch = true
					}
				}
			}
		}
	}
	for _, en := range entries {
		if !matches(en.name) {
			continue
		}
		withChildInfo := childInfo != nil && en.hiddenMatch
		if !meets(en) && !withChildInfo {
			continue
		}
		var info []string
		if withChildInfo {
			info = childInfo
		}
		s.writeListEntry("LIST", en, needSubs, c.Extended, info)
		if ret.Status != 0 && en.mb != nil && !en.mb.NoSelect {
			if err := s.writeStatus(en.mb, ret.Status); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeListEntry writes "* LIST (attrs) "/" name [(CHILDINFO (...))]".
// A name that is not a mailbox is \NonExistent for IMAP4rev2 and
// LIST-EXTENDED commands (RFC 5258 §3.4), \Noselect in a plain IMAP4rev1
// LIST (RFC 3501 §6.3.8).
func (s *session) writeListEntry(kind string, en *listEntry, showSub, extended bool, childInfo []string) {
	e := s.enc
	e.Untagged().Atom(kind).BeginList()
	switch {
	case en.mb == nil && kind == "LIST" && !en.subscribed && !s.rev2 && !extended:
		e.Atom(`\Noselect`)
	case en.mb == nil && kind == "LIST":
		e.Atom(`\NonExistent`)
	case en.mb == nil, en.mb.NoSelect:
		e.Atom(`\Noselect`)
	}
	if kind == "LIST" {
		// RFC 3348, RFC 5258 §3.4: children attributes.
		if en.children {
			e.Atom(`\HasChildren`)
		} else if en.mb != nil {
			e.Atom(`\HasNoChildren`)
		}
		if showSub && en.subscribed {
			e.Atom(`\Subscribed`)
		}
		if en.mb != nil {
			// RFC 6154 §2.
			for _, u := range en.mb.SpecialUse {
				e.Atom(u)
			}
		}
	}
	e.EndList().String("/").Mailbox(en.name)
	if len(childInfo) > 0 {
		e.BeginList().String("CHILDINFO").BeginList()
		for _, opt := range childInfo {
			e.String(opt)
		}
		e.EndList().EndList()
	}
	e.End()
}

// decodePattern decodes a LIST or LSUB reference or pattern like a
// mailbox name; what is not valid modified UTF-7 stands for itself
// (imap.DecodePattern), so any pattern is answered, with whatever
// matches. Wildcards pass through unchanged.
func (s *session) decodePattern(p string) string {
	return imap.DecodePattern(p, s.utf8)
}

// cmdLsub: RFC 3501 §6.3.9 (IMAP4rev1 only, still served).
func (s *session) cmdLsub(cmd imap.Command) error {
	c := cmd.(*imap.Lsub)
	ref := s.decodePattern(c.Reference)
	if c.Pattern == "" {
		s.enc.Untagged().Atom("LSUB").BeginList().Atom(`\Noselect`).EndList().String("/").String("").End()
		return nil
	}
	pat := imap.ListReference(ref, s.decodePattern(c.Pattern))
	entries, err := s.listEntries(true)
	if err != nil {
		return err
	}
	for _, en := range entries {
		if !imap.MatchList(pat, en.name) {
			continue
		}
		if !en.subscribed {
			// RFC 3501 §6.3.9: with "%", a parent of a subscribed
			// name is listed as \Noselect.
			if !(strings.HasSuffix(pat, "%") && en.subChild) {
				continue
			}
			en = &listEntry{name: en.name}
		}
		s.writeListEntry("LSUB", en, false, false, nil)
	}
	return nil
}

// cmdStatus: RFC 9051 §6.3.11, with STATUS=SIZE (RFC 8438), HIGHESTMODSEQ
// (RFC 7162 §3.1.6), APPENDLIMIT (RFC 7889) and DELETED-STORAGE (RFC 9208).
func (s *session) cmdStatus(cmd imap.Command) error {
	c := cmd.(*imap.Status)
	if err := s.rev2StatusItems(c.Items); err != nil {
		return err
	}
	mb, err := s.lookupMailbox(c.Mailbox, "")
	if err != nil {
		return err
	}
	if c.Items.Has(imap.StatusHighestModSeq) {
		s.condstore = true // RFC 7162 §3.1: a CONDSTORE-enabling command
	}
	return s.writeStatus(mb, c.Items)
}

// writeStatus writes "* STATUS name (items)".
func (s *session) writeStatus(mb *store.Mailbox, items imap.StatusItems) error {
	st, err := s.srv.opt.Store.Status(s.ctx, s.user.Account, mb.ID)
	if err != nil {
		return err
	}
	e := s.enc
	e.Untagged().Atom("STATUS").Mailbox(mb.Name).BeginList()
	if items.Has(imap.StatusMessages) {
		e.Atom("MESSAGES").Number(uint32(st.Messages))
	}
	if items.Has(imap.StatusRecent) {
		// Messages not yet claimed as \Recent by a session (RFC 3501):
		// those from the first unclaimed UID on, counted by reading only
		// them.
		recent := 0
		if st.UIDNext > st.FirstRecent {
			unclaimed := mail.UIDSet{{Lo: max(st.FirstRecent, 1), Hi: mail.MaxUID}}
			for _, err := range s.srv.opt.Store.Messages(s.ctx, s.user.Account, mb.ID, unclaimed, store.ListOptions{}) {
				if err != nil {
					return err
				}
				recent++
			}
		}
		e.Atom("RECENT").Number(uint32(recent))
	}
	if items.Has(imap.StatusUIDNext) {
		e.Atom("UIDNEXT").Number(uint32(st.UIDNext))
	}
	if items.Has(imap.StatusUIDValidity) {
		e.Atom("UIDVALIDITY").Number(st.UIDValidity)
	}
	if items.Has(imap.StatusUnseen) {
		e.Atom("UNSEEN").Number(uint32(st.Unseen))
	}
	if items.Has(imap.StatusDeleted) {
		e.Atom("DELETED").Number(uint32(st.Deleted))
	}
	if items.Has(imap.StatusSize) {
		e.Atom("SIZE").Number64(uint64(st.Size))
	}
	if items.Has(imap.StatusDeletedStorage) {
		// RFC 9208 §4.1.4: what EXPUNGE would free, in the unit of
		// STORAGE (quota.go).
		e.Atom("DELETED-STORAGE").Number64(kib(st.DeletedSize))
	}
	if items.Has(imap.StatusHighestModSeq) {
		e.Atom("HIGHESTMODSEQ").Number64(uint64(st.HighestModSeq))
	}
	if items.Has(imap.StatusAppendLimit) {
		e.Atom("APPENDLIMIT").Number64(uint64(s.srv.maxMsg))
	}
	if items.Has(imap.StatusMailboxID) {
		// RFC 8474 §4.3.
		e.Atom("MAILBOXID").BeginList().Atom(mailboxObjectID(mb.ID)).EndList()
	}
	e.EndList().End()
	return nil
}
