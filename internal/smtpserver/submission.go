package smtpserver

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
)

// Submission makes a Server a message submission server (RFC 6409): the
// client must authenticate (RFC 4954) before MAIL, may send as its own
// addresses only, and may name recipients anywhere: local ones are
// delivered at once through the Deliverer, the others handed to the
// Enqueuer. See docs/sending.md.
type Submission struct {
	// Auth checks the SASL exchanges of AUTH; required.
	Auth Authenticator
	// SASLMechanisms are offered by AUTH; nil means auth.Mechanisms().
	// As for IMAP and POP3, no sign-in without TLS (except from loopback,
	// or with AllowInsecureAuth), and -PLUS mechanisms on TLS only.
	SASLMechanisms    []string
	AllowInsecureAuth bool
	// Enqueuer takes the messages for recipients on other servers; nil
	// refuses such recipients at RCPT (550 5.7.1).
	Enqueuer delivery.Enqueuer
	// SaveSent stores each submitted message in the sender's \Sent
	// mailbox (with \Seen), and records it in SentCopies.
	SaveSent   bool
	SentCopies *delivery.SentCopies
	// Mailboxes finds the sender's \Sent mailbox; without it no copy is
	// saved.
	Mailboxes SentMailboxes
	// MaxMessagesPerHour and MaxRecipientsPerHour limit what one account
	// submits within any hour (451 4.7.1 past them); 0 means no limit.
	MaxMessagesPerHour, MaxRecipientsPerHour int
	// URLs resolves BURL's URLs (RFC 4468); nil: no BURL.
	URLs URLFetcher
	// LoginTimeout is how long a connection may take to authenticate,
	// from connect, in total; 0 means one minute, negative no limit.
	LoginTimeout time.Duration
	// PreAuth bounds what the connections of one client hold before
	// they authenticate (netserve.Budget).
	PreAuth *netserve.Budget
	// SpoolDir holds the messages of large submissions while they are
	// delivered and queued; "" means os.TempDir().
	SpoolDir string
	// Now is the clock of the hourly limits; nil means time.Now.
	Now func() time.Time
	// Events, when set, ends a signed-in session when its device is
	// revoked or its account deleted (revoke.go).
	Events Subscriber
}

// Authenticator starts SASL exchanges. *auth.Service implements it.
type Authenticator interface {
	NewSASL(mech string, c auth.ConnInfo) (auth.SASL, error)
}

var _ Authenticator = (*auth.Service)(nil)

// failureRecorder is implemented by authenticators that count failures
// decided outside a SASL exchange (a response that is not base64).
type failureRecorder interface {
	RecordFailure(remote netip.Addr)
}

var _ failureRecorder = (*auth.Service)(nil)

// URLFetcher resolves the IMAP URLs of BURL (RFC 4468) for the user the
// submission server acts for.
type URLFetcher interface {
	// FetchURL returns the bytes the URL names and their number. An
	// error wrapping ErrBadURL means the URL is not valid for this user,
	// for whatever reason; other errors are temporary.
	FetchURL(ctx context.Context, url string, user URLUser) (io.ReadCloser, int64, error)
}

// URLUser is who BURL fetches a URL for: the signed-in account, and the
// address the client connected to (a URL may name this server by it).
type URLUser struct {
	Account store.AccountID
	Name    string
	Local   netip.Addr
}

// ErrBadURL is what a URLFetcher's error wraps for a URL that is not
// valid for the user.
var ErrBadURL = errors.New("invalid imap url")

// maxSubmitLine is the longest command line of a submission session: an
// AUTH line (RFC 4954 §4: 12288 octets) or a BURL with a long URL.
const maxSubmitLine = 12288 + 2

