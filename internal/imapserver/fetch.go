package imapserver

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
)

// fetchPlan is what a FETCH needs from the store.
type fetchPlan struct {
	summary  bool // parse results (ENVELOPE, BODYSTRUCTURE, sections)
	body     bool // the message bytes
	setsSeen bool // a non-PEEK body item: \Seen is set (RFC 9051 §6.4.5)
	hasFlags bool
	hasUID   bool
	hasMod   bool
}

func planFetch(items []imap.FetchItem) fetchPlan {
	var p fetchPlan
	for i := range items {
		it := &items[i]
		switch it.Kind {
		case imap.FetchFlags:
			p.hasFlags = true
		case imap.FetchUID:
			p.hasUID = true
		case imap.FetchModSeq:
			p.hasMod = true
		case imap.FetchEnvelope, imap.FetchBody, imap.FetchBodyStructure, imap.FetchPreview:
			p.summary = true
		case imap.FetchBodySection:
			p.body = true
			if len(it.Section.Part) > 0 || it.Section.Text != imap.SectionAll {
				p.summary = true
			}
		case imap.FetchBinary, imap.FetchBinarySize:
			p.body = true
			if len(it.Section.Part) > 0 {
				p.summary = true
			}
		case imap.FetchRFC822:
			p.body = true
		case imap.FetchRFC822Header, imap.FetchRFC822Text:
			p.body, p.summary = true, true
		}
		if it.SetsSeen() {
			p.setsSeen = true
		}
	}
	return p
}

// emptySummary stands in where a section does not need parse results
// (BODY[] of the whole message).
var emptySummary = &message.Summary{}

// cmdFetch: FETCH and UID FETCH (RFC 9051 §6.4.5, §6.4.9), with BINARY
// (RFC 3516), PREVIEW (RFC 8970), SAVEDATE (RFC 8514), CHANGEDSINCE and
// VANISHED (RFC 7162 §3.1.4, §3.2.6). Results stream: messages are read
// from the store in batches and bodies from their blobs by offset.
func (s *session) cmdFetch(cmd imap.Command) error {
	c := cmd.(*imap.Fetch)
	v := s.sel
	uids, err := s.resolve(c.Set, c.UID)
	if err != nil {
		return err
	}
	p := planFetch(c.Items)
	if c.HasChangedSince || p.hasMod {
		s.condstore = true // RFC 7162 §3.1: CONDSTORE-enabling
	}
	st := s.srv.opt.Store
	acct := s.user.Account
	if c.Vanished {
		if err := s.fetchVanished(c); err != nil {
			return err
		}
	}
	if uids.IsEmpty() {
		return nil
	}
	var seenChanged mail.UIDSet
	if p.setsSeen && !v.readOnly {
		// One STORE for the whole command, before the data goes out,
		// so the FETCH responses carry the new flags.
		// Mail read again already has \Seen: the cache says so without
		// a write.
		res, ok := s.unchangedFlags(uids, store.FlagsAdd, mail.Flags{mail.FlagSeen})
		if !ok {
			var err error
			res, err = st.StoreFlags(s.ctx, acct, v.mb.ID, store.StoreFlagsRequest{UIDs: uids, Op: store.FlagsAdd, Flags: mail.Flags{mail.FlagSeen}})
			if err != nil {
				return err
			}
		}
		seenChanged = res.Changed
		v.addOwn(res.ModSeq, res.Changed)
		s.ownFlags(res)
	}
	opt := store.ListOptions{Summary: p.summary}
	if c.HasChangedSince {
		opt.ChangedSince = c.ChangedSince
	}
	cur := seqCursor{v: v}
	var failed error
	var damaged []mail.UID // messages whose body is damaged (see damagedFetch)
	var returned int
	defer func() {
		bodies := 0
		if hasMessageText(c.Items) {
			bodies = returned
		}
		s.traceFetch(c, returned, bodies)
	}()
	for m, err := range s.messages(uids, opt) {
		if err != nil {
			return err
		}
		seq := cur.seq(m.UID)
		if seq == 0 || v.expunged.Contains(m.UID) {
			continue
		}
		returned++
		if err := s.writeFetch(seq, m, c, p, seenChanged.Contains(m.UID)); err != nil {
			var ce *connError
			if errors.As(err, &ce) {
				return err
			}
			if errors.Is(err, store.ErrDamaged) {
				damaged = append(damaged, m.UID)
				continue
			}
			failed = err
		}
		if s.enc.Err() != nil {
			return &connError{s.enc.Err()}
		}
	}
	if failed == nil && len(damaged) > 0 {
		return damagedFetch(damaged)
	}
	return failed
}

