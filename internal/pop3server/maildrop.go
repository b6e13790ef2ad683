package pop3server

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// policy is the POP3 behaviour for one account: the server's Options with
// the account's overrides (`postfach user set ADDRESS pop3.KEY VALUE`).
type policy struct {
	markSeen    bool
	hideDeleted bool
	deleteMode  DeleteMode
	deviceViews bool
}

// policy applies the account settings "pop3.mark_seen",
// "pop3.hide_deleted", "pop3.delete" and "pop3.device_views" to the
// server's defaults. Values that do not parse are ignored.
func (s *Server) policy(settings map[string]string) policy {
	p := policy{markSeen: s.opt.MarkSeen, hideDeleted: s.opt.HideDeleted, deleteMode: s.opt.Delete, deviceViews: s.opt.DeviceViews}
	boolSetting := func(key string, v *bool) {
		if b, err := strconv.ParseBool(settings[key]); err == nil {
			*v = b
		}
	}
	boolSetting("pop3.mark_seen", &p.markSeen)
	boolSetting("pop3.hide_deleted", &p.hideDeleted)
	boolSetting("pop3.device_views", &p.deviceViews)
	if m := DeleteMode(settings["pop3.delete"]); m.Valid() {
		p.deleteMode = m
	}
	return p
}

// msg is one message of the snapshot.
type msg struct {
	uid  mail.UID
	size int64
	blob string
	uidl string
	// seen: \Seen at login, or marked by this session's RETR.
	seen bool
	// deleted: DELEd in this session (RSET undoes it).
	deleted bool
	// gone: expunged by another client during the session.
	gone bool
}

// maildrop is the snapshot a session works on and what it needs to apply
// its deletions at QUIT.
type maildrop struct {
	s      *Server
	log    *slog.Logger
	key    maildropKey
	acct   store.AccountID
	device string
	pol    policy
	inbox  store.MailboxID
	msgs   []msg // in UID order; message number n is msgs[n-1]

	sub         store.Subscription
	origin      uint64      // tags this session's own store changes
	modseq      mail.ModSeq // changes up to here are reflected in msgs
	accountGone bool

	seen *seenMarker // nil unless pol.markSeen
}

// openMaildrop takes the snapshot of INBOX for an account's plain
// maildrop (device "") or one of its device views.
func openMaildrop(ctx context.Context, s *Server, acct *store.Account, device string, pol policy, log *slog.Logger) (_ *maildrop, err error) {
	st := s.opt.Store
	md := &maildrop{s: s, log: log, acct: acct.ID, device: device, pol: pol, origin: rand.Uint64() | 1}
	// Subscribe before reading, so no expunge between the read and the
	// first command goes unnoticed.
	md.sub = st.Subscribe(acct.ID)
	defer func() {
		if err != nil {
			md.sub.Close()
		}
	}()
	inbox, err := st.Mailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		return nil, fmt.Errorf("open inbox: %w", err)
	}
	md.inbox, md.modseq = inbox.ID, inbox.HighestModSeq
	view, err := st.POP3View(ctx, acct.ID, device, inbox.ID)
	if err != nil {
		return nil, fmt.Errorf("read pop3 view: %w", err)
	}
	if device != "" && view.Created.IsZero() {
		// Record a new device at its first login, so `postfach device
		// list` shows it before it has deleted anything.
		if err := st.HidePOP3(ctx, acct.ID, device, inbox.ID, nil); err != nil {
			return nil, fmt.Errorf("create pop3 view: %w", err)
		}
	}
	custom := false
	for m, err := range st.Messages(ctx, acct.ID, inbox.ID, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{}) {
		if err != nil {
			return nil, fmt.Errorf("list inbox: %w", err)
		}
		if view.Hidden.Contains(m.UID) || pol.hideDeleted && m.Flags.Has(mail.FlagDeleted) {
			continue
		}
		x := msg{uid: m.UID, size: m.Size, blob: m.BlobID, seen: m.Flags.Has(mail.FlagSeen)}
		if validUIDL(m.POPUID) {
			x.uidl = m.POPUID
			custom = true
		} else {
			x.uidl = derivedUIDL(m.UID, inbox.UIDValidity)
		}
		md.msgs = append(md.msgs, x)
	}
	if custom {
		dedupUIDLs(md.msgs, inbox.UIDValidity)
	}
	if pol.markSeen {
		md.seen = newSeenMarker(st, acct.ID, inbox.ID, md.origin, log)
	}
	return md, nil
}