// Replies of submission (RFC 4954 §6, RFC 6409, RFC 3463 X.7.x).
var (
	replyAuthRequired = &reply{530, "5.7.0", "Authentication required"}
	replyAuthOK       = &reply{235, "2.7.0", "Authentication successful"}
	replyAuthFailed   = &reply{535, "5.7.8", "Authentication credentials invalid"}
	replyAuthTemp     = &reply{454, "4.7.0", "Temporary authentication failure, try again later"}
	replyAuthLimited  = &reply{454, "4.7.0", "Too many failed logins, try again later"}
	replyAuthCancel   = &reply{501, "5.0.0", "Authentication cancelled"}
	replyAuthBase64   = &reply{501, "5.5.2", "Invalid base64 in authentication response"}
	replyAuthTLS      = &reply{538, "5.7.11", "Encryption required for authentication: use STARTTLS first"}
	replyAuthMech     = &reply{504, "5.5.4", "Unrecognized authentication mechanism"}
	replyAuthTwice    = &reply{503, "5.5.1", "Already authenticated"}
	replyAuthInTx     = &reply{503, "5.5.1", "AUTH not allowed in a mail transaction"}
	// RFC 6409 §5.1 / RFC 3463 X.7.1: the account may not use that sender.
	replySenderNotOwned = &reply{553, "5.7.1", "Sender address not owned by the authenticated user"}
	replyFromNotOwned   = &reply{550, "5.7.1", "From: header address not owned by the authenticated user"}
	replyNoFrom         = &reply{550, "5.7.1", "Message has no From: header with an address"}
	replyNullSender     = &reply{553, "5.7.1", "A null sender is not allowed for submission"}
	replyHeaderTooBig   = &reply{552, "5.3.4", "Message header section too large"}
	// Hourly limits: RFC 3463 X.7.1 (delivery not authorized) with a 4xx:
	// the client may send again later.
	replyMsgLimit  = &reply{451, "4.7.1", "Hourly message limit reached, try again later"}
	replyRcptLimit = &reply{451, "4.7.1", "Hourly recipient limit reached, try again later"}
	// No outbound queue: remote recipients cannot be taken.
	replyNoRelay = &reply{550, "5.7.1", "This server does not send mail to other domains"}
	// RFC 4468 §6.
	replyBadURL       = &reply{554, "5.6.6", "IMAP URL resolution failed"}
	replyURLTemp      = &reply{451, "4.4.1", "IMAP server unavailable, try again later"}
	replyBURLNotAuth  = &reply{530, "5.7.0", "Authentication required before BURL"}
	replyBURLWaiting  = &reply{250, "2.5.0", "Waiting for additional BURL or BDAT commands"}
	replyBURLNotOffer = &reply{502, "5.5.1", "BURL not offered here"}
)

// submission returns the session's submission options, nil for an MX or
// LMTP server.
func (x *session) submission() *Submission { return x.s.opt.Submission }

// secure reports whether a password may be sent on this connection (RFC
// 4954 §4, DESIGN §6): with TLS, from loopback, or when the operator
// allows it everywhere.
func (x *session) secure() bool {
	sub := x.submission()
	return x.tls || sub.AllowInsecureAuth || x.s.loopback && x.remote.IsLoopback()
}

// mechanisms returns the SASL mechanisms offered on this connection.
func (x *session) mechanisms() []string {
	var out []string
	for _, m := range x.s.mechs {
		if auth.OfferMechanism(m, x.tls) {
			out = append(out, m)
		}
	}
	return out
}

