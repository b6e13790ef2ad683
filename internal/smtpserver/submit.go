package smtpserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// maxHeaderSection bounds the header section of a submitted message,
// which is held in memory to be checked and fixed up: far more than any
// client writes, also with two thousand addresses in To:.
const maxHeaderSection = 1 << 20

// SentMailboxes finds an account's \Sent mailbox for the server's copy.
// store.Store implements it.
type SentMailboxes interface {
	Mailboxes(ctx context.Context, acct store.AccountID) ([]store.Mailbox, error)
}

// remoteRcpt adds a recipient in a domain that is not local: it goes to
// the outbound queue, when there is one.
func (x *session) remoteRcpt(to string) {
	sub := x.submission()
	if sub.Enqueuer == nil {
		x.log.Info("recipient refused: no outbound queue", "rcpt", to)
		x.replyWith(replyNoRelay)
		return
	}
	at := strings.LastIndexByte(to, '@')
	if at <= 0 || !validDomain(to[at+1:]) {
		x.refuse(errBadRcpt)
		return
	}
	// "To are the remote recipients, each once" (delivery.Outbound);
	// domains compare without case.
	norm := to[:at+1] + strings.ToLower(to[at+1:])
	if !slices.Contains(x.remotes, norm) {
		x.remotes = append(x.remotes, norm)
	}
	x.reply(250, "2.1.5", "Recipient OK")
}

// validDomain reports whether d is a domain (RFC 5321 §4.1.2: labels of
// letters, digits and hyphens, or UTF-8 for SMTPUTF8, RFC 6531 §3.3) or
// an address literal in brackets.
func validDomain(d string) bool {
	if d == "" || len(d) > 255 {
		return false
	}
	if d[0] == '[' {
		return d[len(d)-1] == ']' && !strings.ContainsAny(d[1:len(d)-1], "[]\\ ")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// cmdBURL starts or continues a message with a part named by an IMAP URL
// (RFC 4468 §3): BURL absolute-URI [LAST]. It needs AUTH, and the
// recipients first; a URL that cannot be resolved fails the message (554
// 5.6.6) as a failed BDAT chunk does.
func (x *session) cmdBURL(arg string) {
	sub := x.submission()
	if sub == nil || sub.URLs == nil {
		x.refuse(replyNotImpl)
		return
	}
	url, last, ok := parseBURL(arg)
	if !ok {
		x.refuse(syntaxError("Syntax: BURL imap-url [LAST]"))
		return
	}
	if x.user == nil {
		x.refuse(replyBURLNotAuth)
		return
	}
	if r := x.readyForData(true); r != nil {
		x.chunkRefused(r)
		return
	}
	x.inData = true
	defer func() { x.inData = false }()
	c, err := x.fetchURL(url)
	if err != nil {
		x.replyWith(x.fail(err))
		x.resetTx()
		x.bdatFailed = true
		return
	}
	c.last = last
	x.chunked(c)
}

// fetchURL resolves a BURL URL for the signed-in user.
func (x *session) fetchURL(url string) (chunk, error) {
	u := URLUser{Account: x.user.Account, Name: x.user.Name}
	if ta, ok := x.conn.LocalAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			u.Local = a.Unmap()
		}
	}
	rc, n, err := x.submission().URLs.FetchURL(x.ctx(), url, u)
	switch {
	case errors.Is(err, ErrBadURL):
		x.log.Info("burl: url refused", "err", err)
		return chunk{}, replyBadURL
	case err != nil:
		x.log.Error("burl: url resolution failed", "err", err)
		return chunk{}, replyURLTemp
	}
	return chunk{size: n, url: rc}, nil
}

