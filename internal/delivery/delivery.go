package delivery

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

// Store is the part of the store the pipeline uses. store.Store
// implements it.
type Store interface {
	Account(ctx context.Context, name string) (*store.Account, error)
	Accounts(ctx context.Context) ([]store.Account, error)
	Mailboxes(ctx context.Context, acct store.AccountID) ([]store.Mailbox, error)
	Usage(ctx context.Context, acct store.AccountID) (*store.Usage, error)
	Stage(ctx context.Context, r io.Reader, maxSize int64) (store.Staged, error)
	Deliver(ctx context.Context, body store.Staged, targets []store.DeliveryTarget) ([]store.DeliveryResult, error)
	DeliverAll(ctx context.Context, body store.Staged, targets []store.DeliveryTarget) ([]store.DeliveryResult, error)
}

var _ Store = store.Store(nil)

// Aliases is the part of store.Aliases that Resolve uses.
type Aliases interface {
	Alias(ctx context.Context, address string) (*store.Alias, error)
}

var _ Aliases = store.Aliases(nil)

// Options configures a Deliverer.
type Options struct {
	Store Store
	// Aliases looks aliases up; nil means there are none.
	Aliases Aliases
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

// Deliverer is the delivery pipeline (see the package documentation). It
// is safe for concurrent use.
type Deliverer struct {
	opt Options
	log *slog.Logger
}

// New returns a Deliverer.
func New(opt Options) *Deliverer {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{opt: opt, log: log}
}

// Envelope describes one message being delivered.
type Envelope struct {
	// From is the reverse-path; "" is the null sender <>.
	From string
	// Recipients, already resolved, each with at least one target.
	// Recipients that share an account and mailbox get one copy there.
	Recipients []*Recipient
	// Protocol is the Received: "with" value (RFC 3848): "LMTP", "ESMTP",
	// "ESMTPS", "UTF8SMTP", ..., or "local" for `postfach deliver`.
	Protocol string
	// Helo is the name the client gave; RemoteIP its address ("" for a
	// local pipe or unix socket).
	Helo, RemoteIP string
	// ID appears in the Received: header and in logs.
	ID string
	// Headers are header fields to prepend, each complete with its CRLF
	// (say "Authentication-Results: ...\r\n"): they go after Return-Path:
	// and before Received:, so that they sit above the rest of the header
	// as fields added by this server (RFC 8601 §5). The caller makes them
	// safe; they are not checked.
	Headers string
	// AllOrNothing delivers to every recipient or to none
	// (store.DeliverAll): SMTP has one reply for the whole message, so a
	// partial delivery followed by a failure reply would make the client
	// send the message again to the recipients that have it. LMTP answers
	// per recipient and does not set it.
	AllOrNothing bool
	// NoTrace stores the message without Return-Path: and Received:
	// (Headers are still prepended): submission's copy in the sender's
	// Sent mailbox is the message as the sender wrote it, not mail that
	// arrived.
	NoTrace bool
}

// Result is the outcome of Deliver.
type Result struct {
	// Errs holds one entry per Envelope.Recipients: nil when delivered to
	// every one of its targets. When one target failed, the error is that
	// target's (store.ErrNotDelivered when it was held back by another).
	Errs []error
	// Targets are the mailboxes stored into (or tried), once each, in the
	// order the recipients first named them.
	Targets []TargetResult
	// Size is the stored size, trace headers included.
	Size   int64
	BlobID string
}

// TargetResult is the outcome for one distinct target.
type TargetResult struct {
	// Target is the target, with Mailbox the name it was stored in when
	// SpecialUse chose it.
	Target Target
	// Stored says where the message is (mailbox, UIDVALIDITY, UID), when
	// Err is nil.
	Stored store.AppendResult
	Err    error
}

// Deliver reads the message from body, prepends Return-Path:,
// env.Headers and Received:, normalises line endings to CRLF, stages it
// once and stores it for every recipient. It returns only after the store
// has made the delivery durable. An error (rather than per-recipient
// errors in Result) applies to every recipient: a message over
// MaxMessageSize (wraps store.ErrTooBig), an empty one
// (store.ErrEmptyMessage), or a failure to stage (store.ErrDiskFull and
// others).
func (d *Deliverer) Deliver(ctx context.Context, env *Envelope, body io.Reader) (*Result, error) {
	if len(env.Recipients) == 0 {
		return nil, errors.New("deliver: no recipients")
	}
	for _, r := range env.Recipients {
		if len(r.Targets) == 0 {
			return nil, fmt.Errorf("deliver: recipient %s has no targets", r.Address)
		}
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

	p, err := d.plan(ctx, env.Recipients)
	if err != nil {
		return nil, err
	}
	results, err := d.store(ctx, staged, p, env.AllOrNothing)
	if err != nil {
		return nil, err
	}
	res := &Result{Errs: make([]error, len(env.Recipients)), Targets: make([]TargetResult, len(p.targets)),
		Size: staged.Size(), BlobID: staged.BlobID()}
	for j := range p.targets {
		res.Targets[j] = TargetResult{Target: p.resolved[j], Stored: results[j].AppendResult, Err: results[j].Err}
	}
	for i, idx := range p.index {
		// A target's own failure says more than ErrNotDelivered.
		for _, j := range idx {
			if e := results[j].Err; e != nil && (res.Errs[i] == nil || errors.Is(res.Errs[i], store.ErrNotDelivered)) {
				res.Errs[i] = e
			}
		}
	}
	return res, nil
}

// plan is where one message goes: the distinct store targets, and for
// each recipient the indexes of its own.
type plan struct {
	targets  []store.DeliveryTarget
	resolved []Target // targets[j] as a Target, Mailbox resolved
	index    [][]int  // per recipient, indexes into targets
}

// plan merges the recipients' targets: one per account and mailbox, with
// the flags of all that name it. A SpecialUse target is looked up in its
// account's mailboxes first.
func (d *Deliverer) plan(ctx context.Context, rcpts []*Recipient) (*plan, error) {
	p := &plan{index: make([][]int, len(rcpts))}
	var lists map[store.AccountID][]store.Mailbox
	for i, r := range rcpts {
		for _, t := range r.Targets {
			if t.SpecialUse != "" {
				if lists == nil {
					lists = map[store.AccountID][]store.Mailbox{}
				}
				mbs, ok := lists[t.Account]
				if !ok {
					var err error
					if mbs, err = d.opt.Store.Mailboxes(ctx, t.Account); err != nil && !errors.Is(err, store.ErrNotFound) {
						return nil, fmt.Errorf("deliver: mailboxes of %s: %w", t.Name, err)
					}
					lists[t.Account] = mbs
				}
				if k := slices.IndexFunc(mbs, func(mb store.Mailbox) bool { return slices.Contains(mb.SpecialUse, t.SpecialUse) }); k >= 0 {
					t.Mailbox = mbs[k].Name
				}
			}
			j := slices.IndexFunc(p.targets, func(o store.DeliveryTarget) bool {
				return o.Account == t.Account && o.Mailbox == t.Mailbox
			})
			if j < 0 {
				j = len(p.targets)
				p.targets = append(p.targets, store.DeliveryTarget{Account: t.Account, Mailbox: t.Mailbox})
				p.resolved = append(p.resolved, t)
			}
			for _, f := range t.Flags {
				if !slices.Contains(p.targets[j].Flags, f) {
					p.targets[j].Flags = append(p.targets[j].Flags, f)
				}
			}
			p.resolved[j].Flags = p.targets[j].Flags
			if !slices.Contains(p.index[i], j) {
				p.index[i] = append(p.index[i], j)
			}
		}
	}
	return p, nil
}

// deliverFunc is Store.Deliver or Store.DeliverAll.
type deliverFunc func(ctx context.Context, body store.Staged, targets []store.DeliveryTarget) ([]store.DeliveryResult, error)

// store stores the staged body into p's targets and returns one result
// per target. allOrNothing stores into all or none. Otherwise targets
// succeed or fail on their own, except that the targets of a recipient
// with several (an alias), and any target they share with other
// recipients, are stored together: were one member of a family stored
// and another not, the sender's retry for that recipient would give the
// first a second copy.
func (d *Deliverer) store(ctx context.Context, staged store.Staged, p *plan, allOrNothing bool) ([]store.DeliveryResult, error) {
	if allOrNothing {
		return callStore(ctx, d.opt.Store.DeliverAll, staged, p.targets)
	}
	// Group the targets that recipients tie together (union-find).
	parent := make([]int, len(p.targets))
	for j := range parent {
		parent[j] = j
	}
	find := func(j int) int {
		for parent[j] != j {
			parent[j] = parent[parent[j]]
			j = parent[j]
		}
		return j
	}
	tied := false
	for _, idx := range p.index {
		for _, j := range idx[1:] {
			if a, b := find(idx[0]), find(j); a != b {
				parent[b] = a
				tied = true
			}
		}
	}
	if !tied {
		return callStore(ctx, d.opt.Store.Deliver, staged, p.targets)
	}
	// One Deliver for the targets on their own, one DeliverAll per group
	// of several. A call that fails as a whole fails its own targets
	// only: the others may be stored already.
	groups := map[int][]int{}
	var roots []int
	for j := range p.targets {
		r := find(j)
		if len(groups[r]) == 0 {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], j)
	}
	var single []int
	calls := [][]int{}
	for _, r := range roots {
		if g := groups[r]; len(g) == 1 {
			single = append(single, g[0])
		} else {
			calls = append(calls, g)
		}
	}
	out := make([]store.DeliveryResult, len(p.targets))
	run := func(f deliverFunc, idx []int) {
		ts := make([]store.DeliveryTarget, len(idx))
		for k, j := range idx {
			ts[k] = p.targets[j]
		}
		res, err := callStore(ctx, f, staged, ts)
		for k, j := range idx {
			if err != nil {
				out[j].Err = err
			} else {
				out[j] = res[k]
			}
		}
	}
	for _, g := range calls {
		run(d.opt.Store.DeliverAll, g)
	}
	if len(single) > 0 {
		run(d.opt.Store.Deliver, single)
	}
	return out, nil
}

// callStore runs f and checks that it answered for every target.
func callStore(ctx context.Context, f deliverFunc, staged store.Staged, targets []store.DeliveryTarget) ([]store.DeliveryResult, error) {
	res, err := f(ctx, staged, targets)
	if err != nil {
		return nil, fmt.Errorf("deliver: %w", err)
	}
	for len(res) < len(targets) {
		res = append(res, store.DeliveryResult{Err: errors.New("deliver: store returned too few results")})
	}
	return res, nil
}

// traceHeaders returns the Return-Path: and Received: header fields, with
// env.Headers between them.
func (d *Deliverer) traceHeaders(env *Envelope, now time.Time) string {
	if env.NoTrace {
		return env.Headers
	}
	var b strings.Builder
	// RFC 5321 §4.4: the final delivery adds Return-Path with the
	// reverse-path of MAIL FROM.
	b.WriteString("Return-Path: <" + pathSafe(env.From) + ">\r\n")
	b.WriteString(env.Headers)
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
// in canonical form (mail.CanonicalMailbox: no control characters, quoted
// pairs only for `"` and `\`) is kept as it is, spaces and brackets
// included: RFC 5322 §3.4.1 allows it in an angle-addr.
func pathSafe(addr string) string {
	c, plain, ok := mail.CanonicalMailbox(addr)
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
// or BDAT reader's own limit, which wraps store.ErrTooBig).
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
	if err != nil && err != io.EOF && errors.Is(err, store.ErrTooBig) {
		l.tooBig = true
	}
	return n, err
}