// damagedFetch is the answer to a FETCH that could not return some
// messages because their stored bodies are damaged (the store has logged
// which and why). The FETCH responses of the other messages have gone out
// already: RFC 9051 §6.4.5 answers NO when the server cannot fetch the
// data asked for, and untagged data stands once sent (§2.2.2), so the
// client keeps what it got and learns which UIDs failed. SERVERBUG (RFC
// 5530 §3): the server broke its own invariant that a stored message can
// be read; retrying will not help until an operator repairs it.
func damagedFetch(uids []mail.UID) error {
	var set mail.UIDSet
	for _, u := range uids {
		set = set.Append(u)
	}
	what := "Message UID " + set.String() + " cannot be read: its stored copy is damaged"
	if len(uids) > 1 {
		what = "Messages UID " + set.String() + " cannot be read: their stored copies are damaged"
	}
	return no("SERVERBUG", what+" (the administrator can find it in the server log)")
}

// fetchVanished writes VANISHED (EARLIER) for UID FETCH ... (CHANGEDSINCE
// n VANISHED) (RFC 7162 §3.2.6): the UIDs of the set expunged since n,
// or, when tombstones that old are gone, every UID of the set that no
// longer exists.
func (s *session) fetchVanished(c *imap.Fetch) error {
	v := s.sel
	st := s.srv.opt.Store
	top := max(v.uidNext, 2) - 1
	set := imap.SeqSet{Ranges: c.Set.Ranges}.Resolve(uint32(top), nil)
	if c.Set.Saved {
		set = set.Union(s.saved)
	}
	set = set.Intersect(mail.UIDSet{{Lo: 1, Hi: top}})
	cs, err := st.Changes(s.ctx, s.user.Account, v.mb.ID, c.ChangedSince)
	if err != nil {
		return err
	}
	var vanished mail.UIDSet
	if cs.VanishedComplete {
		vanished = cs.Vanished.Intersect(set)
	} else {
		cur, _, err := st.UIDs(s.ctx, s.user.Account, v.mb.ID)
		if err != nil {
			return err
		}
		vanished = set.Diff(cur)
	}
	vanished = vanished.Diff(v.uids)
	if !vanished.IsEmpty() {
		s.enc.Untagged().Atom("VANISHED").BeginList().Atom("EARLIER").EndList().UIDSet(vanished).End()
	}
	return nil
}

// sendfileMin is the smallest literal sent with sendfile(2): below it the
// copy through the write buffer costs less than the extra system calls.
const sendfileMin = 64 << 10

// sendfileRange returns the file, offset and connection with which a
// section of a body can go out with sendfile(2): a large raw range of a
// body kept in a file that the store knows holds no NUL byte, on a
// connection without TLS or COMPRESS. f is nil otherwise.
func (s *session) sendfileRange(r io.Reader, n int64) (f *os.File, off int64, tc *net.TCPConn) {
	sr, ok := r.(*io.SectionReader)
	if !ok || n < sendfileMin || s.comp != nil {
		return nil, 0, nil
	}
	outer, off, _ := sr.Outer()
	bf, ok := outer.(store.BodyFile)
	if !ok {
		return nil, 0, nil
	}
	if bn, ok := outer.(store.BodyNUL); !ok {
		return nil, 0, nil
	} else if has, known := bn.HasNUL(); has || !known {
		// The bytes must pass through noNUL (a body stored before the
		// store recorded NUL, or one that holds it).
		return nil, 0, nil
	}
	if tc = netserve.PlainTCP(s.conn, s.tc); tc == nil {
		return nil, 0, nil
	}
	return bf.File(), off, tc
}

