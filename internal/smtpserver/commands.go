package smtpserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/store"
)

// dispatch runs one command line.
func (x *session) dispatch(line []byte) {
	verb, arg := splitCommand(line)
	if x.noProgress(verb) {
		return
	}
	lmtp := x.s.opt.LMTP
	switch verb {
	case "EHLO", "HELO":
		if lmtp {
			// RFC 2033 §4.1: an LMTP server answers EHLO and HELO
			// with an error.
			x.refuse(&reply{500, "5.5.1", "This is an LMTP server: use LHLO"})
			return
		}
		x.cmdHello(verb, arg)
	case "LHLO":
		if !lmtp {
			x.refuse(&reply{500, "5.5.1", "This is not an LMTP server: use EHLO"})
			return
		}
		x.cmdHello(verb, arg)
	case "MAIL":
		x.cmdMail(arg)
	case "RCPT":
		x.cmdRcpt(arg)
	case "DATA":
		x.cmdData(arg)
	case "BDAT":
		x.cmdBDAT(arg)
	case "RSET":
		// RFC 5321 §4.1.1.5.
		if arg != "" {
			x.refuse(syntaxError("Syntax: RSET"))
			return
		}
		x.resetTx()
		x.replyWith(replyOK)
	case "NOOP":
		// RFC 5321 §4.1.1.9: a parameter is ignored.
		x.replyWith(replyOK)
	case "QUIT":
		// RFC 5321 §4.1.1.10.
		x.reply(221, "2.0.0", x.hostname()+" closing connection")
		x.quit = true
	case "VRFY":
		// RFC 5321 §3.5.3: 252 when we will not verify.
		if arg == "" {
			x.refuse(syntaxError("Syntax: VRFY address"))
			return
		}
		x.reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
	case "HELP":
		// RFC 5321 §4.1.1.8.
		x.reply(214, "2.0.0", "Commands: "+x.commandList())
	case "STARTTLS":
		x.cmdStartTLS(arg)
	case "AUTH":
		x.cmdAuth(arg)
	case "BURL":
		x.cmdBURL(arg)
	case "EXPN", "ETRN", "TURN", "ATRN", "SEND", "SOML", "SAML":
		// RFC 5321 §4.2.4: known, not offered here.
		x.refuse(replyNotImpl)
	default:
		x.refuse(replyUnknown)
	}
}

func (x *session) commandList() string {
	hello := "EHLO HELO"
	if x.s.opt.LMTP {
		hello = "LHLO"
	}
	tls := ""
	if x.s.opt.TLSConfig != nil && !x.tls {
		tls = " STARTTLS"
	}
	sub := ""
	if x.submission() != nil {
		sub = " AUTH"
		if x.submission().URLs != nil {
			sub += " BURL"
		}
	}
	return hello + sub + " MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP" + tls
}

// cmdHello answers EHLO, HELO and LHLO (RFC 5321 §4.1.1.1, RFC 2033 §4.1).
// A greeting resets any mail transaction (RFC 5321 §4.1.4).
func (x *session) cmdHello(verb, arg string) {
	domain, ok := helloDomain(arg)
	if !ok {
		x.refuse(syntaxError("Syntax: " + verb + " domain"))
		return
	}
	x.resetTx()
	x.helo = domain
	if verb == "HELO" {
		x.reply(250, "", x.hostname())
		return
	}
	lines := make([]string, 0, 10)
	lines = append(lines, x.hostname(),
		"PIPELINING",          // RFC 2920
		"8BITMIME",            // RFC 6152
		"ENHANCEDSTATUSCODES", // RFC 2034
		"CHUNKING",            // RFC 3030
		"SMTPUTF8",            // RFC 6531
	)
	if m := x.s.opt.MaxMessageSize; m > 0 {
		lines = append(lines, "SIZE "+strconv.FormatInt(m, 10)) // RFC 1870 §4
	} else {
		lines = append(lines, "SIZE")
	}
	if m := x.s.opt.MaxRecipients; m > 0 {
		lines = append(lines, "LIMITS RCPTMAX="+strconv.Itoa(m)) // RFC 9422 §4.2
	}
	if x.s.opt.TLSConfig != nil && !x.tls {
		lines = append(lines, "STARTTLS") // RFC 3207
	}
	if sub := x.submission(); sub != nil {
		// RFC 4954 §3: AUTH with the mechanisms, only where a password
		// may be sent (as POP3 and IMAP do), and not after AUTH.
		if x.user == nil && x.secure() {
			if m := x.mechanisms(); len(m) > 0 {
				lines = append(lines, "AUTH "+strings.Join(m, " "))
			}
		}
		// RFC 4468 §3: "imap" says URLAUTH URLs of IMAP servers are
		// resolved (this server's: the store keeps the access keys).
		if sub.URLs != nil {
			lines = append(lines, "BURL imap")
		}
	}
	x.replyLines(250, lines)
}

