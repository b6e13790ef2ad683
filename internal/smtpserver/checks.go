package smtpserver

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/msgauth"
	"github.com/postfach/postfach/internal/store"
)

// Checker checks the sender authentication of a received message
// (msgauth.Checker): msg holds the message as received, size bytes.
type Checker interface {
	Check(ctx context.Context, in *msgauth.Input, msg io.ReaderAt, size int64) (*msgauth.Verdict, error)
}

var _ Checker = (*msgauth.Checker)(nil)

// checkTimeout bounds the checks of one message (their DNS lookups):
// well within the 10 minutes a client waits for the reply to the end of
// the data (RFC 5321 §4.5.3.2.6).
const checkTimeout = time.Minute

// Replies to the checks (RFC 7489 §7.3 and RFC 3463 X.7.1: delivery not
// authorized; X.4.3: directory server failure, the DNS).
var (
	errAuthDefer = &reply{451, "4.4.3", "Sender authentication could not be checked (DNS failure), try again later"}
)

// checkAuth reads the message into sp, checks it, and returns the body
// to deliver: without the Authentication-Results fields that claim to be
// ours, with ours in env.Headers, to Junk when the checks say so. A
// refusal is a *reply error.
func (x *session) checkAuth(env *delivery.Envelope, body io.Reader, sp *spool) (io.Reader, error) {
	if _, err := io.Copy(sp, body); err != nil {
		return nil, err
	}
	if sp.Size() == 0 {
		return nil, fmt.Errorf("check message: %w", store.ErrEmptyMessage)
	}
	ip, _ := netip.ParseAddr(x.remoteIP)
	ctx, cancel := context.WithTimeout(x.ctx(), checkTimeout)
	defer cancel()
	v, err := x.s.opt.Checker.Check(ctx, &msgauth.Input{RemoteIP: ip, Helo: x.helo, MailFrom: x.from}, sp, sp.Size())
	if err != nil {
		return nil, fmt.Errorf("check sender authentication: %w", err)
	}
	x.log.Info("sender authentication", "id", env.ID, "from", x.from, "spf", v.SPF, "dkim", v.DKIM, "dmarc", v.DMARC,
		"action", v.Action.String(), "reason", v.Reason)
	switch v.Action {
	case msgauth.Reject:
		// RFC 7489 §6.6.4 and §7.3: refused in the SMTP transaction.
		return nil, &reply{550, "5.7.1", "Message refused: " + v.Reason}
	case msgauth.Defer:
		return nil, errAuthDefer
	case msgauth.Junk:
		for _, r := range x.rcpts {
			r.SetSpecialUse(store.UseJunk)
		}
	}
	env.Headers += v.Header
	return v.Body(sp, sp.Size()), nil
}