// validUIDL reports whether s can be sent as a unique-id: 1 to 70
// characters in 0x21..0x7E (RFC 1939 §7).
func validUIDL(s string) bool {
	if len(s) == 0 || len(s) > 70 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// derivedUIDL is the UIDL of a message without a stored one: the UID and
// the UIDVALIDITY as 8 upper-case hex digits each (see the package doc).
func derivedUIDL(uid mail.UID, uidValidity uint32) string {
	const hex = "0123456789ABCDEF"
	var b [16]byte
	v := uint64(uid)<<32 | uint64(uidValidity)
	for i := 15; i >= 0; i-- {
		b[i] = hex[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// dedupUIDLs keeps UIDLs unique when stored ones collide: the first
// message (by UID) keeps its UIDL, a later one gets its derived UIDL, or
// that with "-" appended until it is unique.
func dedupUIDLs(msgs []msg, uidValidity uint32) {
	used := make(map[string]bool, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		if used[m.uidl] {
			m.uidl = derivedUIDL(m.uid, uidValidity)
			for used[m.uidl] {
				m.uidl += "-"
			}
		}
		used[m.uidl] = true
	}
}

// get returns message n (1-based) or the -ERR text for it.
func (md *maildrop) get(n int) (*msg, string) {
	if n < 1 || n > len(md.msgs) {
		return nil, "No such message"
	}
	m := &md.msgs[n-1]
	switch {
	case m.gone:
		return nil, "Message " + strconv.Itoa(n) + " was removed by another client"
	case m.deleted:
		return nil, "Message " + strconv.Itoa(n) + " already deleted"
	}
	return m, ""
}

// stat counts the messages not deleted and their octets (RFC 1939 §5).
func (md *maildrop) stat() (n int, size int64) {
	for i := range md.msgs {
		if m := &md.msgs[i]; !m.deleted && !m.gone {
			n++
			size += m.size
		}
	}
	return n, size
}

// rset undeletes what this session DELEd (RFC 1939 §5).
func (md *maildrop) rset() {
	for i := range md.msgs {
		md.msgs[i].deleted = false
	}
}

// modeName says what DELE means for this maildrop.
func (md *maildrop) modeName() string {
	if md.device != "" {
		return "device"
	}
	return string(md.pol.deleteMode)
}

// refresh applies what other clients changed since the last look: messages
// they expunged become gone. It costs a channel check when nothing
// happened, and a read of the changes otherwise.
func (md *maildrop) refresh(ctx context.Context) error {
	select {
	case <-md.sub.C():
	default:
		return nil
	}
	changed := false
	for _, ev := range md.sub.Drain() {
		switch {
		case ev.Kind == store.EventAccountDeleted:
			md.accountGone = true
		case ev.Kind == store.EventMessages && ev.Mailbox == md.inbox && ev.Origin != md.origin && ev.ModSeq > md.modseq,
			ev.Kind == store.EventOverflow:
			changed = true
		}
	}
	if !changed {
		return nil
	}
	cs, err := md.s.opt.Store.Changes(ctx, md.acct, md.inbox, md.modseq)
	if err != nil {
		return fmt.Errorf("read changes: %w", err)
	}
	if cs.VanishedComplete {
		for _, r := range cs.Vanished {
			md.markGone(func(u mail.UID) bool { return u >= r.Lo && u <= r.Hi }, r.Lo, r.Hi)
		}
	} else {
		uids, _, err := md.s.opt.Store.UIDs(ctx, md.acct, md.inbox)
		if err != nil {
			return fmt.Errorf("read uids: %w", err)
		}
		md.markGone(func(u mail.UID) bool { return !uids.Contains(u) }, 1, mail.MaxUID)
	}
	md.modseq = cs.HighestModSeq
	return nil
}

// markGone marks the messages with UIDs in [lo, hi] for which vanished is
// true as gone.
func (md *maildrop) markGone(vanished func(mail.UID) bool, lo, hi mail.UID) {
	i, _ := slices.BinarySearchFunc(md.msgs, lo, func(m msg, u mail.UID) int {
		switch {
		case m.uid < u:
			return -1
		case m.uid > u:
			return 1
		}
		return 0
	})
	for ; i < len(md.msgs) && md.msgs[i].uid <= hi; i++ {
		if m := &md.msgs[i]; !m.gone && vanished(m.uid) {
			m.gone = true
			md.log.Debug("message expunged by another client during the session", "uid", m.uid)
		}
	}
}

// update is the UPDATE state (RFC 1939 §6): it applies the session's
// deletions and returns how many messages were deleted. Seen flags are
// stored first.
func (md *maildrop) update(ctx context.Context) (int, error) {
	if md.seen != nil {
		md.seen.close()
	}
	var del mail.UIDSet
	n := 0
	for i := range md.msgs {
		if m := &md.msgs[i]; m.deleted && !m.gone {
			del = del.Append(m.uid)
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	st := md.s.opt.Store
	ctx = store.WithOrigin(ctx, md.origin)
	mode := md.modeName()
	var err error
	switch {
	case md.device != "":
		// In a device view DELE means "done on this device", whatever
		// pop3.delete says.
		err = st.HidePOP3(ctx, md.acct, md.device, md.inbox, del)
	case md.pol.deleteMode == DeleteHide:
		err = st.HidePOP3(ctx, md.acct, "", md.inbox, del)
	case md.pol.deleteMode == DeleteTrash:
		var trash store.MailboxID
		if trash, err = md.trash(ctx); err != nil {
			break
		}
		if trash != 0 {
			_, err = st.Move(ctx, md.acct, md.inbox, del, trash)
			break
		}
		md.log.Warn("pop3.delete is trash but the account has no \\Trash mailbox: expunging instead")
		mode = "expunge"
		_, err = st.Expunge(ctx, md.acct, md.inbox, del, false)
	default:
		_, err = st.Expunge(ctx, md.acct, md.inbox, del, false)
	}
	if err != nil {
		return 0, fmt.Errorf("apply %d deletions (%s): %w", n, mode, err)
	}
	if f := md.s.opt.Metrics.Deleted; f != nil {
		f(mode, n)
	}
	md.log.Info("messages deleted", "count", n, "mode", mode)
	return n, nil
}

// trash finds the account's \Trash special-use mailbox; 0 when it has
// none.
func (md *maildrop) trash(ctx context.Context) (store.MailboxID, error) {
	mbs, err := md.s.opt.Store.Mailboxes(ctx, md.acct)
	if err != nil {
		return 0, fmt.Errorf("find trash: %w", err)
	}
	for _, mb := range mbs {
		if !mb.NoSelect && mb.ID != md.inbox && slices.Contains(mb.SpecialUse, store.UseTrash) {
			return mb.ID, nil
		}
	}
	return 0, nil
}

// close ends the session's hold on the maildrop: the seen marker finishes,
// the subscription ends and the maildrop is free for the next session.
func (md *maildrop) close() {
	if md.seen != nil {
		md.seen.close()
	}
	md.sub.Close()
	md.s.unlockMaildrop(md.key)
}