// cmdMail starts a mail transaction (RFC 5321 §4.1.1.2).
func (x *session) cmdMail(arg string) {
	switch {
	case x.helo == "":
		x.refuse(replyNoHello)
		return
	case x.inTx:
		x.refuse(replyNestedMail)
		return
	}
	from, rest, ok := parsePath(arg, "FROM:")
	if !ok {
		x.refuse(syntaxError("Syntax: MAIL FROM:<address> [parameters]"))
		return
	}
	params, ok := parseParams(rest)
	if !ok {
		x.refuse(syntaxError("Bad MAIL parameters"))
		return
	}
	utf8 := false
	var size int64
	for _, p := range params {
		switch p.key {
		case "SIZE":
			// RFC 1870 §6: SIZE=n, refused at once when over the limit.
			// size-value is 1*20DIGIT (§3); more than 18 digits is
			// beyond any limit an int64 holds.
			n, ok := parseDigits(p.value)
			if !ok && len(p.value) <= 20 && allDigits(p.value) {
				n, ok = math.MaxInt64, true
			}
			if !ok {
				x.refuse(syntaxError("Bad SIZE parameter"))
				return
			}
			if m := x.s.opt.MaxMessageSize; m > 0 && n > m {
				x.replyWith(x.fail(errDataTooBig))
				return
			}
			size = n
		case "BODY":
			// RFC 6152 §3: 7BIT or 8BITMIME; BINARYMIME is not offered.
			v := strings.ToUpper(p.value)
			if v != "7BIT" && v != "8BITMIME" {
				x.refuse(replyBadParam)
				return
			}
		case "SMTPUTF8":
			// RFC 6531 §3.4: no value.
			if p.eq {
				x.refuse(syntaxError("SMTPUTF8 takes no value"))
				return
			}
			utf8 = true
		case "AUTH":
			// RFC 4954 §5: the identity a relay passes on; a
			// submission server accepts it and relies on its own
			// authentication.
			if x.submission() == nil || !p.eq {
				x.refuse(replyBadParam)
				return
			}
		default:
			x.refuse(replyBadParam)
			return
		}
	}
	// RFC 5321 §4.1.2: a quoted local part that is a Dot-string is that
	// Dot-string; one that needs its quotes is kept quoted.
	from, plain, ok := canonicalMailbox(from)
	if !ok || from != "" && (plain && strings.ContainsAny(from, " \t\r\n<>") || !strings.Contains(from, "@")) {
		x.refuse(errBadSender)
		return
	}
	if x.submission() != nil {
		if r := x.checkSender(from); r != nil {
			if r == replyAuthRequired {
				x.refuse(r)
			} else {
				x.replyWith(r)
			}
			return
		}
	}
	x.bdatAbandoned = false
	x.inTx = true
	x.from = from
	x.utf8 = utf8
	x.size = size
	x.body8 = false
	for _, p := range params {
		x.body8 = x.body8 || p.key == "BODY" && strings.EqualFold(p.value, "8BITMIME")
	}
	x.rcpts = nil
	x.remotes = nil
	x.rcptTried = false
	x.reply(250, "2.1.0", "Sender OK")
}

