package imapurl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// Store is what a Resolver reads and writes: the store's accounts,
// mailboxes, messages and bodies, and the mailbox access keys.
// *sqlite.Store implements it.
type Store interface {
	Account(ctx context.Context, name string) (*store.Account, error)
	Mailbox(ctx context.Context, acct store.AccountID, name string) (*store.Mailbox, error)
	Messages(ctx context.Context, acct store.AccountID, id store.MailboxID, uids mail.UIDSet, opt store.ListOptions) func(yield func(*store.Message, error) bool)
	OpenBody(ctx context.Context, blobID string) (store.Body, error)
	store.AccessKeys
}

// Options configures a Resolver.
type Options struct {
	// Store holds the mail and the keys; required.
	Store Store
	// Hostname is the server's name: the host of a URL of this server
	// (besides Requester.Local).
	Hostname string
	// Now is the clock for ;EXPIRE=; nil means time.Now.
	Now func() time.Time
}

// Resolver signs and resolves IMAP URLs: GENURLAUTH (Authorize),
// URLFETCH and BURL (Open, Fetch), CATENATE (OpenOwn). It is safe for
// concurrent use.
type Resolver struct {
	st       Store
	hostname string
	now      func() time.Time
}

// New returns a Resolver.
func New(opt Options) *Resolver {
	r := &Resolver{st: opt.Store, hostname: strings.TrimSuffix(opt.Hostname, "."), now: opt.Now}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// Requester is who asks for a URL: an IMAP session, or the message
// submission server on behalf of the user it authenticated.
type Requester struct {
	// Account and Name are the account of the session, or the one the
	// submission server acts for (Name as stored, Account.Name).
	Account store.AccountID
	Name    string
	// Submit marks the message submission server (BURL, RFC 4468): only
	// it may use "submit+USER" URLs, and only for USER (RFC 4467 §3). An
	// IMAP session never has it.
	Submit bool
	// Local is the address the client connected to; a URL whose host is
	// it names this server, as one that names Options.Hostname does. The
	// zero Addr: the hostname only.
	Local netip.Addr
}

// ErrInvalid is the answer to a URL that is not valid for the requester,
// for whatever reason: malformed, another server, a user or mailbox that
// does not exist, a wrong, tampered or reset token, another UIDVALIDITY,
// an expired URL, an access identifier that is not the requester's, a
// message that is gone. URLFETCH answers NIL, CATENATE NO [BADURL], BURL
// 554 (RFC 4468 §6); the reason is not told, so that a URL reveals
// nothing of another account.
var ErrInvalid = errors.New("invalid IMAP URL")

// Authorize signs a rump URL for the requester (GENURLAUTH, RFC 4467
// §6.2) and returns the authorized URL: the rump, ":internal:" and the
// token. The URL must be an absolute URL of this server that names the
// requester's own user (iuserauth is mandatory, §6.2 (2)), a mailbox of
// theirs that holds messages, a message there, and end with
// ";URLAUTH=<access>"; the access identifier may be "submit+USER",
// "user+USER" or "authuser" ("anonymous" is refused: postfach has no
// anonymous sessions, and a URL anyone may use would be a bearer token
// for a message). The mailbox's access key is made if it has none. A
// refusal is an *Error whose reason may go to the client (BAD, §6.2);
// other errors are the store's.
func (r *Resolver) Authorize(ctx context.Context, rump, mechanism string, req Requester) (string, error) {
	if !strings.EqualFold(mechanism, Mechanism) {
		return "", errf("unknown URLAUTH mechanism " + mechanism + " (postfach offers INTERNAL)")
	}
	u, err := Parse(rump)
	if err != nil {
		return "", err
	}
	switch {
	case u.Form != Absolute:
		return "", errf("GENURLAUTH needs an absolute imap:// URL")
	case u.Access == NoAccess:
		return "", errf("the URL must end with ;URLAUTH=<access>")
	case u.Mechanism != "":
		return "", errf("the URL is authorized already: give it without :mechanism:token")
	case u.Access == AccessAnonymous:
		return "", errf("anonymous URLAUTH is not offered: use user+NAME, authuser or submit+NAME")
	case !r.local(u.Host, req):
		return "", errf("the URL names another server")
	case u.User == "":
		return "", errf("the URL must name your user (imap://USER@host/...)")
	case !sameAccount(u.User, req.Name):
		return "", errf("the URL must name your own user")
	}
	mb, err := r.mailbox(ctx, req.Account, u)
	if errors.Is(err, ErrInvalid) {
		return "", errf("no such mailbox, or another UIDVALIDITY")
	}
	if err != nil {
		return "", err
	}
	found := false
	for m, err := range r.st.Messages(ctx, req.Account, mb.ID, mail.NewUIDSet(mail.UID(u.UID)), store.ListOptions{}) {
		if err != nil {
			return "", err
		}
		found = m != nil
	}
	if !found {
		return "", errf("no message with that UID")
	}
	key, err := r.st.EnsureAccessKey(ctx, req.Account, mb.ID)
	if err != nil {
		return "", fmt.Errorf("authorize url: %w", err)
	}
	return rump + ":" + strings.ToLower(Mechanism) + ":" + Sign(key, mb.UIDValidity, rump), nil
}

// Open resolves an authorized URL (URLFETCH, RFC 4467 §6.3; BURL, RFC
// 4468; CATENATE, RFC 4469 §3) for the requester and opens the part it
// names, read with the access of the URL's owner, the user in its server
// part (RFC 4467 §6.3). In order: the URL must be absolute, of this
// server, not expired, its access identifier must admit the requester,
// its owner and mailbox must exist with the UIDVALIDITY it gives (if
// any), the mailbox must have an access key and the token must be the
// one that key gives for the rump and the mailbox's UIDVALIDITY, and the
// message must still be there. Any failure is ErrInvalid; other errors
// are the store's (the caller answers NO for them, §6.3).
func (r *Resolver) Open(ctx context.Context, raw string, req Requester) (*Part, error) {
	u, err := Parse(raw)
	if err != nil {
		return nil, ErrInvalid
	}
	return r.OpenURL(ctx, u, req)
}

// OpenURL is Open of a parsed URL.
func (r *Resolver) OpenURL(ctx context.Context, u *URL, req Requester) (*Part, error) {
	if u.Form != Absolute || !u.Authorized() || !strings.EqualFold(u.Mechanism, Mechanism) ||
		u.User == "" || !r.local(u.Host, req) {
		return nil, ErrInvalid
	}
	if !u.Expire.IsZero() && !r.now().Before(u.Expire) {
		return nil, ErrInvalid
	}
	if !admits(u, req) {
		return nil, ErrInvalid
	}
	owner, _ := auth.SplitDevice(u.User)
	acct, err := r.st.Account(ctx, owner)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	mb, err := r.mailbox(ctx, acct.ID, u)
	if err != nil {
		return nil, err
	}
	key, err := r.st.AccessKey(ctx, acct.ID, mb.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	if !Verify(key, mb.UIDValidity, u) {
		return nil, ErrInvalid
	}
	return r.open(ctx, acct.ID, mb, u)
}

// OpenOwn resolves a URL without URLAUTH in the requester's own account
// (CATENATE, RFC 4469 §5): an absolute URL of this server that names the
// requester's user or none, a path-absolute one, or a relative one in
// sel, the selected mailbox (nil when none is). A URL of another user or
// server is ErrInvalid (RFC 4469 §3: only URLAUTH reaches those; see
// Open).
func (r *Resolver) OpenOwn(ctx context.Context, u *URL, req Requester, sel *store.Mailbox) (*Part, error) {
	if u.Access != NoAccess {
		return nil, ErrInvalid
	}
	switch u.Form {
	case Absolute:
		if !r.local(u.Host, req) || u.User != "" && !sameAccount(u.User, req.Name) {
			return nil, ErrInvalid
		}
	case Relative:
		if sel == nil {
			return nil, ErrInvalid
		}
		return r.open(ctx, req.Account, sel, u)
	}
	mb, err := r.mailbox(ctx, req.Account, u)
	if err != nil {
		return nil, err
	}
	return r.open(ctx, req.Account, mb, u)
}

// Fetch is Open for BURL (RFC 4468 §3): the bytes of the part as stored,
// and their length. The caller closes the reader.
func (r *Resolver) Fetch(ctx context.Context, raw string, req Requester) (io.ReadCloser, int64, error) {
	p, err := r.Open(ctx, raw, req)
	if err != nil {
		return nil, 0, err
	}
	rd, n, err := p.Open()
	if err != nil {
		p.Close()
		return nil, 0, err
	}
	return struct {
		io.Reader
		io.Closer
	}{rd, p}, n, nil
}

// admits reports whether the URL's access identifier lets the requester
// use it (RFC 4467 §3).
func admits(u *URL, req Requester) bool {
	if req.Name == "" {
		return false
	}
	switch u.Access {
	case AccessSubmit:
		// The IMAP server need not check the user of submit+ (§3: the
		// submission server does); this one knows whom the submission
		// server acts for, and checks it.
		return req.Submit && sameAccount(u.AccessUser, req.Name)
	case AccessUser:
		return sameAccount(u.AccessUser, req.Name)
	case AccessAuthUser:
		return true
	}
	return false // anonymous: not offered
}

// sameAccount reports whether a user named in a URL ("alice@example.org",
// or a login with a device, "alice@example.org#phone") is the account
// whose stored name is name, compared as the store compares names
// (mail.NameKey: not Unicode case folding, which takes "ſam" for "sam").
func sameAccount(user, name string) bool {
	addr, _ := auth.SplitDevice(user)
	return name != "" && mail.NameKey(addr) == mail.NameKey(name)
}

// local reports whether a URL's host names this server.
func (r *Resolver) local(host string, req Requester) bool {
	if host == "" {
		return false
	}
	if r.hostname != "" && strings.EqualFold(host, r.hostname) {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil && req.Local.IsValid() && a.Unmap() == req.Local.Unmap() {
		return true
	}
	return false
}

// mailbox looks up the URL's mailbox in acct: ErrInvalid when it does
// not exist, holds no messages or has another UIDVALIDITY than the URL.
func (r *Resolver) mailbox(ctx context.Context, acct store.AccountID, u *URL) (*store.Mailbox, error) {
	name, err := imap.CanonicalMailbox(u.Mailbox)
	if err != nil {
		return nil, ErrInvalid
	}
	mb, err := r.st.Mailbox(ctx, acct, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	if mb.NoSelect || u.UIDValidity != 0 && u.UIDValidity != mb.UIDValidity {
		return nil, ErrInvalid
	}
	return mb, nil
}

// open opens the message of the URL in mb.
func (r *Resolver) open(ctx context.Context, acct store.AccountID, mb *store.Mailbox, u *URL) (*Part, error) {
	var msg *store.Message
	for m, err := range r.st.Messages(ctx, acct, mb.ID, mail.NewUIDSet(mail.UID(u.UID)), store.ListOptions{Summary: true}) {
		if err != nil {
			return nil, err
		}
		msg = m
	}
	if msg == nil {
		return nil, ErrInvalid
	}
	body, err := r.st.OpenBody(ctx, msg.BlobID)
	if err != nil {
		return nil, err
	}
	p := &Part{body: body, sum: msg.Summary, sec: u.Spec}
	if p.sum == nil {
		p.sum = &message.Summary{}
	}
	if u.HasPartial {
		p.partial = imap.Partial{Offset: int64(u.Partial.Offset), Count: int64(u.Partial.Length)}
		if u.Partial.Length == 0 {
			// To the end of the section (imap.Partial's Count 0 means
			// the whole section, offset and all).
			p.partial.Count = 1 << 62
		}
	}
	return p, nil
}

// Part is the part of a message a URL names, open for reading. Close it.
type Part struct {
	body    store.Body
	sum     *message.Summary
	sec     imap.Section
	partial imap.Partial
}

// ErrNotPart is returned by OpenBinary for a section that names a header
// or text rather than a body part (RFC 5524 §3.1: BINARY then answers
// NIL).
var ErrNotPart = errors.New("section is not a body part")

// Open returns the section's bytes as stored (BODY[section]<partial>,
// RFC 9051 §6.4.5) and their length.
func (p *Part) Open() (io.Reader, int64, error) {
	return imap.OpenSection(p.body, p.sum, &p.sec, p.partial)
}

// OpenBinary returns the part's content with its Content-Transfer-Encoding
// undone (RFC 5524 §3.1 BINARY, as BINARY[part] of RFC 3516) and its
// length: ErrNotPart for a HEADER, TEXT or MIME section, and
// imap.ErrUnknownCTE for an encoding the server does not know.
func (p *Part) OpenBinary() (io.Reader, int64, error) {
	if p.sec.Text != imap.SectionAll {
		return nil, 0, ErrNotPart
	}
	if len(p.sec.Part) > 0 && imap.FindPart(&p.sum.Root, p.sec.Part) == nil {
		return nil, 0, ErrNotPart
	}
	return imap.OpenBinary(p.body, p.sum, p.sec.Part, p.partial)
}

// Structure returns the structure of the part (RFC 5524 §3.1
// BODYPARTSTRUCTURE), nil when the section names no body part.
func (p *Part) Structure() *message.Part {
	if p.sec.Text != imap.SectionAll {
		return nil
	}
	return imap.FindPart(&p.sum.Root, p.sec.Part)
}

// Close closes the message body.
func (p *Part) Close() error { return p.body.Close() }
