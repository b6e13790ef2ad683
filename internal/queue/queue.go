package queue

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/dnsr"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// Store is the part of the store the queue uses.
type Store interface {
	store.Queue
	Stage(ctx context.Context, r io.Reader, maxSize int64) (store.Staged, error)
	OpenBody(ctx context.Context, blobID string) (store.Body, error)
	AccountByID(ctx context.Context, id store.AccountID) (*store.Account, error)
}

// Local is the delivery pipeline the queue uses for its reports into the
// sender's INBOX, and to tell local domains.
type Local interface {
	Deliver(ctx context.Context, env *delivery.Envelope, body io.Reader) (*delivery.Result, error)
	IsLocal(domain string) bool
}

var _ Local = (*delivery.Deliverer)(nil)

// Relay is a smarthost: all mail goes to it instead of the recipients'
// MX hosts.
type Relay struct {
	// Host is "host:port".
	Host string
	// Username and Password, when set, authenticate with AUTH PLAIN or
	// LOGIN, only ever over TLS.
	Username, Password string
	// TLS is RelayStartTLS, RelayImplicit or RelayNone (plain text; the
	// caller allows it only for loopback).
	TLS string
}

// Relay TLS modes.
const (
	RelayStartTLS = "starttls"
	RelayImplicit = "implicit"
	RelayNone     = "none"
)

// DefaultRetry is the default retry schedule: the wait after the first,
// second, ... failed attempt; the last value repeats.
var DefaultRetry = []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour}

// Metrics receives counts; nil fields are skipped.
type Metrics struct {
	// Delivered is called once per recipient with its result:
	// "delivered", "deferred", "failed" or "expired".
	Delivered func(result string)
}

// Options configures a Queue.
type Options struct {
	Store Store
	// Local delivers reports (DSNs) into the sender's INBOX and says
	// which domains are local.
	Local Local
	// Resolver answers DNS questions; required unless Relay is set.
	Resolver dnsr.Resolver
	// Signer, when set, adds DKIM signatures to each message before it
	// is stored in the queue.
	Signer delivery.Signer
	// Hostname is the name this server gives in EHLO and in its reports.
	Hostname string
	// Port is the TCP port of remote MX hosts; 0 means 25.
	Port int
	// Retry is the retry schedule; nil means DefaultRetry.
	Retry []time.Duration
	// Lifetime is how long a message is retried before the queue gives
	// up; 0 means 5 days.
	Lifetime time.Duration
	// DelayNotice is the age of a message at which its sender is told it
	// is still undelivered; 0 means 4 hours, negative never.
	DelayNotice time.Duration
	// Concurrency bounds simultaneous connections; 0 means 10.
	Concurrency int
	// MaxMessageSize bounds a queued message; 0 means no limit.
	MaxMessageSize int64
	// RootCAs verifies certificates (MTA-STS policies, enforce mode, the
	// relay); nil means the system's roots.
	RootCAs *x509.CertPool
	// STSPort is the HTTPS port MTA-STS policies are fetched from; 0
	// means 443 (tests and labs serve them elsewhere).
	STSPort int
	// Relay, when set, sends everything to a smarthost.
	Relay *Relay
	// Timeout bounds each SMTP command; 0 means 5 minutes.
	Timeout time.Duration
	// Poll is how often the queue looks for due entries besides being
	// woken by Enqueue and Retry; 0 means 30 seconds.
	Poll time.Duration
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
	// TempDir holds the spool of a message being signed; "" means
	// os.TempDir().
	TempDir string
	Logger  *slog.Logger
	Metrics Metrics
}

// ErrLocalRecipient: a recipient is in a local domain; the caller
// delivers it through internal/delivery instead.
var ErrLocalRecipient = errors.New("recipient is local")

// ErrBadRecipient: a recipient is not an address the queue can send to.
var ErrBadRecipient = errors.New("invalid recipient address")

// ErrStopped: the queue is shutting down.
var ErrStopped = errors.New("queue stopped")

// Queue is the outbound queue. Create it with New, then Start; Shutdown
// stops it. Enqueue and the admin methods are safe for concurrent use.
type Queue struct {
	opt   Options
	log   *slog.Logger
	retry []time.Duration
	sts   *stsCache
	wake  chan struct{}
	sem   chan struct{} // a slot per connection (Options.Concurrency)
	size  atomic.Int64  // entries in the queue (Len)

	mu      sync.Mutex // guards the fields below
	started bool
	stop    context.CancelFunc // cancels the runner and every delivery
	active  int                // entries being delivered
	done    chan struct{}      // closed when the runner ended
	wg      sync.WaitGroup     // delivery goroutines
}

var _ delivery.Enqueuer = (*Queue)(nil)

// lease is how long a claimed entry stays with its attempt; an attempt
// is cut off before it ends.
const lease = time.Hour