// cmdRcpt adds a recipient (RFC 5321 §4.1.1.3). Every recipient is
// resolved at once, so unknown users are refused before DATA.
func (x *session) cmdRcpt(arg string) {
	if !x.inTx {
		x.refuse(replyNeedMail)
		return
	}
	to, rest, ok := parsePath(arg, "TO:")
	if !ok {
		x.refuse(syntaxError("Syntax: RCPT TO:<address>"))
		return
	}
	params, ok := parseParams(rest)
	if !ok {
		x.refuse(syntaxError("Bad RCPT parameters"))
		return
	}
	if len(params) > 0 {
		x.refuse(replyBadParam)
		return
	}
	x.rcptTried = true
	to, plain, ok := canonicalMailbox(to)
	if !ok || to == "" {
		x.refuse(errBadRcpt)
		return
	}
	if m := x.s.opt.MaxRecipients; m > 0 && len(x.rcpts)+len(x.remotes) >= m {
		x.replyWith(errTooManyRcpts)
		return
	}
	if x.submission() != nil && !x.s.limits.allowRecipients(x.user.Account, len(x.rcpts)+len(x.remotes)) {
		x.log.Info("hourly recipient limit reached")
		x.replyWith(replyRcptLimit)
		return
	}
	var r *delivery.Recipient
	var err error
	if plain {
		r, err = x.s.opt.Deliverer.Resolve(x.ctx(), to)
		if err == nil {
			// The quota is checked here, not after DATA (delivery/quota.go).
			err = x.s.opt.Deliverer.CheckQuota(x.ctx(), r, x.size)
		}
	} else {
		err = x.quotedRcpt(to)
	}
	if err != nil && x.submission() != nil && errors.Is(err, delivery.ErrNotLocal) {
		x.remoteRcpt(to)
		return
	}
	if err != nil {
		lvl := slog.LevelInfo
		if reply, _ := replyFor(err); reply == errTempFail {
			lvl = slog.LevelError
		}
		x.log.Log(context.Background(), lvl, "recipient refused", "rcpt", to, "err", err)
		if errors.Is(err, delivery.ErrUnknownUser) && x.unknownRcpt() {
			return
		}
		x.replyWith(x.fail(err))
		return
	}
	x.rcpts = append(x.rcpts, r)
	x.reply(250, "2.1.5", "Recipient OK")
}

// quotedRcpt answers a recipient whose local part needs quoting (a
// space, a quote, two dots: RFC 5321 §4.1.2 Quoted-string that is no
// Dot-string). RFC 5321 §4.1.2 asks a receiver not to define such
// mailboxes, and postfach does not (account names are plain addresses),
// so in a local domain it is an unknown user, and otherwise a foreign
// domain.
func (x *session) quotedRcpt(to string) error {
	domain := to[strings.LastIndexByte(to, '@')+1:]
	if !x.s.opt.Deliverer.IsLocal(domain) {
		return fmt.Errorf("%w: %s", delivery.ErrNotLocal, domain)
	}
	return fmt.Errorf("%w: %s (a local part that needs quoting)", delivery.ErrUnknownUser, to)
}

// readyForData checks the transaction before DATA or the first BDAT:
// RFC 5321 §3.3 and §4.1.4 (503 without MAIL or RCPT), RFC 2920 §3.1
// (SMTP: 554 when every RCPT failed); RFC 2033 §4.2 (LMTP: 503 then).
func (x *session) readyForData(bdat bool) *reply {
	switch {
	case !x.inTx && x.bdatAbandoned:
		return replyBDATAbandoned
	case !x.inTx:
		return replyMailFirst
	case len(x.rcpts) > 0 || len(x.remotes) > 0:
		return nil
	case x.rcptTried && x.s.opt.LMTP:
		return replyNoValidRcptLMTP
	case x.rcptTried:
		return replyNoValidRcpt
	case bdat:
		return replyNeedRcptBDAT
	}
	return replyNeedRcpt
}