// prepared is a submitted message's header, checked and fixed up.
type prepared struct {
	// header is what recipients get: the header section without Bcc:,
	// with Date: and Message-ID: added when missing (RFC 6409 §8.2,
	// §8.3), and the blank line.
	header []byte
	// sent is the header of the sender's Sent copy: as header, with one
	// Bcc: naming the message's Bcc: addresses and the envelope
	// recipients that are in no To:, Cc: or Bcc: (what the sender's own
	// copy would show).
	sent []byte
	// messageID and from are the message's SentCopies key.
	messageID, from string
	// eightBit: the header has 8-bit bytes.
	eightBit bool
}

// submit takes a submitted message (RFC 6409): the header is read and
// checked (From: and Sender: must be the account's addresses: 550 5.7.1),
// fixed up, the body spooled; then the local recipients get it (all or
// nothing), the outbound queue takes it for the others, and the sender's
// Sent mailbox gets a copy. It returns the reply, and an error when the
// message was not accepted.
func (x *session) submit(body io.Reader, readErr func() error) (*reply, error) {
	sub := x.submission()
	start := time.Now()
	id := newID()
	ctx := x.ctx()
	failed := func(err error) (*reply, error) {
		if rerr := readErr(); rerr != nil {
			x.log.Info("connection lost during message data", "id", id, "err", rerr)
			return errTempFail, rerr
		}
		if errors.Is(err, errBDATInterrupted) {
			return nil, err
		}
		r := x.fail(err)
		lvl := slog.LevelWarn
		if r.code/100 == 5 {
			lvl = slog.LevelInfo
		}
		x.log.Log(context.Background(), lvl, "message refused", "id", id, "from", x.from, "err", err)
		return r, err
	}
	br := bufio.NewReaderSize(body, 16<<10)
	h, err := message.ReadHeader(br, maxHeaderSection)
	if errors.Is(err, message.ErrHeaderTooLarge) {
		return failed(replyHeaderTooBig)
	}
	if err != nil {
		return failed(err)
	}
	if len(h.Fields) == 0 && !h.Terminated {
		return failed(store.ErrEmptyMessage)
	}
	p, r := x.prepare(ctx, h)
	if r != nil {
		return failed(r)
	}
	sp := newSpool(sub.SpoolDir)
	defer sp.Close()
	if _, err := sp.ReadFrom(br); err != nil {
		return failed(err)
	}
	acct := x.user.Account

	// Local recipients first, all or nothing, then the queue: a failure
	// of either is answered, and nothing was stored when the local
	// delivery failed.
	if len(x.rcpts) > 0 {
		env := &delivery.Envelope{From: x.from, Recipients: x.rcpts, Protocol: x.protocol(), Helo: x.helo,
			RemoteIP: x.remoteIP, ID: id, AllOrNothing: true}
		res, err := x.s.opt.Deliverer.Deliver(ctx, env, io.MultiReader(bytes.NewReader(p.header), sp.reader()))
		if r := x.smtpReply(res, id, err); r.code != 250 {
			x.log.Info("message refused: local delivery failed", "id", id, "reply", r.code)
			return r, r
		}
	}
	queueID := ""
	if len(x.remotes) > 0 {
		ob := &delivery.Outbound{Account: acct, From: x.from, To: x.remotes,
			SMTPUTF8: x.utf8 || !isASCII(x.from) || slices.ContainsFunc(x.remotes, func(s string) bool { return !isASCII(s) }),
			EightBit: x.body8 || x.utf8 || p.eightBit || sp.eightBit}
		msg := message.NewCRLFReader(io.MultiReader(strings.NewReader(x.received(id)), bytes.NewReader(p.header), sp.reader()))
		queueID, err = sub.Enqueuer.Enqueue(ctx, ob, msg)
		if err != nil {
			if len(x.rcpts) > 0 {
				x.log.Error("outbound queue failed after the local recipients got the message", "id", id, "err", err)
			}
			return failed(err)
		}
	}
	if sub.SaveSent {
		x.saveSent(ctx, id, p, sp)
	}
	x.s.limits.record(acct, len(x.rcpts)+len(x.remotes))
	x.log.Info("message submitted", "id", id, "from", x.from, "local", len(x.rcpts), "remote", len(x.remotes),
		"queue_id", queueID, "size", sp.n+int64(len(p.header)), "took", time.Since(start).Round(time.Microsecond))
	if f := x.s.opt.Metrics.Delivered; f != nil {
		f(x.s.proto, len(x.rcpts)+len(x.remotes), 0, time.Since(start))
	}
	return &reply{250, "2.0.0", "Message accepted, id " + id}, nil
}