// cmdAuth runs a SASL exchange (RFC 4954 §4): AUTH mechanism
// [initial-response], then "334 challenge" and client responses until
// 235 or an error.
func (x *session) cmdAuth(arg string) {
	sub := x.submission()
	switch {
	case sub == nil:
		x.refuse(replyNotImpl)
		return
	case x.helo == "":
		x.refuse(replyNoHello)
		return
	case x.user != nil:
		x.refuse(replyAuthTwice)
		return
	case x.inTx:
		x.refuse(replyAuthInTx)
		return
	}
	fields := strings.Fields(arg)
	if len(fields) == 0 || len(fields) > 2 {
		x.refuse(syntaxError("Syntax: AUTH mechanism [initial-response]"))
		return
	}
	mech := strings.ToUpper(fields[0])
	offered := false
	for _, m := range x.mechanisms() {
		offered = offered || strings.EqualFold(m, mech)
	}
	if !offered {
		x.refuse(replyAuthMech)
		return
	}
	if !x.secure() {
		x.authFailed(replyAuthTLS)
		return
	}
	sasl, err := sub.Auth.NewSASL(mech, x.connInfo())
	if err != nil {
		x.refuse(replyAuthMech)
		return
	}
	var resp []byte // nil: no initial response
	if len(fields) == 2 {
		// RFC 4954 §4: "=" is an empty initial response.
		if fields[1] == "=" {
			resp = []byte{}
		} else if resp, err = decodeBase64(fields[1]); err != nil {
			x.authBase64Error()
			return
		}
	}
	ctx, cancel := x.loginCtx()
	defer cancel()
	for {
		challenge, p, err := sasl.Next(ctx, resp)
		if errors.Is(err, context.DeadlineExceeded) && x.tc != nil && x.tc.LoginExpired() {
			// The guessing protection's delay was cut off at the login
			// deadline: as when the deadline passes between commands.
			x.log.Info("login timeout")
			x.goodbye("4.7.0", "Login timeout, closing connection")
			return
		}
		if err != nil {
			x.authError(err)
			return
		}
		if p != nil {
			x.signedIn(p)
			return
		}
		x.reply(334, "", base64.StdEncoding.EncodeToString(challenge))
		line, err := x.readLine()
		if errors.Is(err, errLineTooLong) {
			x.authFailed(&reply{500, "5.5.6", "Authentication exchange line too long"})
			return
		}
		if err != nil {
			x.readFailed(err)
			return
		}
		l := strings.TrimRight(string(line), "\r\n")
		if l == "*" {
			// RFC 4954 §4: the client cancelled.
			x.authFailed(replyAuthCancel)
			return
		}
		if resp, err = decodeBase64(l); err != nil {
			x.authBase64Error()
			return
		}
	}
}

// connInfo describes the connection to a SASL mechanism: SCRAM-PLUS
// binds to its TLS channel.
func (x *session) connInfo() auth.ConnInfo {
	c := auth.ConnInfo{Remote: x.remote, Service: "submission"}
	if tc, ok := x.conn.(*tls.Conn); ok && x.tls {
		cs := tc.ConnectionState()
		c.TLS = &cs
		c.ServerCert = auth.ServerCertificate(x.s.opt.TLSConfig, &cs)
	}
	return c
}

// loginCtx is the context of a login: the guessing protection may make
// it wait, and a shutdown or the login deadline ends the wait
// (netserve.Conn.LoginContext). The caller must call cancel.
func (x *session) loginCtx() (context.Context, context.CancelFunc) {
	if x.tc == nil {
		return context.WithCancel(context.Background())
	}
	return x.tc.LoginContext()
}

// decodeBase64 decodes a SASL response; padding is optional.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// authBase64Error answers a response that is not base64 (RFC 4954 §4:
// 501) and counts it as a failed login.
func (x *session) authBase64Error() {
	if fr, ok := x.submission().Auth.(failureRecorder); ok {
		fr.RecordFailure(x.remote)
	}
	x.authFailed(replyAuthBase64)
}

// authError answers a failed SASL step.
func (x *session) authError(err error) {
	switch {
	case errors.Is(err, auth.ErrRateLimited):
		x.authFailed(replyAuthLimited)
	case errors.Is(err, auth.ErrUnavailable):
		x.log.Warn("login unavailable", "err", err)
		x.replyWith(replyAuthTemp)
	case errors.Is(err, auth.ErrAborted):
		x.authFailed(replyAuthCancel)
	case errors.Is(err, auth.ErrMalformed):
		x.authFailed(&reply{501, "5.5.2", "Malformed authentication exchange"})
	default:
		x.authFailed(replyAuthFailed)
	}
}

// authFailed answers a failed authentication and counts it like a bad
// command, so one connection cannot try passwords forever (the guard in
// the auth package limits the client across connections).
func (x *session) authFailed(r *reply) {
	x.log.Info("authentication failed", "reply", r.code)
	if f := x.s.opt.Metrics.Error; f != nil {
		f(x.s.proto, "auth_failed")
	}
	x.refuse(r)
}