// New returns a Queue.
func New(opt Options) (*Queue, error) {
	if opt.Store == nil || opt.Local == nil {
		return nil, errors.New("queue: no store or delivery")
	}
	if opt.Resolver == nil && opt.Relay == nil {
		return nil, errors.New("queue: no resolver")
	}
	if opt.Port == 0 {
		opt.Port = 25
	}
	if opt.Lifetime <= 0 {
		opt.Lifetime = 5 * 24 * time.Hour
	}
	if opt.DelayNotice == 0 {
		opt.DelayNotice = 4 * time.Hour
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 10
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Minute
	}
	if opt.Poll <= 0 {
		opt.Poll = 30 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	q := &Queue{opt: opt, log: opt.Logger, retry: opt.Retry, wake: make(chan struct{}, 1),
		sem: make(chan struct{}, opt.Concurrency)}
	if len(q.retry) == 0 {
		q.retry = DefaultRetry
	}
	q.sts = newSTSCache(q)
	return q, nil
}

func (q *Queue) now() time.Time { return q.opt.Now() }

// Start releases the leases a previous run left (the store serves this
// server only) and starts delivering.
func (q *Queue) Start(ctx context.Context) error {
	if err := q.opt.Store.ReleaseQueueLeases(ctx); err != nil {
		return err
	}
	entries, err := q.opt.Store.QueueEntries(ctx)
	if err != nil {
		return err
	}
	q.size.Store(int64(len(entries)))
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started {
		return errors.New("queue: started twice")
	}
	q.started = true
	rctx, cancel := context.WithCancel(context.Background())
	q.stop = cancel
	q.done = make(chan struct{})
	go q.run(rctx)
	return nil
}

// Shutdown stops taking due entries and cuts off the deliveries in
// progress (their entries stay queued: a message that was sent but not
// yet recorded is sent again after the restart, see docs/sending.md). It
// returns when they have ended, or with ctx's error.
func (q *Queue) Shutdown(ctx context.Context) error {
	q.mu.Lock()
	if !q.started {
		q.mu.Unlock()
		return nil
	}
	q.stop()
	done := q.done
	q.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("deliveries still running: %w", ctx.Err())
	}
}

// Len returns the number of messages in the queue.
func (q *Queue) Len() int { return int(q.size.Load()) }

// Kick makes the queue look for due entries now.
func (q *Queue) Kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Enqueue implements delivery.Enqueuer: it stores the message (DKIM
// signed when a Signer is set) and its envelope durably and returns the
// entry's ID. Recipients in local domains are refused
// (ErrLocalRecipient): they never go through the queue.
func (q *Queue) Enqueue(ctx context.Context, m *delivery.Outbound, body io.Reader) (string, error) {
	if len(m.To) == 0 {
		return "", errors.New("enqueue: no recipients")
	}
	rcpts := make([]store.QueueRecipient, len(m.To))
	for i, to := range m.To {
		a, err := mail.ParseAddress(to)
		if err != nil {
			return "", fmt.Errorf("enqueue: %q: %w", to, ErrBadRecipient)
		}
		if q.opt.Local.IsLocal(a.Domain) {
			return "", fmt.Errorf("enqueue: %s: %w", to, ErrLocalRecipient)
		}
		rcpts[i] = store.QueueRecipient{Address: to}
	}
	if m.From != "" {
		if _, err := mail.ParseAddress(m.From); err != nil {
			return "", fmt.Errorf("enqueue: sender %q: %w", m.From, mail.ErrBadAddress)
		}
	}
	eightBit := m.EightBit
	r := message.NewCRLFReader(body)
	var staged store.Staged
	var err error
	if q.opt.Signer != nil {
		staged, eightBit, err = q.signAndStage(ctx, r, eightBit)
	} else {
		staged, err = q.opt.Store.Stage(ctx, r, q.opt.MaxMessageSize)
	}
	if err != nil {
		return "", fmt.Errorf("enqueue: %w", err)
	}
	defer staged.Discard()
	now := q.now()
	id, err := q.opt.Store.Enqueue(ctx, &store.QueueEntry{Account: m.Account, From: m.From, SMTPUTF8: m.SMTPUTF8,
		EightBit: eightBit, Created: now, NextAttempt: now, Recipients: rcpts}, staged)
	if err != nil {
		return "", err
	}
	q.size.Add(1)
	q.log.Info("queued", "queue_id", id, "from", m.From, "rcpts", len(rcpts), "size", staged.Size())
	q.Kick()
	return strconv.FormatInt(id, 10), nil
}

// spoolMem is the size up to which a message being signed is held in
// memory; a larger one goes to a temporary file.
const spoolMem = 1 << 20

// signAndStage reads the message, signs it for its From: domain and
// stages the signature fields and the message. A message that is signed
// is converted to 7 bits first when it has 8-bit content (RFC 6376 §5.3:
// so that no hop's downconversion changes what was signed).
func (q *Queue) signAndStage(ctx context.Context, r io.Reader, eightBit bool) (store.Staged, bool, error) {
	limit := q.opt.MaxMessageSize
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, spoolMem+1))
	if err != nil {
		return nil, false, fmt.Errorf("read message: %w", err)
	}
	var src interface {
		io.Reader
		io.ReaderAt
	} = bytes.NewReader(buf.Bytes())
	size := n
	if n > spoolMem {
		f, err := os.CreateTemp(q.opt.TempDir, "postfach-sign-*")
		if err != nil {
			return nil, false, fmt.Errorf("spool message: %w", err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		var lr io.Reader = r
		if limit > 0 {
			lr = io.LimitReader(r, limit+1-n)
		}
		m, err := io.Copy(f, io.MultiReader(&buf, lr))
		if err != nil {
			return nil, false, fmt.Errorf("spool message: %w", err)
		}
		size = m
		src = f
	}
	if limit > 0 && size > limit {
		return nil, false, store.ErrTooBig
	}
	domain := fromDomain(io.NewSectionReader(src, 0, size))
	// A message with 8-bit content is converted first and the converted
	// form signed, so that no hop's downconversion changes what was
	// signed; one signature per message (an RSA signature is about a
	// millisecond of CPU). When the domain has no keys the message goes
	// as it is: 8 bits to a hop with 8BITMIME, converted only for one
	// without.
	var conv []byte
	var convErr error
	if eightBit || (size <= spoolMem && Needs8Bit(buf.Bytes())) {
		all, err := io.ReadAll(io.NewSectionReader(src, 0, size))
		if err != nil {
			return nil, false, fmt.Errorf("read message: %w", err)
		}
		conv, convErr = To7Bit(all)
	}
	signed := io.NewSectionReader(src, 0, size)
	if conv != nil && convErr == nil {
		signed = io.NewSectionReader(bytes.NewReader(conv), 0, int64(len(conv)))
	}
	sig, err := q.opt.Signer.Sign(ctx, domain, signed)
	if err != nil {
		return nil, false, fmt.Errorf("dkim sign: %w", err)
	}
	if sig != nil && convErr != nil {
		return nil, false, convErr
	}
	if sig != nil && conv != nil {
		src, size, eightBit = bytes.NewReader(conv), int64(len(conv)), false
	}
	st, err := q.opt.Store.Stage(ctx, io.MultiReader(bytes.NewReader(sig), io.NewSectionReader(src, 0, size)), 0)
	return st, eightBit, err
}

// fromDomain returns the domain of the From: header's first address, or
// "".
func fromDomain(r io.Reader) string {
	h, _ := message.ReadHeader(r, 256<<10)
	for _, a := range message.ParseAddressList(h.Get("From")) {
		if a.Host != "" {
			return strings.ToLower(a.Host)
		}
	}
	return ""
}

// run is the runner: it claims due entries while there is room and hands
// them to deliveries, until stopped.
func (q *Queue) run(ctx context.Context) {
	defer close(q.done)
	defer q.wg.Wait()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-t.C:
		}
		q.claim(ctx)
		t.Reset(q.opt.Poll)
	}
}