// received returns the Received: field the submission server adds to
// mail it passes on (RFC 5321 §4.4; "with ESMTPSA", RFC 3848).
func (x *session) received(id string) string {
	var b strings.Builder
	b.WriteString("Received: from " + headerSafe(cmpOr(x.helo, "unknown")))
	if x.remoteIP != "" {
		b.WriteString(" ([" + headerSafe(x.remoteIP) + "])")
	}
	b.WriteString("\r\n\tby " + headerSafe(x.hostname()) + " (postfach) with " + x.protocol() + " id " + id)
	b.WriteString(";\r\n\t" + time.Now().Format("Mon, 02 Jan 2006 15:04:05 -0700") + "\r\n")
	return b.String()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// headerSafe keeps client-supplied strings from breaking a header field.
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

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// prepare checks the header of a submitted message and builds its fixed
// forms (see prepared). The reply is the refusal, nil when it may go.
func (x *session) prepare(ctx context.Context, h message.Header) (*prepared, *reply) {
	// RFC 6409 §8.1 leaves the checks of the originator fields to the
	// server's policy: From: (RFC 5322 §3.6.2: the author) and Sender:
	// must name the account's own addresses only.
	var from []message.Address
	for _, v := range h.Values("From") {
		from = append(from, message.ParseAddressList(v)...)
	}
	n := 0
	for _, field := range []string{"From", "Sender"} {
		for _, v := range h.Values(field) {
			for _, a := range message.ParseAddressList(v) {
				if a.IsGroupStart || a.IsGroupEnd {
					continue
				}
				if a.Host == "" {
					x.log.Info("message refused: bad originator address", "field", field, "addr", a.Mailbox)
					return nil, replyFromNotOwned
				}
				if field == "From" {
					n++
				}
				ok, err := x.s.opt.Deliverer.SendAs(ctx, x.account(), message.AddrSpec(a))
				if err != nil {
					x.log.Error("sender check failed", "err", err)
					return nil, errTempFail
				}
				if !ok {
					x.log.Info("message refused: originator not the user's", "field", field, "addr", message.AddrSpec(a))
					return nil, replyFromNotOwned
				}
			}
		}
	}
	if n == 0 {
		return nil, replyNoFrom
	}
	msgID := h.Get("Message-ID")
	var added []byte
	if !h.Has("Date") {
		// RFC 6409 §8.3.
		added = append(added, "Date: "+time.Now().Format("Mon, 02 Jan 2006 15:04:05 -0700")+"\r\n"...)
	}
	if msgID == "" {
		// RFC 6409 §8.3: Message-ID added when missing.
		msgID = "<" + newID() + "." + newID() + "@" + headerSafe(x.hostname()) + ">"
		added = append(added, "Message-ID: "+msgID+"\r\n"...)
	}
	var rcpts []string
	for _, r := range x.rcpts {
		rcpts = append(rcpts, r.Address)
	}
	rcpts = append(rcpts, x.remotes...)
	p := buildHeaders(h, added, rcpts)
	env := &message.Envelope{MessageID: msgID, From: from}
	p.messageID, p.from, _ = delivery.SentKey(env)
	return p, nil
}

// buildHeaders makes the header sections of a submitted message from
// its header h: the one recipients get (without Bcc:, with the added
// fields) and the one of the sender's Sent copy (with one Bcc: naming the
// message's Bcc: addresses and those of rcpts, the envelope recipients,
// that no To:, Cc: or Bcc: names), each ending in the blank line.
func buildHeaders(h message.Header, added []byte, rcpts []string) *prepared {
	p := &prepared{}
	var bcc []string
	named := map[string]bool{}
	for _, f := range h.Fields {
		for _, c := range f.Raw {
			if c >= 0x80 {
				p.eightBit = true
				break
			}
		}
		switch {
		case strings.EqualFold(f.Name, "Bcc"):
			// RFC 5322 §3.6.3: the recipients of a blind copy are not
			// shown to the others.
			if v := f.Value(); v != "" {
				bcc = append(bcc, v)
			}
			for _, a := range message.ParseAddressList(f.Value()) {
				named[strings.ToLower(message.AddrSpec(a))] = true
			}
			continue
		case strings.EqualFold(f.Name, "To"), strings.EqualFold(f.Name, "Cc"):
			for _, a := range message.ParseAddressList(f.Value()) {
				named[strings.ToLower(message.AddrSpec(a))] = true
			}
		}
		p.header = appendCRLF(p.header, f.Raw)
	}
	p.header = append(p.header, added...)
	p.sent = bytes.Clone(p.header)
	for _, r := range rcpts {
		if !named[strings.ToLower(r)] {
			named[strings.ToLower(r)] = true
			bcc = append(bcc, r)
		}
	}
	if len(bcc) > 0 {
		p.sent = append(p.sent, "Bcc: "+strings.Join(bcc, ",\r\n ")+"\r\n"...)
	}
	p.header = append(p.header, '\r', '\n')
	p.sent = append(p.sent, '\r', '\n')
	return p
}

// appendCRLF appends a header field's raw lines to dst with every line
// ending in CRLF (a bare LF becomes CRLF, a missing ending is added), as
// the store and the queue keep messages.
func appendCRLF(dst, raw []byte) []byte {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			return append(append(dst, raw...), '\r', '\n')
		}
		line := bytes.TrimSuffix(raw[:i], []byte("\r"))
		dst = append(append(dst, line...), '\r', '\n')
		raw = raw[i+1:]
	}
	return dst
}

