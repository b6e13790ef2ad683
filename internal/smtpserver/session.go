package smtpserver

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
)

// Replies. Client-facing text stays generic; details go to the log.
var (
	// RFC 5321 §3.6.2 and RFC 3463 X.7.1: relaying denied.
	errRelayDenied = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied: not a local domain"}
	// RFC 3463 X.1.1: bad destination mailbox address.
	errNoSuchUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	// RFC 3463 X.1.3: bad destination mailbox address syntax.
	errBadRcpt = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax"}
	// RFC 3463 X.1.7: bad sender's mailbox address syntax.
	errBadSender = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Bad sender address syntax"}
	// RFC 3463 X.3.4: message too big for system.
	errTooBig = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message exceeds maximum size"}
	// RFC 3463 X.3.1: mail system full.
	errDiskFull = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system storage, try again later"}
	// RFC 3463 X.3.0: other or undefined mail system status.
	errTempFail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary local problem, try again later"}
	// RFC 3463 X.6.0: other or undefined media error.
	errEmpty = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Empty message"}
	// RFC 3463 X.4.2: the connection was dropped or timed out.
	errShutdown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down, try again later"}
)

// replyFor maps a delivery or resolution error to an SMTP reply and a
// metrics kind. This is the one place where errors become replies.
func replyFor(err error) (*smtp.SMTPError, string) {
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return nil, ""
	case errors.Is(err, ErrNotLocal):
		return errRelayDenied, "relay_denied"
	case errors.Is(err, ErrUnknownUser):
		return errNoSuchUser, "unknown_user"
	case errors.Is(err, ErrBadAddress):
		return errBadRcpt, "bad_address"
	case isTooLarge(err):
		return errTooBig, "too_big"
	case errors.Is(err, store.ErrDiskFull):
		return errDiskFull, "disk_full"
	case errors.Is(err, store.ErrEmptyMessage):
		return errEmpty, "empty"
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled):
		return errShutdown, "store"
	case errors.As(err, &se):
		return se, "protocol"
	}
	return errTempFail, "store"
}

// session is one SMTP/LMTP connection's state.
type session struct {
	s        *Server
	conn     *smtp.Conn
	tc       *netserve.Conn // nil if the listener was not a netserve one
	log      *slog.Logger
	remoteIP string

	from  string
	rcpts []*Recipient
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.LMTPSession = (*session)(nil)
)

func (x *session) ctx() context.Context {
	// Store calls are not tied to the connection's context: a delivery
	// under way when a drain starts must finish.
	return context.Background()
}

func (x *session) fail(err error) error {
	reply, kind := replyFor(err)
	if kind != "" && x.s.opt.Metrics.Error != nil {
		x.s.opt.Metrics.Error(x.s.proto, kind)
	}
	return reply
}

// Reset implements smtp.Session (RSET, and after each message).
func (x *session) Reset() {
	x.from = ""
	x.rcpts = nil
}

// Logout implements smtp.Session.
func (x *session) Logout() error { return nil }

// Mail implements smtp.Session (RFC 5321 §4.1.1.2).
func (x *session) Mail(from string, opts *smtp.MailOptions) error {
	if from != "" && (strings.ContainsAny(from, " \t\r\n<>") || !strings.Contains(from, "@")) {
		return errBadSender
	}
	x.from = from
	x.rcpts = nil
	return nil
}

// Rcpt implements smtp.Session (RFC 5321 §4.1.1.3): every recipient is
// resolved at once, so unknown users are refused before DATA.
func (x *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	r, err := x.s.opt.Deliverer.Resolve(x.ctx(), to)
	if err != nil {
		lvl := slog.LevelInfo
		if reply, _ := replyFor(err); reply == errTempFail {
			lvl = slog.LevelError
		}
		x.log.Log(context.Background(), lvl, "recipient refused", "rcpt", to, "err", err)
		return x.fail(err)
	}
	x.rcpts = append(x.rcpts, r)
	return nil
}

// Data implements smtp.Session: one reply for the whole message (SMTP).
func (x *session) Data(r io.Reader) error {
	res, err := x.deliver(r)
	if err != nil {
		return x.fail(err)
	}
	// SMTP has one reply for all recipients. Any failure after the
	// message was accepted per recipient is a temporary failure of the
	// whole message: the client retries, and the recipients already
	// stored get a duplicate rather than a loss.
	for _, e := range res.Errs {
		if e != nil {
			return x.fail(e)
		}
	}
	return nil
}

// LMTPData implements smtp.LMTPSession: one reply per recipient
// (RFC 2033 §4.2).
func (x *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	res, err := x.deliver(r)
	if err != nil {
		return x.fail(err)
	}
	for i, rc := range x.rcpts {
		if e := res.Errs[i]; e != nil {
			status.SetStatus(rc.Address, x.fail(e))
		} else {
			status.SetStatus(rc.Address, nil)
		}
	}
	return nil
}

func (x *session) deliver(r io.Reader) (*Result, error) {
	if x.tc != nil {
		// A message being received and stored is not cut off by a
		// shutdown: it is answered first.
		x.tc.SetBusy(true)
		defer x.tc.SetBusy(false)
	}
	start := time.Now()
	env := &Envelope{
		From:       x.from,
		Recipients: x.rcpts,
		Protocol:   x.protocol(),
		Helo:       x.conn.Hostname(),
		RemoteIP:   x.remoteIP,
		ID:         newID(),
	}
	body := r
	if d := x.s.opt.DataTimeout; d > 0 {
		body = &deadlineReader{r: r, conn: x.conn, d: d}
	}
	res, err := x.s.opt.Deliverer.Deliver(x.ctx(), env, body)
	took := time.Since(start)
	if err != nil {
		lvl := slog.LevelWarn
		if reply, _ := replyFor(err); reply.Code/100 == 5 {
			lvl = slog.LevelInfo
		}
		x.log.Log(context.Background(), lvl, "message refused", "id", env.ID, "from", x.from, "rcpts", len(x.rcpts), "err", err)
		return nil, err
	}
	ok, failed := 0, 0
	for i, e := range res.Errs {
		if e != nil {
			failed++
			x.log.Error("delivery failed", "id", env.ID, "rcpt", x.rcpts[i].Address, "err", e)
		} else {
			ok++
		}
	}
	x.log.Info("message delivered", "id", env.ID, "from", x.from, "rcpts", ok, "failed", failed,
		"size", res.Size, "blob", res.BlobID, "took", took.Round(time.Microsecond))
	if f := x.s.opt.Metrics.Delivered; f != nil {
		f(x.s.proto, ok, failed, took)
	}
	return res, nil
}

// protocol returns the Received: "with" keyword (RFC 3848).
func (x *session) protocol() string {
	if x.s.opt.LMTP {
		return "LMTP"
	}
	if _, ok := x.conn.TLSConnectionState(); ok {
		return "ESMTPS"
	}
	return "ESMTP"
}

// deadlineReader extends the read deadline before every read of message
// data: RFC 5321 §4.5.3.2.5 times each data block, not the whole message.
type deadlineReader struct {
	r    io.Reader
	conn *smtp.Conn
	d    time.Duration
}

func (dr *deadlineReader) Read(p []byte) (int, error) {
	_ = dr.conn.Conn().SetReadDeadline(time.Now().Add(dr.d))
	return dr.r.Read(p)
}

// newID returns a short random message id for logs and Received:.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
