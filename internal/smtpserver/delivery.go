package smtpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// Errors of recipient resolution and delivery. Map them to protocol replies
// with errors.Is; the store's ErrTooBig, ErrDiskFull and ErrEmptyMessage
// pass through wrapped.
var (
	// ErrNotLocal: the recipient's domain is not one of the local domains.
	ErrNotLocal = errors.New("recipient domain is not local")
	// ErrUnknownUser: a local domain, but no such account.
	ErrUnknownUser = errors.New("no such user")
	// ErrBadAddress: the recipient is not a valid address.
	ErrBadAddress = errors.New("invalid address")
)

// DelivererOptions configures a Deliverer.
type DelivererOptions struct {
	Store store.Store
	// Hostname is this server's name, for Received: headers.
	Hostname string
	// Domains are the local domains.
	Domains []string
	// Postmaster is the account that receives postmaster@ mail for every
	// local domain; "" means the first account created.
	Postmaster string
	// MaxMessageSize limits the body as received (before the headers the
	// Deliverer adds); 0 means no limit.
	MaxMessageSize int64
	Logger         *slog.Logger
}

// Deliverer is the delivery pipeline shared by SMTP, LMTP and
// `postfach deliver`: recipient resolution, trace headers, CRLF
// normalisation, one Stage per message and one Deliver for all recipients.
// It is safe for concurrent use.
type Deliverer struct {
	opt DelivererOptions
	log *slog.Logger
}

// NewDeliverer returns a Deliverer.
func NewDeliverer(opt DelivererOptions) *Deliverer {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{opt: opt, log: log}
}

// Recipient is a resolved recipient.
type Recipient struct {
	// Address is the recipient as the client gave it.
	Address string
	Account *store.Account
	// Mailbox is the destination mailbox; "" is INBOX.
	Mailbox string
}

// IsLocal reports whether domain is one of the local domains.
func (d *Deliverer) IsLocal(domain string) bool {
	return slices.ContainsFunc(d.opt.Domains, func(x string) bool { return strings.EqualFold(x, domain) })
}

// Resolve maps a recipient address to its account: local domains only,
// "+detail" delivers to the base account, postmaster@ any local domain to
// the postmaster account (RFC 5321 §4.5.1). Errors: ErrBadAddress,
// ErrNotLocal, ErrUnknownUser, or a wrapped store error (temporary).
func (d *Deliverer) Resolve(ctx context.Context, addr string) (*Recipient, error) {
	a, err := mail.ParseAddress(addr)
	if err != nil {
		// RFC 5321 §4.1.1.3: "postmaster" without a domain must be accepted.
		if strings.EqualFold(addr, "postmaster") && len(d.opt.Domains) > 0 {
			a = mail.Address{Local: "postmaster", Domain: d.opt.Domains[0]}
		} else {
			return nil, fmt.Errorf("%w: %q", ErrBadAddress, addr)
		}
	}
	if !d.IsLocal(a.Domain) {
		return nil, fmt.Errorf("%w: %s", ErrNotLocal, a.Domain)
	}
	base := a.WithoutDetail()
	acct, err := d.opt.Store.Account(ctx, base.String())
	if errors.Is(err, store.ErrNotFound) && strings.EqualFold(base.Local, "postmaster") {
		acct, err = d.postmaster(ctx)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownUser, base)
	}
	if err != nil {
		return nil, fmt.Errorf("look up recipient: %w", err)
	}
	return &Recipient{Address: addr, Account: acct}, nil
}