// saveSent stores the server's copy of a submitted message in the
// sender's \Sent mailbox, seen, and records it for IMAP (SentCopies). The
// message has been sent: a failure here is logged, not answered.
func (x *session) saveSent(ctx context.Context, id string, p *prepared, sp *spool) {
	sub := x.submission()
	if sub.Mailboxes == nil {
		return
	}
	list, err := sub.Mailboxes.Mailboxes(ctx, x.user.Account)
	if err != nil {
		x.log.Warn("sent copy not saved: mailboxes", "id", id, "err", err)
		return
	}
	k := slices.IndexFunc(list, func(mb store.Mailbox) bool { return slices.Contains(mb.SpecialUse, store.UseSent) })
	if k < 0 {
		// Never into INBOX, which a missing mailbox would fall back to.
		x.log.Info("sent copy not saved: the account has no \\Sent mailbox", "id", id)
		return
	}
	rcpt := &delivery.Recipient{Address: x.from, Via: delivery.ViaAccount, Targets: []delivery.Target{{
		Account: x.user.Account, Name: x.user.Name, Mailbox: list[k].Name, Flags: mail.Flags{mail.FlagSeen}}}}
	env := &delivery.Envelope{From: x.from, Recipients: []*delivery.Recipient{rcpt}, ID: id, NoTrace: true}
	res, err := x.s.opt.Deliverer.Deliver(ctx, env, io.MultiReader(bytes.NewReader(p.sent), sp.reader()))
	if err == nil && res.Errs[0] != nil {
		err = res.Errs[0]
	}
	if err != nil {
		x.log.Warn("sent copy not saved", "id", id, "err", err)
		return
	}
	st := res.Targets[0].Stored
	if len(st.UIDs) == 1 {
		sub.SentCopies.Add(x.user.Account, p.messageID, p.from, delivery.SentCopy{Mailbox: st.Mailbox, UIDValidity: st.UIDValidity, UID: st.UIDs[0]})
	}
}
