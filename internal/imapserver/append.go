package imapserver

import (
	"errors"
	"io"
	"time"

	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/imapurl"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// Line endings: every message is stored with CRLF line endings
// (message.NewCRLFReader), as SMTP and LMTP deliveries are, so the parse
// offsets and every later FETCH see one form (RFC 5322 §2.1, §2.3: CR and
// LF only together). A literal8 (BINARY, RFC 3516) may hold bare CR or LF
// on purpose in the content of its parts with Content-Transfer-Encoding
// "binary": those parts are stored base64 encoded
// (message.EncodeBinaryParts; RFC 3516 §4.3 allows it as no data is
// lost, and Dovecot does the same), so BODY[] gives all of them to
// clients without BINARY and BINARY[] decodes them back; the rest of the
// message (headers, text parts, MIME structure) is text, and its line
// endings are made CRLF like a literal's. A CATENATE is encoded the same
// way as a whole, whatever its parts are (literals, literal8s, URLs).
// Only a message with a part header over 64 KiB, which EncodeBinaryParts
// passes through unparsed from there on, could have binary content made
// CRLF: such a message is no MIME any client builds.

// appendStream is what APPEND and REPLACE share.
type appendStream interface {
	Next() (*imap.AppendMessage, error)
	Abort() error
}

// cmdAppend: APPEND (RFC 9051 §6.3.12) with MULTIAPPEND (RFC 3502, all or
// nothing: one store.Append), CATENATE (RFC 4469), UTF8 (RFC 6855 §4) and
// APPENDUID (RFC 4315 §3).
func (s *session) cmdAppend(cmd imap.Command) error {
	c := cmd.(*imap.Append)
	mb, err := s.lookupMailbox(c.Mailbox, "TRYCREATE")
	if err != nil {
		return s.abortStream(c, err)
	}
	res, deduped, err := s.appendMessages(c, mb, false)
	if err != nil {
		return err
	}
	s.okCode = "APPENDUID " + itoa64(int64(res.UIDValidity)) + " " + uidList(res.UIDs)
	if deduped {
		// Some messages were the submission server's copies: they were
		// not added (no EXISTS), at most their flags changed, which the
		// view reads from the store.
		if s.sel != nil && s.sel.mb.ID == mb.ID && res.ModSeq > 0 {
			s.sel.need(res.ModSeq)
		}
		return nil
	}
	if s.sel != nil && s.sel.mb.ID == mb.ID {
		done, err := s.appendedOwn(res)
		if err != nil {
			return err
		}
		if !done {
			s.sel.need(res.ModSeq)
		}
	}
	return nil
}

// abortStream answers a streaming command that is refused before its
// data was read: the rest is skipped (never inviting a synchronizing
// literal) and err is the answer.
func (s *session) abortStream(c appendStream, err error) error {
	if aerr := c.Abort(); aerr != nil {
		var pe *imap.ParseError
		if errors.As(aerr, &pe) {
			if pe.Fatal {
				return pe
			}
			return err
		}
		return &connError{aerr}
	}
	return err
}

// appendMessages reads the messages of an APPEND or REPLACE into staged
// bodies and appends them in one store call.
//
// A message of an APPEND (not of a REPLACE, single) that the submission
// server already saved in this mailbox (Options.SentCopies: same
// Message-ID and From, within delivery.SentWindow, and still there) is
// not added again: the server's copy stays, it has the Bcc recipients,
// and gets the APPEND's flags; its UID stands in the APPENDUID, in the
// order of the messages (RFC 4315 §3; a MULTIAPPEND stays all or nothing
// for the messages it adds). deduped reports that this happened.
func (s *session) appendMessages(c appendStream, mb *store.Mailbox, single bool) (res *store.AppendResult, deduped bool, err error) {
	st := s.srv.opt.Store
	var msgs []store.NewMessage
	var slots []appendSlot
	var quota appendQuota
	defer func() {
		for _, m := range msgs {
			m.Body.Discard()
		}
	}()
	for {
		am, err := c.Next()
		if err != nil {
			return nil, false, s.streamError(err)
		}
		if am == nil {
			break
		}
		flags, err := storeFlags(am.Flags)
		if err == nil {
			err = s.appendKeywordRoom(mb, flags)
		}
		if err != nil {
			return nil, false, s.abortStream(c, err)
		}
		var announced int64
		if am.Literal != nil {
			announced = am.Literal.Size
		}
		if over, err := quota.refuse(s, announced); err != nil || over {
			if err == nil {
				err = store.ErrOverQuota
			}
			return nil, false, s.abortStream(c, err)
		}
		var src io.Reader
		var cat *catReader
		if am.Catenate {
			cat = &catReader{s: s, msg: am}
			src = message.NewCRLFReader(message.EncodeBinaryParts(cat))
		} else {
			r, err := am.Literal.Open()
			if err != nil {
				return nil, false, s.streamError(err)
			}
			src = r
			if am.Literal.Binary {
				src = message.NewCRLFReader(message.EncodeBinaryParts(r))
			} else {
				src = message.NewCRLFReader(r)
			}
		}
		limit := s.srv.maxMsg
		if cat == nil {
			// RFC 7889 §3: APPENDLIMIT bounds the message the client
			// sends, and the parser checked the literal's size against
			// it. The stored form may be larger (a bare LF becomes CRLF,
			// a binary part base64: at most twice the size), and must
			// not be refused for it.
			limit = 2 * s.srv.maxMsg
		}
		staged, err := st.Stage(s.ctx, src, limit)
		if err != nil {
			if cat != nil && cat.err != nil {
				err = cat.err
			}
			var pe *imap.ParseError
			var ce *connError
			if errors.As(err, &pe) || errors.As(err, &ce) {
				return nil, false, err
			}
			if errors.Is(err, store.ErrTooBig) {
				err = no("TOOBIG", "Message too big")
			}
			return nil, false, s.abortStream(c, err)
		}
		if cat == nil {
			// Stage read the literal to its end; anything the reader
			// still holds means the client sent less than announced.
			if _, err := io.Copy(io.Discard, src); err != nil {
				staged.Discard()
				return nil, false, s.streamError(err)
			}
		}
		if !single {
			if uid, ok := s.sentCopy(mb, staged); ok {
				staged.Discard()
				slots = append(slots, appendSlot{dup: true, uid: uid, flags: flags})
				continue
			}
		}
		msgs = append(msgs, store.NewMessage{Body: staged, Flags: flags, InternalDate: am.Date})
		slots = append(slots, appendSlot{})
	}
	if len(slots) == 0 {
		return nil, false, bad("", "No message")
	}
	if len(msgs) == len(slots) {
		res, err := st.Append(s.ctx, s.user.Account, mb.ID, msgs)
		return res, false, err
	}
	res = &store.AppendResult{Mailbox: mb.ID, UIDValidity: mb.UIDValidity}
	if len(msgs) > 0 {
		if res, err = st.Append(s.ctx, s.user.Account, mb.ID, msgs); err != nil {
			return nil, false, err
		}
	}
	uids := make([]mail.UID, 0, len(slots))
	k := 0
	for _, sl := range slots {
		if !sl.dup {
			uids = append(uids, res.UIDs[k])
			k++
			continue
		}
		uids = append(uids, sl.uid)
		if len(sl.flags) == 0 {
			continue
		}
		fr, err := st.StoreFlags(s.ctx, s.user.Account, mb.ID, store.StoreFlagsRequest{UIDs: mail.NewUIDSet(sl.uid), Op: store.FlagsAdd, Flags: sl.flags})
		if err != nil {
			return nil, false, err
		}
		res.ModSeq = max(res.ModSeq, fr.ModSeq)
	}
	res.UIDs = uids
	return res, true, nil
}

// appendSlot is one message of an APPEND: added, or the submission
// server's copy (dup) with the UID it has and the flags to add to it.
type appendSlot struct {
	dup   bool
	uid   mail.UID
	flags mail.Flags
}

// sentCopy returns the UID of the submission server's copy of the staged
// message in mb (Options.SentCopies), if it is still there and not
// \Deleted.
func (s *session) sentCopy(mb *store.Mailbox, staged store.Staged) (mail.UID, bool) {
	sc := s.srv.opt.SentCopies
	sum := staged.Summary()
	if sc == nil || sum == nil {
		return 0, false
	}
	id, from, ok := delivery.SentKey(sum.Root.Envelope)
	if !ok {
		return 0, false
	}
	cp, ok := sc.Find(s.user.Account, mb.ID, id, from)
	if !ok || cp.UIDValidity != mb.UIDValidity {
		return 0, false
	}
	found := false
	for m, err := range s.srv.opt.Store.Messages(s.ctx, s.user.Account, mb.ID, mail.NewUIDSet(cp.UID), store.ListOptions{}) {
		if err != nil {
			return 0, false
		}
		found = m.UID == cp.UID && !m.Flags.Has(mail.FlagDeleted)
	}
	return cp.UID, found
}

// streamError classifies an error from reading a streaming command.
func (s *session) streamError(err error) error {
	var pe *imap.ParseError
	if errors.As(err, &pe) {
		return pe
	}
	return &connError{err}
}

// catReader streams the parts of a CATENATE message (RFC 4469 §5) in
// order: TEXT parts from the connection, URL parts from stored messages.
type catReader struct {
	s      *session
	msg    *imap.AppendMessage
	cur    io.Reader
	closer io.Closer
	done   bool
	err    error // the error that ended the stream, for the response
}

func (c *catReader) Read(p []byte) (int, error) {
	for {
		if c.cur != nil {
			n, err := c.cur.Read(p)
			if err == io.EOF {
				c.closeCur()
				if n > 0 {
					return n, nil
				}
				continue
			}
			if err != nil {
				c.err = &connError{err}
			}
			return n, err
		}
		if c.done {
			return 0, io.EOF
		}
		part, err := c.msg.NextPart()
		if err != nil {
			c.err = c.s.streamError(err)
			return 0, c.err
		}
		if part == nil {
			c.done = true
			return 0, io.EOF
		}
		if part.Text != nil {
			r, err := part.Text.Open()
			if err != nil {
				c.err = c.s.streamError(err)
				return 0, c.err
			}
			// Line endings are made CRLF, and binary parts encoded,
			// over the whole message (cmdAppend).
			c.cur = r
			continue
		}
		r, closer, err := c.s.openURL(part.URL)
		if err != nil {
			// RFC 4469 §5: BADURL names the URL that failed.
			c.err = no("BADURL "+imap.QuoteString(part.URL, false), "Invalid or unknown message URL")
			return 0, c.err
		}
		c.cur, c.closer = r, closer
	}
}

func (c *catReader) closeCur() {
	if c.closer != nil {
		c.closer.Close()
		c.closer = nil
	}
	c.cur = nil
}

// openURL resolves a CATENATE URL (RFC 4469 §5) with imapurl: a URL
// without URLAUTH names a message of the session's own account (absolute
// with this server and the session's user or none, path-absolute, or
// relative to the selected mailbox); one of another user or server is
// refused (§3). A URL with URLAUTH (RFC 4467) may name another user's
// message, which is then read with its owner's access once the token is
// valid for this session (RFC 4469 §3, RFC 4467 §6.3). Any URL that is
// not valid, for whatever reason, is errBadURL: the answer does not tell
// why.
func (s *session) openURL(raw string) (io.Reader, io.Closer, error) {
	u, err := imapurl.Parse(raw)
	if err != nil {
		return nil, nil, errBadURL
	}
	req := s.requester()
	var p *imapurl.Part
	if u.Access != imapurl.NoAccess {
		p, err = s.srv.urls.OpenURL(s.ctx, u, req)
	} else {
		var sel *store.Mailbox
		if s.sel != nil {
			sel = &s.sel.mb
		}
		p, err = s.srv.urls.OpenOwn(s.ctx, u, req, sel)
	}
	if errors.Is(err, imapurl.ErrInvalid) {
		return nil, nil, errBadURL
	}
	if err != nil {
		return nil, nil, err
	}
	r, _, err := p.Open()
	if err != nil {
		p.Close()
		return nil, nil, err
	}
	return r, p, nil
}

var errBadURL = errors.New("bad url")

// cmdReplace: REPLACE and UID REPLACE (RFC 8508): APPEND of one message,
// then the expunge of the replaced one. The APPENDUID goes in an
// untagged OK before the EXPUNGE (or VANISHED).
func (s *session) cmdReplace(cmd imap.Command) error {
	c := cmd.(*imap.Replace)
	v := s.sel
	var target mail.UID
	switch {
	case c.UID && c.Target == imap.Star:
		target = v.uids.Max()
	case c.UID:
		if v.uids.Contains(mail.UID(c.Target)) {
			target = mail.UID(c.Target)
		}
	case c.Target == imap.Star:
		target = v.uidAt(v.n)
	case int(c.Target) <= v.n:
		target = v.uidAt(int(c.Target))
	default:
		return s.abortStream(c, errBadSeq)
	}
	if target == 0 || v.expunged.Contains(target) {
		return s.abortStream(c, no("NONEXISTENT", "No such message"))
	}
	if v.readOnly {
		return s.abortStream(c, no("READ-ONLY", "Mailbox is read-only"))
	}
	mb, err := s.lookupMailbox(c.Mailbox, "TRYCREATE")
	if err != nil {
		return s.abortStream(c, err)
	}
	res, _, err := s.appendMessages(c, mb, true)
	if err != nil {
		return err
	}
	s.enc.Untagged().Atom(imap.OK).Code("APPENDUID " + itoa64(int64(res.UIDValidity)) + " " + uidList(res.UIDs)).Text("Replacement appended").End()
	if mb.ID == v.mb.ID {
		v.need(res.ModSeq)
	}
	ex, err := s.srv.opt.Store.Expunge(s.ctx, s.user.Account, v.mb.ID, mail.NewUIDSet(target), false)
	if err != nil {
		return err
	}
	v.need(ex.ModSeq)
	return nil
}

var _ = time.Time{}

// appendKeywordRoom refuses an APPEND whose keywords would take mailbox
// mb past maxKeywords: counted against what the session has announced
// when mb is selected, and against the keywords in use in mb when the
// store can tell them (store.MailboxKeywords) and the APPEND brings one
// the session does not know.
func (s *session) appendKeywordRoom(mb *store.Mailbox, flags mail.Flags) error {
	var kws []string
	v := s.sel
	if v != nil && v.mb.ID != mb.ID {
		v = nil
	}
	for _, f := range flags {
		if len(f) == 0 || f[0] == '\\' {
			continue
		}
		if v != nil {
			if _, ok := v.known[f]; ok || v.keywords.Has(f) {
				continue
			}
		}
		kws = append(kws, f)
	}
	if len(kws) == 0 {
		return nil
	}
	if v != nil {
		if err := keywordRoom(v, flags); err != nil {
			return err
		}
	}
	kl, ok := s.srv.opt.Store.(store.MailboxKeywords)
	if !ok {
		return nil
	}
	have, err := kl.MailboxKeywords(s.ctx, s.user.Account, mb.ID)
	if err != nil {
		return err
	}
	n := len(have)
	for _, f := range kws {
		if !mail.Flags(have).Has(f) {
			n++
		}
	}
	if n > maxKeywords {
		return errKeywordLimit
	}
	return nil
}