// cmdData receives a message (RFC 5321 §4.1.1.4) and answers once for
// SMTP, once per recipient for LMTP (RFC 2033 §4.2).
func (x *session) cmdData(arg string) {
	if arg != "" {
		x.refuse(syntaxError("Syntax: DATA"))
		return
	}
	if x.bdatAbandoned {
		// RFC 3030 §2: DATA after BDAT in one transaction is 503, and
		// the client must send RSET.
		x.refuse(replyDataAfterBDAT)
		return
	}
	if r := x.readyForData(false); r != nil {
		x.refuse(r)
		return
	}
	x.reply(354, "", "Start mail input; end with <CRLF>.<CRLF>")
	x.setBusy(true)
	defer x.setBusy(false)
	x.inData = true
	dr := newDataReader(x.r, x.s.opt.MaxMessageSize)
	answer, err := x.receive(dr, func() error { return dr.readErr })
	rerr := dr.drain(x.discardLimit())
	x.inData = false
	if errors.Is(rerr, errDiscardLimit) {
		x.tooMuchData(err)
		return
	}
	if rerr != nil {
		x.readFailed(rerr)
		return
	}
	x.progressed()
	answer()
	x.resetTx()
}

// cmdBDAT receives a message in chunks (RFC 3030 §2): this command's
// chunk and, while the message is read, the BDAT (and in submission BURL)
// commands that follow, up to the one marked LAST. Each chunk before the
// last gets its 250 when it has been read; the last one gets the
// message's reply (per recipient for LMTP).
func (x *session) cmdBDAT(arg string) {
	size, last, ok := parseBDAT(arg)
	if !ok {
		// Without a size the chunk cannot be skipped, and its bytes
		// must not be taken for commands: end the session.
		// RFC 5321 §3.8: a server that closes says 421 first.
		x.refuse(syntaxError("Syntax: BDAT size [LAST]"))
		if !x.quit {
			x.goodbye("4.5.0", "Cannot continue after a malformed BDAT, closing connection")
		}
		return
	}
	x.inData = true
	defer func() { x.inData = false }()
	if r := x.readyForData(true); r != nil {
		// RFC 3030 §2: the chunk is read even when the command fails,
		// unless it is larger than any message (discardLimit).
		if l := x.discardLimit(); size > l {
			x.tooMuchData(r)
			return
		}
		if err := discardChunk(x.r, size); err != nil {
			x.readFailed(err)
			return
		}
		x.chunkRefused(r)
		return
	}
	x.chunked(chunk{size: size, last: last})
}

// chunkRefused answers a BDAT or BURL that cannot start a message.
func (x *session) chunkRefused(r *reply) {
	if x.bdatFailed {
		// Chunks the client pipelined before it saw its message
		// refused are expected (RFC 3030 §2), not a client error.
		x.replyWith(r)
	} else {
		x.refuse(r)
	}
}

// chunked receives a message whose first chunk is first (a BDAT chunk,
// or a BURL part), up to the chunk marked LAST, and answers it.
func (x *session) chunked(first chunk) {
	x.setBusy(true)
	defer x.setBusy(false)
	br := newBDATReader(x.r, first, x.s.opt.MaxMessageSize, x.nextChunk)
	answer, err := x.receive(br, func() error { return br.netEr })
	rerr := br.drain(x.discardLimit())
	if errors.Is(rerr, errDiscardLimit) {
		x.tooMuchData(err)
		return
	}
	if rerr != nil {
		x.readFailed(rerr)
		return
	}
	if errors.Is(err, errBDATInterrupted) {
		// The client gave up the message with another command, which
		// the main loop handles next; the chunks got their replies.
		x.log.Info("bdat transaction abandoned")
		x.resetTx()
		x.bdatAbandoned = true
		return
	}
	x.progressed()
	answer()
	x.resetTx()
	x.bdatFailed = err != nil
}

// discardLimit is how much message data the server reads and drops to
// stay in step with a client whose message it refused: the size limit
// (at least minDiscard), or defaultDiscard without one. A BDAT chunk
// larger than it is not read at all (RFC 3030 §2 would have it read).
func (x *session) discardLimit() int64 {
	if m := x.s.opt.MaxMessageSize; m > 0 {
		return max(m, minDiscard)
	}
	return defaultDiscard
}

// Bounds of discardLimit.
const (
	minDiscard     = 1 << 20
	defaultDiscard = 64 << 20
)

