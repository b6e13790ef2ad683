package imapserver

import (
	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// maxKeywords bounds the keywords of a mailbox, as the session knows
// them (announced in FLAGS), and so of each message: without a bound one
// client could make every FLAGS response and every message's flags
// arbitrarily large for all devices. RFC 9051 §7.1 lets a server refuse
// new keywords; PERMANENTFLAGS then leaves out "\*", and a STORE or
// APPEND that would add one gets NO [LIMIT] (RFC 5530 §3).
const maxKeywords = 256

// errKeywordLimit answers a STORE or APPEND past maxKeywords.
var errKeywordLimit = no("LIMIT", "Too many keywords in this mailbox (at most 256)")

// storeFlags validates the flags of STORE and APPEND: system flags as
// stored, keywords as atoms; \Recent cannot be stored and is dropped
// (RFC 3501 §2.3.2).
func storeFlags(fl mail.Flags) (mail.Flags, error) {
	var out mail.Flags
	n := 0
	for _, f := range fl {
		switch {
		case f == `\Recent`:
			continue
		case len(f) > 0 && f[0] == '\\':
			if !mail.IsSystemFlag(f) {
				return nil, bad("", "Invalid system flag "+f)
			}
		case !mail.ValidKeyword(f):
			return nil, bad("", "Invalid keyword")
		default:
			if n++; n > maxKeywords {
				return nil, errKeywordLimit
			}
		}
		out = out.With(f)
	}
	return out, nil
}

// keywordRoom refuses flags that would take the keywords of the selected
// mailbox v past maxKeywords, counting those v has announced.
func keywordRoom(v *selected, flags mail.Flags) error {
	n := len(v.keywords)
	for _, f := range flags {
		if len(f) > 0 && f[0] == '\\' {
			continue
		}
		if _, ok := v.known[f]; !ok && !v.keywords.Has(f) {
			n++
		}
	}
	if n > maxKeywords {
		return errKeywordLimit
	}
	return nil
}

// cmdStore: STORE and UID STORE (RFC 9051 §6.4.6), with UNCHANGEDSINCE
// (RFC 7162 §3.1.3). The FETCH responses of this session's own change are
// written here (none for .SILENT, except the MODSEQ a CONDSTORE client
// needs), and never repeated as unsolicited updates.
func (s *session) cmdStore(cmd imap.Command) error {
	c := cmd.(*imap.Store)
	v := s.sel
	if v.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	flags, err := storeFlags(c.Flags)
	if err != nil {
		return err
	}
	if c.Op != imap.StoreRemove {
		if err := keywordRoom(v, flags); err != nil {
			return err
		}
	}
	uids, err := s.resolve(c.Set, c.UID)
	if err != nil {
		return err
	}
	if c.HasUnchangedSince {
		s.condstore = true // RFC 7162 §3.1: CONDSTORE-enabling
	}
	uids = uids.Diff(v.expunged)
	if uids.IsEmpty() {
		return nil
	}
	var res *store.StoreFlagsResult
	if c.HasUnchangedSince && c.UnchangedSince == 0 {
		// RFC 7162 §3.1.3: every message has a MODSEQ above 0, so
		// every message fails the test.
		res = &store.StoreFlagsResult{Modified: uids}
	} else {
		op := store.FlagsReplace
		switch c.Op {
		case imap.StoreAdd:
			op = store.FlagsAdd
		case imap.StoreRemove:
			op = store.FlagsRemove
		}
		var ok bool
		if !c.HasUnchangedSince {
			res, ok = s.unchangedFlags(uids, op, flags)
		}
		if !ok {
			res, err = s.srv.opt.Store.StoreFlags(s.ctx, s.user.Account, v.mb.ID, store.StoreFlagsRequest{
				UIDs: uids, Op: op, Flags: flags, UnchangedSince: c.UnchangedSince,
			})
			if err != nil {
				return err
			}
		}
	}
	v.addOwn(res.ModSeq, res.Changed)
	s.ownFlags(res)
	if c.Op != imap.StoreRemove && len(res.Updated) > 0 {
		// New keywords are announced (FLAGS, PERMANENTFLAGS) also when
		// no FETCH shows them (.SILENT), so the session's count of the
		// mailbox's keywords, which keywordRoom checks, includes them.
		s.announceKeywords(flags)
	}
	if len(v.contexts) > 0 && !res.Changed.IsEmpty() {
		// Search contexts follow the session's own changes too (RFC
		// 5267 §4.3); the view reads them before the tagged response.
		v.need(res.ModSeq)
	}
	cur := seqCursor{v: v}
	for _, u := range res.Updated {
		seq := cur.seq(u.UID)
		if seq == 0 {
			continue
		}
		switch {
		case !c.Silent:
			s.writeFlagsFetch(seq, u.UID, u.Flags, u.ModSeq, true)
		case s.condstore && res.Changed.Contains(u.UID):
			// RFC 7162 §3.1.3: the new MODSEQ even for .SILENT.
			s.writeFlagsFetch(seq, u.UID, nil, u.ModSeq, false)
		}
	}
	if !res.Modified.IsEmpty() {
		// RFC 7162 §3.1.3: MODIFIED lists what failed the test, as
		// sequence numbers for STORE and UIDs for UID STORE.
		set := res.Modified
		if !c.UID {
			var seqs mail.UIDSet
			cur := seqCursor{v: v}
			for _, r := range res.Modified {
				for u := r.Lo; ; u++ {
					if q := cur.seq(u); q != 0 {
						seqs = seqs.Append(mail.UID(q))
					}
					if u == r.Hi {
						break
					}
				}
			}
			set = seqs
		}
		s.okCode = "MODIFIED " + set.String()
		s.okText = "Conditional STORE failed"
	}
	return nil
}

// cmdCopy: COPY and UID COPY (RFC 9051 §6.4.7), with COPYUID (RFC 4315
// §3).
func (s *session) cmdCopy(cmd imap.Command) error {
	c := cmd.(*imap.Copy)
	return s.copyMove(c.Set, c.Mailbox, c.UID, false)
}

// cmdMove: MOVE and UID MOVE (RFC 9051 §6.4.8, RFC 6851): COPYUID goes
// in an untagged OK, then the EXPUNGE (or VANISHED) responses.
func (s *session) cmdMove(cmd imap.Command) error {
	c := cmd.(*imap.Move)
	return s.copyMove(c.Set, c.Mailbox, c.UID, true)
}

func (s *session) copyMove(set imap.SeqSet, mailbox string, uid, move bool) error {
	v := s.sel
	if move && v.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	uids, err := s.resolve(set, uid)
	if err != nil {
		return err
	}
	dst, err := s.lookupMailbox(mailbox, "TRYCREATE")
	if err != nil {
		return err
	}
	uids = uids.Diff(v.expunged)
	if uids.IsEmpty() {
		return nil
	}
	st := s.srv.opt.Store
	var res *store.CopyResult
	if move {
		res, err = st.Move(s.ctx, s.user.Account, v.mb.ID, uids, dst.ID)
	} else {
		res, err = st.Copy(s.ctx, s.user.Account, v.mb.ID, uids, dst.ID)
	}
	if err != nil {
		return err
	}
	code := ""
	if len(res.Source) > 0 {
		code = "COPYUID " + itoa64(int64(res.UIDValidity)) + " " + uidList(res.Source) + " " + uidList(res.Dest)
	}
	if dst.ID == v.mb.ID {
		// A COPY or MOVE into the selected mailbox itself (neither RFC
		// 3501 §6.4.7 nor RFC 6851 forbids it): the copies get new UIDs
		// and are reported like any new message; a MOVE then expunges
		// the originals, reported first (catchUp).
		v.need(res.DestModSeq)
		v.expungeFirst = move
	}
	if move {
		if code != "" {
			s.enc.Untagged().Atom(imap.OK).Code(code).Text("Moved").End()
		}
		v.need(res.ExpungeModSeq)
		return nil
	}
	s.okCode = code
	return nil
}

// uidList formats UIDs in the order given, as a sequence set whose order
// matches the other set of COPYUID (RFC 4315 §3: the two sets correspond
// element by element).
func uidList(uids []mail.UID) string {
	b := make([]byte, 0, 8*len(uids))
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendUint(b, uint64(uids[i]))
		if j > i {
			b = append(b, ':')
			b = appendUint(b, uint64(uids[j]))
		}
		i = j + 1
	}
	return string(b)
}

func appendUint(b []byte, n uint64) []byte {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, buf[i:]...)
}
