package imapserver

import (
	"errors"
	"slices"
	"strings"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// NOTIFY (RFC 5465): the client names mailboxes (by filter) and the
// events it wants to hear about; the server pushes them as they happen,
// also while the client is idle between commands, not only in IDLE.
//
// Mailboxes other than the selected one are reported with STATUS
// (MessageNew, MessageExpunge, FlagChange), LIST (MailboxName,
// SubscriptionChange) and METADATA (MailboxMetadataChange,
// ServerMetadataChange). The selected mailbox's message events come only
// from the selected or selected-delayed filter, as EXISTS (with the
// MessageNew fetch attributes), EXPUNGE or VANISHED, and FETCH: with
// selected they are pushed at once, expunges included (the client has
// said it copes with sequence numbers that change under it); with
// selected-delayed they wait for a command that may report them (or
// IDLE), as without NOTIFY. When NOTIFY is in effect without either
// filter (or after NOTIFY NONE), changes of the selected mailbox made by
// others are not reported at all; the session's own changes still are.
//
// Cost. A session with NOTIFY waits like one in IDLE: no goroutine of its
// own, its buffers released; the store's publisher wakes it. What it
// keeps is the configuration, the last STATUS it reported per mailbox (to
// leave out repeats and to tell flag changes from new messages, bounded),
// and, only while it reports, the events it collected.

// defaultNotifyMax bounds the notifications a session collects between
// two reports; more means the client is not keeping up (or the account
// changes faster than anyone can follow), and it gets
// [NOTIFICATIONOVERFLOW] instead (RFC 5465 §5.8).
const defaultNotifyMax = 1000

// notifyStatusMax bounds the remembered STATUS answers of one session.
const notifyStatusMax = 1000

// notifyEvents is a set of NOTIFY events.
type notifyEvents uint16

// The events postfach supports (RFC 5465 §5). AnnotationChange (message
// annotations, RFC 5257) is not.
const (
	evMessageNew notifyEvents = 1 << iota
	evMessageExpunge
	evFlagChange
	evMailboxName
	evSubscriptionChange
	evMailboxMetadataChange
	evServerMetadataChange
)

var notifyEventBits = map[string]notifyEvents{
	"MessageNew": evMessageNew, "MessageExpunge": evMessageExpunge, "FlagChange": evFlagChange,
	"MailboxName": evMailboxName, "SubscriptionChange": evSubscriptionChange,
	"MailboxMetadataChange": evMailboxMetadataChange, "ServerMetadataChange": evServerMetadataChange,
}

// badEventCode lists the supported events (RFC 5465 §3.1, BADEVENT).
const badEventCode = "BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange)"

// notifyGroup is one event group of NOTIFY SET.
type notifyGroup struct {
	filter imap.NotifyFilter
	names  []string // canonical names of the subtree and mailboxes filters
	events notifyEvents
	fetch  []imap.FetchItem // MessageNew fetch attributes (selected filters)
}

// notifyState is a session's NOTIFY configuration.
type notifyState struct {
	// groups are the event groups for mailboxes other than the selected
	// one, in the client's order; empty after NOTIFY NONE.
	groups []notifyGroup
	// sel is the selected or selected-delayed group (nil: none).
	sel     *notifyGroup
	delayed bool
	// subscribed holds the subscribed names while a subscribed filter is
	// in use.
	subscribed map[string]bool
	// status is the last STATUS known per mailbox.
	status map[store.MailboxID]notifyStatus
	// pending are the events collected since the last report; seen marks
	// mailboxes with a pending EventMessages (one STATUS each).
	pending  []store.Event
	seen     map[store.MailboxID]bool
	overflow bool
	// stopWatch ends the goroutine that wakes the session for a store
	// whose subscriptions cannot call a function (see
	// watchWithoutNotifier); a no-op for the built-in stores.
	stopWatch func()
}

// setNotify replaces the session's NOTIFY state (nil: none).
func (s *session) setNotify(n *notifyState) {
	if old := s.notify; old != nil && old.stopWatch != nil {
		old.stopWatch()
	}
	if n != nil && n.active() {
		n.stopWatch = s.watchWithoutNotifier()
	}
	s.notify = n
}

// notifyStatus is what a STATUS notification reports.
type notifyStatus struct {
	messages, unseen int
	uidNext          mail.UID
	uidValidity      uint32
	modseq           mail.ModSeq
}

// active reports whether any notification may be sent.
func (n *notifyState) active() bool {
	return len(n.groups) > 0 || n.sel != nil && n.sel.events != 0
}

// selectedEvents returns the events wanted for the selected mailbox.
func (n *notifyState) selectedEvents() notifyEvents {
	if n.sel == nil {
		return 0
	}
	return n.sel.events
}

// notifying reports whether the session waits for store events between
// commands (NOTIFY with something to report).
func (s *session) notifying() bool {
	return s.notify != nil && s.notify.active()
}

// wantsSelected reports whether others' changes of the selected mailbox
// are reported (always without NOTIFY).
func (s *session) wantsSelected() bool {
	return s.notify == nil || s.notify.selectedEvents()&evMessageNew != 0
}

// pushesSelected reports whether the selected mailbox's changes are
// reported between commands: only with the selected filter (not
// selected-delayed) and its message events (RFC 5465 §6.1).
func (s *session) pushesSelected() bool {
	n := s.notify
	return n != nil && !n.delayed && n.selectedEvents()&evMessageExpunge != 0
}

// reportsFlags reports whether others' flag changes in the selected
// mailbox are reported.
func (s *session) reportsFlags() bool {
	return s.notify == nil || s.notify.selectedEvents()&evFlagChange != 0
}

// matches reports whether a mailbox filter covers a mailbox name
// (RFC 5465 §6). subscribed is the name's subscription state.
func (g *notifyGroup) matches(name string, subscribed bool) bool {
	switch g.filter {
	case imap.NotifyPersonal:
		return true
	case imap.NotifyInboxes:
		// Mail is delivered to INBOX only.
		return name == "INBOX"
	case imap.NotifySubscribed:
		return subscribed
	case imap.NotifySubtree:
		for _, n := range g.names {
			if name == n || strings.HasPrefix(name, n+"/") {
				return true
			}
		}
	case imap.NotifyMailboxes:
		return slices.Contains(g.names, name)
	}
	return false
}

// wants reports whether an event about a mailbox (not the selected
// one's message events) is to be reported: the first group whose filter
// covers the mailbox and that names the event decides; a group with NONE
// that covers it says no (RFC 5465 §6).
func (n *notifyState) wants(name string, ev notifyEvents) bool {
	return n.wantsSub(name, ev, n.subscribed[name])
}

func (n *notifyState) wantsSub(name string, ev notifyEvents, subscribed bool) bool {
	for i := range n.groups {
		g := &n.groups[i]
		if !g.matches(name, subscribed) {
			continue
		}
		if g.events == 0 {
			return false
		}
		if g.events&ev != 0 {
			return true
		}
	}
	return false
}

// usesSubscribed reports whether a subscribed filter is in use.
func (n *notifyState) usesSubscribed() bool {
	for i := range n.groups {
		if n.groups[i].filter == imap.NotifySubscribed {
			return true
		}
	}
	return false
}

// cmdNotify: NOTIFY (RFC 5465 §3.1). SET replaces the configuration; NONE
// ends all notifications.
func (s *session) cmdNotify(cmd imap.Command) error {
	c := cmd.(*imap.Notify)
	n := &notifyState{}
	if !c.None {
		for _, g := range c.Groups {
			ng := notifyGroup{filter: g.Filter}
			for _, ev := range g.Events {
				bit, ok := notifyEventBits[ev.Name]
				if !ok {
					// RFC 5465 §3.1: NO with the events the server
					// supports.
					return no(badEventCode, "Unsupported event")
				}
				ng.events |= bit
				if len(ev.Fetch) > 0 {
					ng.fetch = ev.Fetch
				}
			}
			for _, raw := range g.Mailboxes {
				name, err := s.mailboxName(raw)
				if err != nil {
					return err
				}
				ng.names = append(ng.names, name)
			}
			if g.Filter == imap.NotifySelected || g.Filter == imap.NotifySelectedDelayed {
				n.sel = &ng
				n.delayed = g.Filter == imap.NotifySelectedDelayed
				continue
			}
			n.groups = append(n.groups, ng)
		}
	}
	if n.usesSubscribed() {
		subs, err := s.srv.opt.Store.Subscriptions(s.ctx, s.user.Account)
		if err != nil {
			return err
		}
		n.subscribed = make(map[string]bool, len(subs))
		for _, name := range subs {
			n.subscribed[name] = true
		}
	}
	if old := s.notify; old != nil {
		n.status = old.status
	}
	s.setNotify(n)
	if v := s.sel; v != nil {
		// Changes of the selected mailbox that the previous
		// configuration left unreported are reported now, as the new
		// one says.
		v.dirty = true
	}
	if c.Status {
		return s.notifyInitialStatus()
	}
	return nil
}

// notifyInitialStatus answers NOTIFY SET STATUS: a STATUS for every
// mailbox (but the selected one) whose message events are to be reported
// (RFC 5465 §3.1), whichever of them the client named.
func (s *session) notifyInitialStatus() error {
	mbs, err := s.srv.opt.Store.Mailboxes(s.ctx, s.user.Account)
	if err != nil {
		return err
	}
	n := s.notify
	for i := range mbs {
		mb := &mbs[i]
		if mb.NoSelect || s.sel != nil && s.sel.mb.ID == mb.ID || !n.wants(mb.Name, evMessageNew|evMessageExpunge|evFlagChange) {
			continue
		}
		if err := s.notifyStatus(mb, true); err != nil {
			return err
		}
	}
	return nil
}

// collect takes a store event for the next report. Message events of the
// selected mailbox are the view's business and not collected.
func (n *notifyState) collect(s *session, ev store.Event) {
	if n.overflow || !n.active() {
		return
	}
	switch ev.Kind {
	case store.EventMessages:
		if s.sel != nil && s.sel.mb.ID == ev.Mailbox {
			return
		}
		if n.seen[ev.Mailbox] {
			return
		}
		if n.seen == nil {
			n.seen = map[store.MailboxID]bool{}
		}
		n.seen[ev.Mailbox] = true
	case store.EventMailboxCreated, store.EventMailboxDeleted, store.EventMailboxRenamed,
		store.EventSubscription, store.EventMetadata:
	default:
		return
	}
	if len(n.pending) >= s.srv.notifyMax {
		n.overflow = true
		n.pending, n.seen = nil, nil
		return
	}
	n.pending = append(n.pending, ev)
}

// notifyReport writes the notifications collected since the last report.
func (s *session) notifyReport() error {
	n := s.notify
	if n.overflow {
		// RFC 5465 §5.8: the server gives up and NOTIFY is off, as after
		// NOTIFY NONE, until the client sets it again.
		s.enc.Untagged().Atom(imap.OK).Code("NOTIFICATIONOVERFLOW").Text("Too many notifications, NOTIFY is off").End()
		s.setNotify(&notifyState{status: n.status})
		s.log.Info("notify overflow")
		return nil
	}
	pending := n.pending
	n.pending, n.seen = nil, nil
	for _, ev := range pending {
		var err error
		switch ev.Kind {
		case store.EventMessages:
			err = s.notifyMessages(ev.Mailbox)
		case store.EventMailboxCreated, store.EventMailboxDeleted, store.EventMailboxRenamed:
			err = s.notifyMailboxName(ev)
		case store.EventSubscription:
			err = s.notifySubscription(ev.Name)
		case store.EventMetadata:
			err = s.notifyMetadata(ev)
		}
		if err != nil {
			return err
		}
		if err := s.enc.Err(); err != nil {
			return &connError{err}
		}
	}
	return nil
}

// notifyMessages reports a change of messages in a mailbox other than the
// selected one with STATUS (RFC 5465 §5.1-§5.3). A change that leaves the
// number of messages, UIDNEXT and UIDVALIDITY as last reported is a flag
// change.
func (s *session) notifyMessages(id store.MailboxID) error {
	if s.sel != nil && s.sel.mb.ID == id {
		return nil // selected meanwhile: the view reports it
	}
	mb, err := s.srv.opt.Store.MailboxByID(s.ctx, s.user.Account, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted meanwhile (MailboxName reports that)
	}
	if err != nil {
		return err
	}
	if mb.NoSelect {
		return nil
	}
	return s.notifyStatus(mb, false)
}

// notifyStatus writes "* STATUS name (MESSAGES UIDNEXT UIDVALIDITY UNSEEN
// [HIGHESTMODSEQ])" when it says something new and the change is wanted;
// always reports it when initial (NOTIFY SET STATUS).
func (s *session) notifyStatus(mb *store.Mailbox, initial bool) error {
	n := s.notify
	st, err := s.srv.opt.Store.Status(s.ctx, s.user.Account, mb.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cur := notifyStatus{messages: st.Messages, unseen: st.Unseen, uidNext: st.UIDNext, uidValidity: st.UIDValidity, modseq: st.HighestModSeq}
	prev, known := n.status[mb.ID]
	if n.status == nil || len(n.status) >= notifyStatusMax && !known {
		n.status = map[store.MailboxID]notifyStatus{}
	}
	n.status[mb.ID] = cur
	if !initial {
		if known && prev == cur {
			return nil
		}
		if !n.wants(mb.Name, statusEvents(prev, cur, known)) {
			return nil
		}
	}
	e := s.enc
	e.Untagged().Atom("STATUS").Mailbox(mb.Name).BeginList()
	e.Atom("MESSAGES").Number(uint32(cur.messages))
	e.Atom("UIDNEXT").Number(uint32(cur.uidNext))
	e.Atom("UIDVALIDITY").Number(cur.uidValidity)
	e.Atom("UNSEEN").Number(uint32(cur.unseen))
	if s.condstore {
		e.Atom("HIGHESTMODSEQ").Number64(uint64(cur.modseq))
	}
	e.EndList().End()
	return nil
}

// statusEvents tells from two STATUS answers which message events
// happened in between (RFC 5465 §5.1-§5.3): new messages move UIDNEXT;
// expunges leave fewer messages than UIDNEXT's move explains (UIDs are
// given in order, so UIDNEXT moves by the number added); a change that
// is neither is a flag change. A new UIDVALIDITY is all of it. Without
// an earlier answer any message event may have happened.
func statusEvents(prev, cur notifyStatus, known bool) notifyEvents {
	if !known || prev.uidValidity != cur.uidValidity {
		return evMessageNew | evMessageExpunge | evFlagChange
	}
	var ev notifyEvents
	added := 0
	if cur.uidNext > prev.uidNext {
		ev |= evMessageNew
		added = int(cur.uidNext - prev.uidNext)
	}
	if cur.messages < prev.messages+added {
		ev |= evMessageExpunge
	}
	if ev == 0 {
		ev = evFlagChange
	}
	return ev
}

// notifyMailboxName reports a created, deleted or renamed mailbox with
// LIST (RFC 5465 §5.4): a deleted one as \NonExistent, a renamed one with
// its OLDNAME.
func (s *session) notifyMailboxName(ev store.Event) error {
	n := s.notify
	if !n.wants(ev.Name, evMailboxName) && !(ev.OldName != "" && n.wants(ev.OldName, evMailboxName)) {
		return nil
	}
	st := s.srv.opt.Store
	mb, err := st.Mailbox(s.ctx, s.user.Account, ev.Name)
	if errors.Is(err, store.ErrNotFound) {
		mb = nil
	} else if err != nil {
		return err
	}
	if ev.Kind == store.EventMailboxCreated && mb == nil {
		return nil // deleted again before we could tell
	}
	subscribed := mb != nil && mb.Subscribed
	if mb == nil {
		// RFC 5465 §5.4 with RFC 5258 §3: a deleted mailbox whose
		// name is still subscribed (RFC 3501 §6.3.6: the server does
		// not unsubscribe it) is "\NonExistent \Subscribed".
		subs, err := st.Subscriptions(s.ctx, s.user.Account)
		if err != nil {
			return err
		}
		subscribed = slices.Contains(subs, ev.Name)
	}
	s.writeNotifyList(ev.Name, mb, subscribed, ev.OldName)
	return nil
}

// notifySubscription reports a subscription change with LIST (RFC 5465
// §5.5): \Subscribed when the name is now subscribed.
func (s *session) notifySubscription(name string) error {
	n := s.notify
	st := s.srv.opt.Store
	subs, err := st.Subscriptions(s.ctx, s.user.Account)
	if err != nil {
		return err
	}
	on := slices.Contains(subs, name)
	was := n.subscribed[name]
	if n.subscribed != nil {
		if on {
			n.subscribed[name] = true
		} else {
			delete(n.subscribed, name)
		}
	}
	if !n.wantsSub(name, evSubscriptionChange, on || was) {
		return nil
	}
	mb, err := st.Mailbox(s.ctx, s.user.Account, name)
	if errors.Is(err, store.ErrNotFound) {
		mb = nil
	} else if err != nil {
		return err
	}
	s.writeNotifyList(name, mb, on, "")
	return nil
}

// writeNotifyList writes an unsolicited LIST response for NOTIFY.
func (s *session) writeNotifyList(name string, mb *store.Mailbox, subscribed bool, oldName string) {
	e := s.enc
	e.Untagged().Atom("LIST").BeginList()
	switch {
	case mb == nil:
		e.Atom(`\NonExistent`)
	case mb.NoSelect:
		e.Atom(`\Noselect`)
	}
	if subscribed {
		e.Atom(`\Subscribed`)
	}
	if mb != nil {
		for _, u := range mb.SpecialUse {
			e.Atom(u)
		}
	}
	e.EndList().String("/").Mailbox(name)
	if oldName != "" {
		// RFC 5465 §5.4: the OLDNAME extended data item.
		e.BeginList().String("OLDNAME").BeginList().Mailbox(oldName).EndList().EndList()
	}
	e.End()
}

// notifyMetadata reports changed annotations with an unsolicited
// METADATA response listing the entry names (RFC 5465 §5.6, §5.7; RFC
// 5464 §4.4.2). When the store does not say which entries changed, the
// current ones are named.
func (s *session) notifyMetadata(ev store.Event) error {
	n := s.notify
	st := s.srv.opt.Store
	var mb *store.Mailbox
	if ev.Mailbox == 0 {
		// Server annotations belong to no mailbox: any group that asks
		// for ServerMetadataChange wants them.
		want := false
		for i := range n.groups {
			want = want || n.groups[i].events&evServerMetadataChange != 0
		}
		if !want {
			return nil
		}
	} else {
		var err error
		mb, err = st.MailboxByID(s.ctx, s.user.Account, ev.Mailbox)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if !n.wants(mb.Name, evMailboxMetadataChange) {
			return nil
		}
	}
	names := ev.Entries
	if names == nil {
		all, err := s.metadataEntries(mb)
		if err != nil {
			return err
		}
		for name := range all {
			names = append(names, name)
		}
		slices.Sort(names)
	}
	if len(names) == 0 {
		return nil
	}
	e := s.enc
	e.Untagged().Atom("METADATA")
	s.writeMetadataMailbox(mb)
	for _, name := range names {
		e.AString(name)
	}
	e.End()
	return nil
}

// fetchNew writes the MessageNew fetch attributes of new messages in the
// selected mailbox (RFC 5465 §5.2), after their EXISTS. Body sections
// are sent as with .PEEK: a notification never sets \Seen.
func (s *session) fetchNew(uids mail.UIDSet, items []imap.FetchItem) error {
	v := s.sel
	c := &imap.Fetch{Items: items}
	c.UID = true
	p := planFetch(items)
	p.setsSeen = false
	cur := seqCursor{v: v}
	for m, err := range s.messages(uids, store.ListOptions{Summary: p.summary}) {
		if err != nil {
			return err
		}
		seq := cur.seq(m.UID)
		if seq == 0 || v.expunged.Contains(m.UID) {
			continue
		}
		if err := s.writeFetch(seq, m, c, p, false); err != nil {
			var ce *connError
			if errors.As(err, &ce) {
				return err
			}
			s.log.Warn("notify: fetch of a new message failed", "err", err)
		}
	}
	return nil
}