// postmaster returns the configured postmaster account, or the first
// account created.
func (d *Deliverer) postmaster(ctx context.Context) (*store.Account, error) {
	if d.opt.Postmaster != "" {
		return d.opt.Store.Account(ctx, d.opt.Postmaster)
	}
	accts, err := d.opt.Store.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	if len(accts) == 0 {
		return nil, store.ErrNotFound
	}
	first := slices.MinFunc(accts, func(a, b store.Account) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return &first, nil
}

// Envelope describes one message being delivered.
type Envelope struct {
	// From is the reverse-path; "" is the null sender <>.
	From string
	// Recipients, already resolved. Several recipients of one account get
	// one copy.
	Recipients []*Recipient
	// Protocol is the Received: "with" value: "LMTP", "ESMTP", "ESMTPS",
	// or "local" for `postfach deliver`.
	Protocol string
	// Helo is the name the client gave; RemoteIP its address ("" for a
	// local pipe or unix socket).
	Helo, RemoteIP string
	// ID appears in the Received: header and in logs.
	ID string
	// AllOrNothing delivers to every recipient or to none
	// (store.DeliverAll): SMTP has one reply for the whole message, so a
	// partial delivery followed by a failure reply would make the client
	// send the message again to the recipients that have it. LMTP answers
	// per recipient and does not set it.
	AllOrNothing bool
}

// Result is the outcome of Deliver.
type Result struct {
	// Errs holds one entry per Envelope.Recipients: nil when delivered.
	Errs []error
	// Size is the stored size, trace headers included.
	Size   int64
	BlobID string
}

// Deliver reads the message from body, prepends Return-Path: and Received:,
// normalises line endings to CRLF, stages it once and delivers it to every
// recipient in one Store.Deliver call. It returns only after the store has
// made the delivery durable. An error (rather than per-recipient errors in
// Result) applies to every recipient: a message over MaxMessageSize (wraps
// store.ErrTooBig), an empty one (store.ErrEmptyMessage), or a failure to
// stage (store.ErrDiskFull and others).
func (d *Deliverer) Deliver(ctx context.Context, env *Envelope, body io.Reader) (*Result, error) {
	if len(env.Recipients) == 0 {
		return nil, errors.New("deliver: no recipients")
	}
	lr := &limitReader{r: body, n: d.opt.MaxMessageSize}
	header := d.traceHeaders(env, time.Now())
	staged, err := d.opt.Store.Stage(ctx, io.MultiReader(strings.NewReader(header), message.NewCRLFReader(lr)), 0)
	if lr.tooBig {
		if staged != nil {
			staged.Discard()
		}
		return nil, fmt.Errorf("message over %d bytes: %w", d.opt.MaxMessageSize, store.ErrTooBig)
	}
	if err != nil {
		return nil, fmt.Errorf("stage message: %w", err)
	}
	defer staged.Discard()
	if lr.read == 0 {
		return nil, fmt.Errorf("stage message: %w", store.ErrEmptyMessage)
	}

	// One target per account+mailbox; recipients map onto targets.
	var targets []store.DeliveryTarget
	index := make([]int, len(env.Recipients))
	for i, r := range env.Recipients {
		t := store.DeliveryTarget{Account: r.Account.ID, Mailbox: r.Mailbox}
		j := slices.IndexFunc(targets, func(o store.DeliveryTarget) bool {
			return o.Account == t.Account && o.Mailbox == t.Mailbox
		})
		if j < 0 {
			j = len(targets)
			targets = append(targets, t)
		}
		index[i] = j
	}
	deliver := d.opt.Store.Deliver
	if env.AllOrNothing {
		deliver = d.opt.Store.DeliverAll
	}
	results, err := deliver(ctx, staged, targets)
	if err != nil {
		return nil, fmt.Errorf("deliver: %w", err)
	}
	res := &Result{Errs: make([]error, len(env.Recipients)), Size: staged.Size(), BlobID: staged.BlobID()}
	for i, j := range index {
		if j >= len(results) {
			res.Errs[i] = errors.New("deliver: store returned too few results")
			continue
		}
		res.Errs[i] = results[j].Err
	}
	return res, nil
}

// traceHeaders returns the Return-Path: and Received: header fields.
func (d *Deliverer) traceHeaders(env *Envelope, now time.Time) string {
	var b strings.Builder
	// RFC 5321 §4.4: the final delivery adds Return-Path with the
	// reverse-path of MAIL FROM.
	b.WriteString("Return-Path: <" + pathSafe(env.From) + ">\r\n")
	// RFC 5321 §4.4 Time-stamp-line:
	// "Received:" FWS Stamp, Stamp = From-domain By-domain Opt-info [CFWS] ";" FWS date-time
	b.WriteString("Received: ")
	if env.Helo != "" || env.RemoteIP != "" {
		b.WriteString("from ")
		helo := headerSafe(env.Helo)
		if helo == "" {
			helo = "unknown"
		}
		b.WriteString(helo)
		if env.RemoteIP != "" {
			b.WriteString(" ([" + headerSafe(env.RemoteIP) + "])")
		}
		b.WriteString("\r\n\t")
	}
	b.WriteString("by " + headerSafe(d.opt.Hostname) + " (postfach)")
	if env.Protocol != "" {
		b.WriteString(" with " + headerSafe(env.Protocol))
	}
	if env.ID != "" {
		b.WriteString(" id " + headerSafe(env.ID))
	}
	if len(env.Recipients) == 1 {
		// Only for a single recipient: naming all would disclose Bcc.
		b.WriteString("\r\n\tfor <" + headerSafe(env.Recipients[0].Address) + ">")
	}
	b.WriteString(";\r\n\t" + now.Format("Mon, 02 Jan 2006 15:04:05 -0700") + "\r\n")
	return b.String()
}

// pathSafe is headerSafe for an address, except that a quoted local part
// in canonical form (canonicalMailbox: no control characters, quoted
// pairs only for `"` and `\`) is kept as it is, spaces and brackets
// included: RFC 5322 §3.4.1 allows it in an angle-addr.
func pathSafe(addr string) string {
	c, plain, ok := canonicalMailbox(addr)
	if !ok || plain || c != addr || len(addr) > 320 {
		return headerSafe(addr)
	}
	at := strings.LastIndexByte(addr, '@')
	return addr[:at+1] + headerSafe(addr[at+1:])
}

// headerSafe keeps client-supplied strings from breaking the header:
// control characters, spaces and brackets become "?".
func headerSafe(s string) string {
	if len(s) > 255 {
		s = s[:255]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r == 0x7f || r == '<' || r == '>' || r == '(' || r == ')' || r == ';' {
			return '?'
		}
		return r
	}, s)
}

// limitReader counts bytes and fails with store.ErrTooBig once more than n
// (> 0) were read; it also notices a too-large error from below (the DATA
// or BDAT reader's own limit).
type limitReader struct {
	r      io.Reader
	n      int64
	read   int64
	tooBig bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.tooBig {
		return 0, store.ErrTooBig
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	if l.n > 0 && l.read > l.n {
		l.tooBig = true
		return 0, store.ErrTooBig
	}
	if err != nil && err != io.EOF && isTooLarge(err) {
		l.tooBig = true
	}
	return n, err
}