// signedIn makes the session act for p.
func (x *session) signedIn(p *auth.Principal) {
	x.user = p
	if x.tc != nil {
		x.tc.LoggedIn()
	}
	x.log = x.log.With("user", p.Name)
	if p.Device != "" {
		x.log = x.log.With("device", strings.ToLower(p.Device))
	}
	if x.tc != nil {
		x.tc.SetLogger(x.log)
	}
	x.log.Info("login")
	if ev := x.submission().Events; ev != nil {
		x.watchRevocation(ev)
	}
	x.replyWith(replyAuthOK)
}

// account is the signed-in account, as SendAs takes it.
func (x *session) account() *store.Account {
	return &store.Account{ID: x.user.Account, Name: x.user.Name}
}

// checkSender answers MAIL FROM in a submission session (RFC 6409 §4.1,
// §5.1): the reverse-path must be one of the account's addresses
// (delivery.SendAs), and the account must be under its hourly message
// limit. It returns nil when the sender may go on.
func (x *session) checkSender(from string) *reply {
	if x.user == nil {
		return replyAuthRequired
	}
	if from == "" {
		return replyNullSender
	}
	if !x.s.limits.allowMessage(x.user.Account) {
		x.log.Info("hourly message limit reached")
		return replyMsgLimit
	}
	ok, err := x.s.opt.Deliverer.SendAs(x.ctx(), x.account(), from)
	if err != nil {
		x.log.Error("sender check failed", "from", from, "err", err)
		return errTempFail
	}
	if !ok {
		x.log.Info("sender refused", "from", from)
		return replySenderNotOwned
	}
	return nil
}

// hourlyLimits counts what each account submitted in the last hour
// (Submission.MaxMessagesPerHour, MaxRecipientsPerHour). It is in
// memory: a restart starts the counts afresh.
type hourlyLimits struct {
	maxMsgs, maxRcpts int
	now               func() time.Time

	mu        sync.Mutex
	sent      map[store.AccountID][]sentMsg // guarded by mu; oldest first, none older than an hour
	lastSweep time.Time                     // guarded by mu
}

type sentMsg struct {
	at    time.Time
	rcpts int
}

func newHourlyLimits(sub *Submission) *hourlyLimits {
	l := &hourlyLimits{sent: map[store.AccountID][]sentMsg{}, now: time.Now}
	if sub != nil {
		l.maxMsgs, l.maxRcpts = sub.MaxMessagesPerHour, sub.MaxRecipientsPerHour
		if sub.Now != nil {
			l.now = sub.Now
		}
	}
	return l
}

// usageLocked returns the messages and recipients of the last hour;
// l.mu must be held.
func (l *hourlyLimits) usageLocked(acct store.AccountID, now time.Time) (msgs, rcpts int) {
	list := l.sent[acct]
	i := 0
	for i < len(list) && now.Sub(list[i].at) >= time.Hour {
		i++
	}
	if i > 0 {
		list = append(list[:0], list[i:]...)
		if len(list) == 0 {
			delete(l.sent, acct)
		} else {
			l.sent[acct] = list
		}
	}
	for _, m := range list {
		rcpts += m.rcpts
	}
	return len(list), rcpts
}

// allowMessage reports whether the account may start one more message.
func (l *hourlyLimits) allowMessage(acct store.AccountID) bool {
	if l.maxMsgs <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	msgs, _ := l.usageLocked(acct, l.now())
	return msgs < l.maxMsgs
}

// allowRecipients reports whether the account may add one recipient to a
// message that has n already.
func (l *hourlyLimits) allowRecipients(acct store.AccountID, n int) bool {
	if l.maxRcpts <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, rcpts := l.usageLocked(acct, l.now())
	return rcpts+n < l.maxRcpts
}

// record counts a message accepted for rcpts recipients.
func (l *hourlyLimits) record(acct store.AccountID, rcpts int) {
	if l.maxMsgs <= 0 && l.maxRcpts <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sent[acct] = append(l.sent[acct], sentMsg{at: now, rcpts: rcpts})
	if now.Sub(l.lastSweep) >= time.Minute {
		// Forget the accounts that stopped sending.
		l.lastSweep = now
		for a := range l.sent {
			l.usageLocked(a, now)
		}
	}
}