// batch bounds the entries in delivery at once: enough to fill every
// connection with several messages.
func (q *Queue) batch() int { return q.opt.Concurrency * 8 }

func (q *Queue) claim(ctx context.Context) {
	q.mu.Lock()
	room := q.batch() - q.active
	q.mu.Unlock()
	if room <= 0 {
		return
	}
	entries, err := q.opt.Store.ClaimQueue(ctx, q.now(), lease, room)
	if err != nil {
		if ctx.Err() == nil {
			q.log.Error("claim queue entries", "err", err)
		}
		return
	}
	if len(entries) == 0 {
		return
	}
	q.mu.Lock()
	q.active += len(entries)
	q.mu.Unlock()
	q.dispatch(ctx, entries)
}

// Admin operations (postfach queue ...).

// List returns every queue entry.
func (q *Queue) List(ctx context.Context) ([]store.QueueEntry, error) {
	return q.opt.Store.QueueEntries(ctx)
}

// Show returns one entry.
func (q *Queue) Show(ctx context.Context, id int64) (*store.QueueEntry, error) {
	return q.opt.Store.QueueEntry(ctx, id)
}

// Retry makes the entry (every entry for id 0) due now.
func (q *Queue) Retry(ctx context.Context, id int64) (int, error) {
	n, err := q.opt.Store.RetryQueue(ctx, id, q.now())
	if err == nil {
		q.Kick()
	}
	return n, err
}

// Drop removes an entry without a report to its sender.
func (q *Queue) Drop(ctx context.Context, id int64) error {
	if err := q.opt.Store.DeleteQueueEntry(ctx, id); err != nil {
		return err
	}
	q.size.Add(-1)
	q.log.Info("dropped from the queue", "queue_id", id)
	return nil
}

// retryAfter is the wait after the attempts-th failed attempt.
func (q *Queue) retryAfter(attempts int) time.Duration {
	if attempts < 1 {
		attempts = 1
	}
	if attempts > len(q.retry) {
		return q.retry[len(q.retry)-1]
	}
	return q.retry[attempts-1]
}

func (q *Queue) count(result string, n int) {
	if q.opt.Metrics.Delivered != nil {
		for range n {
			q.opt.Metrics.Delivered(result)
		}
	}
}