// tooMuchData ends a session whose client sends more data than the
// server reads for a refused message (discardLimit): the refusal (err, a
// delivery error or a reply; the size limit when nil), then 421, since
// the rest of the data cannot be told from commands (RFC 5321 §3.8).
func (x *session) tooMuchData(err error) {
	if err == nil {
		err = errDataTooBig
	}
	x.replyWith(x.fail(err))
	x.log.Info("too much message data after a refusal, closing connection")
	x.goodbye("4.7.0", "Too much message data, closing connection")
}

// nextChunk acknowledges the chunk just read and reads the next BDAT (or
// BURL) command of the transaction (a chunkSource).
func (x *session) nextChunk(prev chunk) (chunk, error) {
	if prev.url != nil {
		x.replyWith(replyBURLWaiting) // RFC 4468 §3
	} else {
		x.reply(250, "2.0.0", strconv.FormatInt(prev.size, 10)+" octets received")
	}
	x.inData, x.chunkWait = false, true
	line, err := x.readLine()
	x.inData, x.chunkWait = true, false
	if errors.Is(err, errLineTooLong) {
		x.pendingLong = true
		return chunk{}, errBDATInterrupted
	}
	if err != nil {
		return chunk{}, err
	}
	verb, arg := splitCommand(line)
	switch verb {
	case "BDAT":
		if size, last, ok := parseBDAT(arg); ok {
			return chunk{size: size, last: last}, nil
		}
	case "BURL":
		if url, last, ok := parseBURL(arg); ok && x.submission() != nil && x.submission().URLs != nil {
			c, err := x.fetchURL(url)
			c.last = last
			return c, err
		}
	}
	x.pending = bytes.Clone(line)
	return chunk{}, errBDATInterrupted
}

// receive takes a message from body: the MX and LMTP deliver it, a
// submission server submits it. It returns the function that writes
// the reply, to be called once the rest of the data was read, and the
// error, if any. A failure caused by the connection (readErr) or by an
// abandoned BDAT transaction is the caller's to handle.
func (x *session) receive(body io.Reader, readErr func() error) (answer func(), err error) {
	if x.submission() != nil {
		r, err := x.submit(body, readErr)
		return func() { x.replyWith(r) }, err
	}
	res, id, err := x.deliver(body, readErr)
	return func() { x.answerMessage(res, id, err) }, err
}

// deliver hands the message to the Deliverer and logs the outcome. A
// failure caused by the connection (readErr) or by an abandoned BDAT
// transaction is left to the caller.
func (x *session) deliver(body io.Reader, readErr func() error) (*delivery.Result, string, error) {
	start := time.Now()
	env := &delivery.Envelope{
		From:       x.from,
		Recipients: x.rcpts,
		Protocol:   x.protocol(),
		Helo:       x.helo,
		RemoteIP:   x.remoteIP,
		ID:         newID(),
		// RFC 5321 §4.2.5: one reply for the whole message in SMTP.
		AllOrNothing: !x.s.opt.LMTP,
	}
	var res *delivery.Result
	var err error
	if x.s.opt.Checker != nil && !x.s.opt.LMTP {
		sp := newSpool(x.s.opt.SpoolDir)
		defer sp.Close()
		body, err = x.checkAuth(env, body, sp)
	}
	if err == nil {
		res, err = x.s.opt.Deliverer.Deliver(x.ctx(), env, body)
	}
	took := time.Since(start)
	if err != nil {
		if rerr := readErr(); rerr != nil {
			x.log.Info("connection lost during message data", "id", env.ID, "err", rerr)
			return nil, env.ID, err
		}
		if errors.Is(err, errBDATInterrupted) {
			return nil, env.ID, err
		}
		lvl := slog.LevelWarn
		if reply, _ := replyFor(err); reply.code/100 == 5 {
			lvl = slog.LevelInfo
		}
		x.log.Log(context.Background(), lvl, "message refused", "id", env.ID, "from", x.from, "rcpts", len(x.rcpts), "err", err)
		return nil, env.ID, err
	}
	ok, failed := 0, 0
	for i, e := range res.Errs {
		switch {
		case e == nil:
			ok++
		case errors.Is(e, store.ErrNotDelivered):
			failed++
			x.log.Info("not delivered: another recipient failed", "id", env.ID, "rcpt", x.rcpts[i].Address)
		default:
			failed++
			x.log.Error("delivery failed", "id", env.ID, "rcpt", x.rcpts[i].Address, "err", e)
		}
	}
	msg := "message delivered"
	if ok == 0 {
		msg = "message not delivered"
	}
	x.log.Info(msg, "id", env.ID, "from", x.from, "rcpts", ok, "failed", failed,
		"size", res.Size, "blob", res.BlobID, "took", took.Round(time.Microsecond))
	if f := x.s.opt.Metrics.Delivered; f != nil {
		f(x.s.proto, ok, failed, took)
	}
	return res, env.ID, nil
}

