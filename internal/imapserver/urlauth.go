package imapserver

import (
	"context"
	"errors"
	"io"
	"net/netip"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/imapurl"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// URLAUTH (RFC 4467): GENURLAUTH signs URLs of the user's own messages,
// URLFETCH returns what valid URLs name (with the BINARY and
// BODYPARTSTRUCTURE of RFC 5524), RESETKEY voids what was signed. The
// keys, tokens and the rules of who may use a URL are internal/imapurl's;
// this file is the protocol. An IMAP session is never the submission
// server: "submit+USER" URLs are for BURL, and URLFETCH answers them
// NIL.

// initURLAuth sets up URLAUTH: a store that keeps mailbox access keys
// (store.AccessKeys) gets it advertised; any other store still resolves
// CATENATE URLs of the session's own mailboxes.
func (s *Server) initURLAuth() {
	st, ok := s.opt.Store.(imapurl.Store)
	if !ok {
		st = noAccessKeys{s.opt.Store}
	}
	s.urlauth = ok
	s.urls = imapurl.New(imapurl.Options{Store: st, Hostname: s.opt.Hostname})
}

// noAccessKeys stands in for the keys of a store without them: no URL is
// ever signed or valid.
type noAccessKeys struct{ store.Store }

func (noAccessKeys) AccessKey(context.Context, store.AccountID, store.MailboxID) ([]byte, error) {
	return nil, store.ErrNotFound
}

func (noAccessKeys) EnsureAccessKey(context.Context, store.AccountID, store.MailboxID) ([]byte, error) {
	return nil, errors.New("store keeps no access keys")
}

func (noAccessKeys) ResetAccessKeys(context.Context, store.AccountID, store.MailboxID) error {
	return errors.New("store keeps no access keys")
}

// urlCapabilities are the capabilities of this file, listed only when the
// store keeps access keys.
const urlCapabilities = " URLAUTH URLAUTH=BINARY"

// requester is the session as imapurl sees it: its account, and the
// address the client connected to (a URL may name the server by it).
// Never the submission server.
func (s *session) requester() imapurl.Requester {
	req := imapurl.Requester{Account: s.user.Account, Name: s.user.Name}
	if ap, err := netip.ParseAddrPort(s.conn.LocalAddr().String()); err == nil {
		req.Local = ap.Addr().Unmap()
	}
	return req
}

// errNoURLAuth answers the URLAUTH commands when the store keeps no keys.
var errNoURLAuth = bad("", "Command not supported")

// cmdGenURLAuth: GENURLAUTH (RFC 4467 §6.2). Every URL is signed before
// anything is written: a URL that is refused makes the command BAD with
// the reason, and no URL is returned.
func (s *session) cmdGenURLAuth(cmd imap.Command) error {
	c := cmd.(*imap.GenURLAuth)
	if !s.srv.urlauth {
		return errNoURLAuth
	}
	req := s.requester()
	out := make([]string, 0, len(c.URLs))
	for _, u := range c.URLs {
		full, err := s.srv.urls.Authorize(s.ctx, u.URL, u.Mechanism, req)
		var ue *imapurl.Error
		if errors.As(err, &ue) {
			return bad("", "Cannot authorize "+imap.QuoteString(u.URL, false)+": "+ue.Reason)
		}
		if err != nil {
			return err
		}
		out = append(out, full)
	}
	e := s.enc.Untagged().Atom("GENURLAUTH")
	for _, u := range out {
		e.String(u)
	}
	e.End()
	return nil
}

// cmdResetKey: RESETKEY (RFC 4467 §6.1): without a mailbox every key of
// the user goes; with one, that mailbox's, and the tagged OK carries
// URLMECH (§8 allows it there). INTERNAL is the only mechanism.
func (s *session) cmdResetKey(cmd imap.Command) error {
	c := cmd.(*imap.ResetKey)
	if !s.srv.urlauth {
		return errNoURLAuth
	}
	for _, m := range c.Mechanisms {
		if m != imapurl.Mechanism {
			return bad("", "Unknown URLAUTH mechanism "+m+" (postfach offers INTERNAL)")
		}
	}
	st := s.srv.opt.Store.(store.AccessKeys)
	if !c.HasMailbox {
		if err := st.ResetAccessKeys(s.ctx, s.user.Account, 0); err != nil {
			return err
		}
		s.okText = "All keys removed"
		return nil
	}
	mb, err := s.lookupMailbox(c.Mailbox, "")
	if err != nil {
		return err
	}
	if err := st.ResetAccessKeys(s.ctx, s.user.Account, mb.ID); err != nil {
		return err
	}
	s.okCode, s.okText = "URLMECH "+imapurl.Mechanism, "Key reset"
	return nil
}

// urlData is what URLFETCH returns for one URL, opened before the
// response begins.
type urlData struct {
	part *imapurl.Part // nil: NIL
	// structure is the BODYPARTSTRUCTURE when asked for.
	structure *message.Part
	// r and n are the data: the part as stored, or decoded for BINARY.
	r io.Reader
	n int64
	// binaryNil: BINARY was asked for and cannot be given (RFC 5524
	// §3.1: "BINARY NIL").
	binaryNil bool
}

// cmdURLFetch: URLFETCH (RFC 4467 §6.3) with the extended form of RFC
// 5524 §3: "(" url [BODYPARTSTRUCTURE] [BODY / BINARY] ")". Each URL is
// resolved by imapurl with the session as requester; one that is not
// valid for it, for whatever reason, gets NIL, and the reason is not
// told. The parts are opened before the response begins, so that a
// store failure can still be answered NO (§6.3); the data then streams.
// One untagged URLFETCH response carries every URL, in order.
func (s *session) cmdURLFetch(cmd imap.Command) error {
	c := cmd.(*imap.URLFetch)
	if !s.srv.urlauth {
		return errNoURLAuth
	}
	req := s.requester()
	data := make([]urlData, len(c.URLs))
	defer func() {
		for _, d := range data {
			if d.part != nil {
				d.part.Close()
			}
		}
	}()
	for i, it := range c.URLs {
		p, err := s.srv.urls.Open(s.ctx, it.URL, req)
		if errors.Is(err, imapurl.ErrInvalid) {
			continue
		}
		if err != nil {
			return err
		}
		d := &data[i]
		d.part = p
		if it.BodyPartStructure {
			if d.structure = p.Structure(); d.structure == nil {
				// A header or text section has no body structure: the
				// URL cannot give what was asked.
				p.Close()
				d.part = nil
				continue
			}
		}
		switch {
		case it.Binary:
			d.r, d.n, err = p.OpenBinary()
			if errors.Is(err, imapurl.ErrNotPart) || errors.Is(err, imap.ErrUnknownCTE) {
				d.binaryNil, err = true, nil
			}
		case it.Body || !it.BodyPartStructure:
			d.r, d.n, err = p.Open()
		}
		if err != nil {
			return err
		}
	}
	e := s.enc.Untagged().Atom("URLFETCH")
	for i, it := range c.URLs {
		d := &data[i]
		e.String(it.URL)
		switch {
		case d.part == nil:
			e.Nil()
		case !it.Extended || !it.BodyPartStructure && !it.Body && !it.Binary:
			e.Literal(d.n, noNUL{d.r})
		default:
			if it.BodyPartStructure {
				e.BeginList().Atom("BODYPARTSTRUCTURE").BodyStructure(d.structure, true).EndList()
			}
			switch {
			case it.Binary && d.binaryNil:
				e.BeginList().Atom("BINARY").Nil().EndList()
			case it.Binary:
				e.BeginList().Atom("BINARY").Literal8(d.n, d.r).EndList()
			case it.Body:
				e.BeginList().Atom("BODY").Literal(d.n, noNUL{d.r}).EndList()
			}
		}
		if e.Err() != nil {
			return &connError{e.Err()}
		}
	}
	e.End()
	return nil
}