// writeFetch writes one "* seq FETCH (...)" response.
func (s *session) writeFetch(seq uint32, m *store.Message, c *imap.Fetch, p fetchPlan, seenChanged bool) error {
	e := s.enc
	sum := m.Summary
	if sum == nil {
		sum = emptySummary
	}
	var body store.Body
	if p.body {
		var err error
		body, err = s.srv.opt.Store.OpenBody(s.ctx, m.BlobID)
		if err != nil {
			return err
		}
		defer body.Close()
	}
	if p.hasFlags || seenChanged {
		s.announceKeywords(m.Flags) // RFC 9051 §7.3.5: FLAGS first
	}
	e.Untagged().Number(seq).Atom("FETCH").BeginList()
	// RFC 9051 §6.4.9: UID FETCH always returns UID; RFC 7162 §3.1.4:
	// CHANGEDSINCE returns MODSEQ.
	if (c.UID || s.condstore && seenChanged) && !p.hasUID {
		e.Atom("UID").Number(uint32(m.UID))
	}
	if seenChanged && !p.hasFlags {
		e.Atom("FLAGS")
		s.writeFlags(m.Flags, m.UID)
	}
	if (c.HasChangedSince || s.condstore && seenChanged) && !p.hasMod {
		e.Atom("MODSEQ").BeginList().Number64(uint64(m.ModSeq)).EndList()
	}
	var failed error
	for i := range c.Items {
		it := &c.Items[i]
		switch it.Kind {
		case imap.FetchFlags:
			e.Atom("FLAGS")
			s.writeFlags(m.Flags, m.UID)
		case imap.FetchUID:
			e.Atom("UID").Number(uint32(m.UID))
		case imap.FetchInternalDate:
			e.Atom("INTERNALDATE").DateTime(m.InternalDate)
		case imap.FetchRFC822Size:
			e.Atom("RFC822.SIZE").Number64(uint64(m.Size))
		case imap.FetchEnvelope:
			e.Atom("ENVELOPE").Envelope(sum.Root.Envelope)
		case imap.FetchBody:
			e.Atom("BODY").BodyStructure(&sum.Root, false)
		case imap.FetchBodyStructure:
			e.Atom("BODYSTRUCTURE").BodyStructure(&sum.Root, true)
		case imap.FetchModSeq:
			e.Atom("MODSEQ").BeginList().Number64(uint64(m.ModSeq)).EndList()
		case imap.FetchPreview:
			// RFC 8970 §3: the preview is computed at delivery.
			e.Atom("PREVIEW").String(sum.Preview)
		case imap.FetchSaveDate:
			e.Atom("SAVEDATE")
			if m.SaveDate.IsZero() || m.SaveDate.Unix() == 0 {
				e.Nil()
			} else {
				e.DateTime(m.SaveDate)
			}
		case imap.FetchEmailID:
			e.Atom("EMAILID").BeginList().Atom(safeObjectID(m.EmailID)).EndList()
		case imap.FetchThreadID:
			e.Atom("THREADID").Nil()
		case imap.FetchBodySection, imap.FetchRFC822, imap.FetchRFC822Header, imap.FetchRFC822Text:
			sec, name := it.Section, it
			switch it.Kind {
			case imap.FetchRFC822Header:
				sec = imap.Section{Text: imap.SectionHeader}
			case imap.FetchRFC822Text:
				sec = imap.Section{Text: imap.SectionTextBody}
			}
			r, n, err := imap.OpenSection(body, sum, &sec, it.Partial)
			if err != nil {
				return s.failFetch(err)
			}
			if f, off, tc := s.sendfileRange(r, n); f != nil {
				e.FetchItemName(name).LiteralSend(n, func() error {
					s.srv.sentByFile.Add(1)
					return netserve.SendFile(tc, f, off, n, s.srv.idle)
				})
				continue
			}
			e.FetchItemName(name).Literal(n, noNUL{r})
		case imap.FetchBinary:
			r, n, err := imap.OpenBinary(body, sum, it.Section.Part, it.Partial)
			if errors.Is(err, imap.ErrUnknownCTE) {
				failed = err
				continue
			}
			if err != nil {
				return s.failFetch(err)
			}
			e.FetchItemName(it).Literal8(n, r)
		case imap.FetchBinarySize:
			n, err := imap.BinarySize(body, sum, it.Section.Part)
			if errors.Is(err, imap.ErrUnknownCTE) {
				failed = err
				continue
			}
			if err != nil {
				return s.failFetch(err)
			}
			e.FetchItemName(it).Number64(uint64(n))
		}
	}
	e.EndList().End()
	return failed
}

// noNUL reads r with every NUL byte replaced by 0x80. RFC 9051 §4.3 and
// RFC 3501 §4.3 forbid NUL in a literal (only a literal8 may carry it,
// as BINARY does); a message may still hold NUL (a delivery that had
// it, a literal8 APPEND of 8-bit data). The length stays the same, so
// the literal's announced size does too; Dovecot makes the same choice.
type noNUL struct{ r io.Reader }

func (n noNUL) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	for b := p[:k]; ; {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			break
		}
		b[i] = 0x80
		b = b[i+1:]
	}
	return k, err
}

// failFetch handles a read error in the middle of a FETCH response: the
// response line cannot be completed, so the connection must end.
func (s *session) failFetch(err error) error {
	s.log.Error("fetch: reading message failed", "err", err)
	return &connError{err}
}

// safeObjectID keeps an object id within RFC 8474 §7 objectid syntax.
func safeObjectID(id string) string {
	if id == "" {
		return "NIL"
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return "NIL"
		}
	}
	return id
}

var _ io.Reader = (*io.SectionReader)(nil)