// smtpReply is the one SMTP reply to a message delivered to every
// recipient or to none. It is the failure of the recipient that failed
// (the store stops at the first); when the others were held back by it, a
// permanent failure becomes 451, so that the client retries: its RCPT then
// gets its own answer, and the others get the message once. RFC 5321
// §4.2.5: after a failure reply to DATA nothing may have been delivered.
func (x *session) smtpReply(res *delivery.Result, id string, err error) *reply {
	if err != nil {
		return x.fail(err)
	}
	var first error
	heldBack := false
	for _, e := range res.Errs {
		switch {
		case e == nil:
		case errors.Is(e, store.ErrNotDelivered):
			heldBack = true
		case first == nil:
			first = e
		}
	}
	if first != nil || heldBack {
		r := errTempFail
		if first != nil {
			r = x.fail(first)
		}
		if heldBack && r.code/100 == 5 {
			r = &reply{451, "4.3.0", "Delivery to another recipient failed; nothing delivered, try again later"}
		}
		return r
	}
	return &reply{250, "2.0.0", "Message accepted, id " + id}
}

// answerMessage writes the reply to a received message: for SMTP one
// reply, for LMTP one per accepted recipient, in RCPT order
// (RFC 2033 §4.2).
func (x *session) answerMessage(res *delivery.Result, id string, err error) {
	if !x.s.opt.LMTP {
		x.replyWith(x.smtpReply(res, id, err))
		return
	}
	var all *reply
	if err != nil {
		all = x.fail(err)
	}
	for i, rc := range x.rcpts {
		r := all
		if r == nil {
			if e := res.Errs[i]; e != nil {
				r = x.fail(e)
			}
		}
		if r == nil {
			x.reply(250, "2.0.0", "<"+rc.Address+"> Delivered, id "+id)
		} else {
			x.reply(r.code, r.enh, "<"+rc.Address+"> "+r.text)
		}
	}
}

// cmdStartTLS upgrades the connection (RFC 3207 §4).
func (x *session) cmdStartTLS(arg string) {
	cfg := x.s.opt.TLSConfig
	switch {
	case cfg == nil:
		x.refuse(replyNotImpl)
		return
	case x.tls:
		x.refuse(&reply{503, "5.5.1", "TLS already active"})
		return
	case arg != "":
		x.refuse(syntaxError("Syntax: STARTTLS"))
		return
	}
	x.reply(220, "2.0.0", "Ready to start TLS")
	if err := x.w.Flush(); err != nil {
		x.log.Debug("write failed", "err", err)
		x.quit = true
		return
	}
	// RFC 3207 §4.2, §6: anything the client sent after STARTTLS
	// before the handshake is dropped, so nothing plaintext can be
	// injected into the protected session.
	if n := x.r.Buffered(); n > 0 {
		x.log.Info("dropping data pipelined after STARTTLS", "bytes", n)
	}
	x.r.Reset(connReader{x})
	tc := tls.Server(x.conn, x.s.startTLS)
	ctx, cancel := context.WithTimeout(context.Background(), x.s.opt.CommandTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		x.log.Info("tls handshake failed", "err", err)
		x.quit = true
		return
	}
	x.conn = tc
	x.tls = true
	// RFC 3207 §4.2: back to the state after the greeting; what the
	// client said before is forgotten.
	x.helo = ""
	x.resetTx()
	state := tc.ConnectionState()
	x.log.Debug("tls started", "version", tls.VersionName(state.Version), "cipher", tls.CipherSuiteName(state.CipherSuite))
}
