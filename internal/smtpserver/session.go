package smtpserver

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/netserve"
)

// Buffer sizes. The read buffer holds command lines (at most maxLine) and
// the runs of message data the DATA reader scans; the write buffer holds
// the replies to a pipelined group of commands.
const (
	readBufSize  = 32 << 10
	writeBufSize = 4 << 10
)

// errLineTooLong is returned by readLine for a command line over maxLine.
var errLineTooLong = errors.New("command line too long")

// session is one SMTP/LMTP connection. Its fields are owned by the
// connection's goroutine.
type session struct {
	s        *Server
	k        killer         // ends a submission session on revocation (revoke.go)
	conn     net.Conn       // a *tls.Conn after STARTTLS
	tc       *netserve.Conn // the tracked connection; nil only outside netserve
	log      *slog.Logger
	r        *bufio.Reader // reads through connReader
	w        *bufio.Writer // writes through connWriter
	remoteIP string
	remote   netip.Addr // the client's address, for the guessing protection
	tls      bool

	// helo is the client's name from HELO, EHLO or LHLO; "" before one
	// (and again after STARTTLS).
	helo string

	// The mail transaction (RFC 5321 §3.3): inTx after an accepted MAIL.
	inTx      bool
	from      string
	rcpts     []*delivery.Recipient
	rcptTried bool  // a RCPT was given in this transaction, accepted or not
	utf8      bool  // MAIL had the SMTPUTF8 parameter (RFC 6531 §3.4)
	size      int64 // the SIZE= of MAIL (RFC 1870), 0 when not given
	// bdatFailed: the last BDAT transaction was refused; BDAT commands
	// the client pipelined after it are answered but not counted as bad.
	bdatFailed bool
	// bdatAbandoned: a command other than BDAT interrupted a BDAT
	// transaction; until RSET, MAIL or a greeting, DATA gets 503
	// (RFC 3030 §2).
	bdatAbandoned bool
	// unknownRcpts counts the recipients refused as unknown users in
	// this session (UnknownRcptLimits).
	unknownRcpts int

	// Submission (Options.Submission): the signed-in user (nil before
	// AUTH), the transaction's recipients on other servers, in RCPT
	// order, and BODY=8BITMIME.
	user    *auth.Principal
	remotes []string
	body8   bool

	bad int // unknown, malformed and out-of-sequence commands so far
	// junk counts the commands that made no progress since the session
	// began or the last message's data was received; progressBy is when
	// the next message's data must have been received (zero: no limit).
	// See progress.go.
	junk       int
	progressBy time.Time
	// chunkWait: waiting for the next BDAT command of a transaction,
	// which the progress deadline does not cut off.
	chunkWait bool
	inData    bool // reading message data: reads wait up to DataTimeout
	quit      bool // end the session once the replies are written

	// pending is a command line read while a BDAT transaction waited for
	// its next chunk; the main loop handles it next. pendingLong says
	// that line was too long instead.
	pending     []byte
	pendingLong bool

	num [8]byte // scratch for reply codes

	// dataClock says that the data timeout runs (connReader); blockLeft
	// is what is left of the current block of data.
	dataClock bool
	blockLeft int
}

func newSession(s *Server, conn net.Conn, tc *netserve.Conn, implicitTLS bool) *session {
	x := &session{s: s, conn: conn, tc: tc, log: s.log, tls: implicitTLS}
	if tc != nil {
		x.log = tc.Logger()
	}
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		x.remoteIP = ta.IP.String()
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			x.remote = a.Unmap()
		}
	}
	if s.remoteFor != nil {
		x.remote = s.remoteFor(conn)
	}
	x.r = bufio.NewReaderSize(connReader{x}, readBufSize)
	x.w = bufio.NewWriterSize(connWriter{x}, writeBufSize)
	if d := s.opt.ProgressTimeout; d > 0 {
		x.progressBy = time.Now().Add(d)
	}
	return x
}

// connReader is what the session's bufio.Reader reads from. Before every
// read from the network it writes the buffered replies, since the client
// may be waiting for them: replies are held back only while more commands
// are buffered (RFC 2920 §3.2), so a pipelined group is answered in one
// write.
//
// Deadlines (RFC 5321 §4.5.3.2): a command line must be complete within
// CommandTimeout of the moment the server began waiting for it (readLine
// sets the deadline; bytes that do not end the line do not move it, so a
// client trickling a byte at a time is cut off). Message data (DATA,
// BDAT) must arrive in blocks: the DataTimeout restarts when the data
// begins and after every dataBlock bytes, so a slow but steady upload
// goes on while a trickle of a few bytes a minute ends.
type connReader struct{ x *session }

// dataBlock is how much message data restarts the data timeout: a few
// TCP segments, which any live client sends within seconds.
const dataBlock = 4 << 10

func (c connReader) Read(p []byte) (int, error) {
	x := c.x
	if x.w.Buffered() > 0 {
		if err := x.w.Flush(); err != nil {
			return 0, err
		}
	}
	if !x.inData {
		x.dataClock = false
		return x.conn.Read(p)
	}
	if !x.dataClock || x.blockLeft <= 0 {
		x.setReadDeadline(time.Now().Add(x.s.opt.DataTimeout))
		x.dataClock, x.blockLeft = true, dataBlock
	}
	n, err := x.conn.Read(p)
	x.blockLeft -= n
	return n, err
}

// connWriter writes replies with a deadline, so a client that stops
// reading does not hold the session forever.
type connWriter struct{ x *session }

func (c connWriter) Write(p []byte) (int, error) {
	_ = c.x.conn.SetWriteDeadline(time.Now().Add(c.x.s.opt.CommandTimeout))
	return c.x.conn.Write(p)
}

// run serves the connection until QUIT, an error, a timeout or a
// shutdown.
func (x *session) run() {
	// RFC 5321 §4.2 and §4.3.1, RFC 2033 §4.1: the greeting.
	kind := "ESMTP"
	if x.s.opt.LMTP {
		kind = "LMTP"
	}
	x.reply(220, "", x.hostname()+" "+kind+" postfach ready")
	defer x.stopWatching()
	for !x.quit {
		line, err := x.nextLine()
		if errors.Is(err, errLineTooLong) {
			// RFC 5321 §4.5.3.1.4: 512 octets; the rest of the line
			// was read and dropped.
			x.refuse(replyLineTooLong)
			continue
		}
		if err != nil {
			x.readFailed(err)
			break
		}
		if x.draining() {
			x.goodbye("4.3.2", "Service shutting down, try again later")
			break
		}
		if x.endIfKilled() {
			break
		}
		x.dispatch(line)
	}
	if err := x.w.Flush(); err != nil {
		x.log.Debug("write failed", "err", err)
	}
}

func (x *session) hostname() string {
	if h := x.s.opt.Hostname; h != "" {
		return h
	}
	return "postfach"
}

func (x *session) draining() bool {
	return x.tc != nil && x.tc.Draining()
}

// setBusy marks the connection busy while a message is received and
// stored, so a shutdown waits for its reply.
func (x *session) setBusy(b bool) {
	if x.tc != nil {
		x.tc.SetBusy(b)
	}
}

// nextLine returns the next command line: one a BDAT transaction read
// ahead, or a new one.
func (x *session) nextLine() ([]byte, error) {
	if x.pendingLong {
		x.pendingLong = false
		return nil, errLineTooLong
	}
	if p := x.pending; p != nil {
		x.pending = nil
		return p, nil
	}
	return x.readLine()
}

// readLine reads one command line, line ending included. The slice is
// valid until the next read. A line longer than maxLine is read to its
// end and dropped (never held whole: at most the read buffer), and
// reported as errLineTooLong. The line must be complete within the
// command timeout (RFC 5321 §4.5.3.2.7), from now, and before the
// progress deadline (commandDeadline).
func (x *session) readLine() ([]byte, error) {
	x.setReadDeadline(x.commandDeadline())
	limit := maxLine
	if x.s.opt.Submission != nil {
		limit = maxSubmitLine
	}
	line, err := x.r.ReadSlice('\n')
	if err == nil {
		if len(line) > limit {
			return nil, errLineTooLong
		}
		return line, nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = x.r.ReadSlice('\n')
	}
	if err != nil {
		return nil, err
	}
	return nil, errLineTooLong
}

// readFailed ends the session after a failed read: a shutdown and a
// timeout get their 421 (RFC 5321 §3.8, §4.5.3.2), a closed connection
// nothing.
func (x *session) readFailed(err error) {
	var ne net.Error
	switch {
	case x.endIfKilled():
	case x.draining():
		x.goodbye("4.3.2", "Service shutting down, try again later")
		x.log.Debug("session ended by shutdown")
	case errors.As(err, &ne) && ne.Timeout() && !x.inData && !x.chunkWait && x.progressExpired():
		x.log.Info("no mail received in time, closing connection", "junk", x.junk)
		x.closeNoProgress(replyNoProgress)
	case errors.As(err, &ne) && ne.Timeout():
		x.goodbye(replyTimeout.enh, replyTimeout.text)
		x.log.Info("timeout, closing connection", "data", x.inData)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		if x.inTx {
			x.log.Info("connection closed in a mail transaction")
		}
	default:
		x.log.Debug("read failed", "err", err)
	}
	x.quit = true
}

// goodbye writes a 421 with the server's name (RFC 5321 §4.2.5:
// "421 <domain> Service not available, closing transmission channel")
// and ends the session.
func (x *session) goodbye(enh, text string) {
	x.reply(421, enh, x.hostname()+" "+text)
	x.quit = true
}

// reply buffers one reply line: code, the enhanced status code when
// there is one (RFC 2034 §3), text. 421 ends the session (RFC 5321 §3.8).
func (x *session) reply(code int, enh, text string) {
	x.w.Write(strconv.AppendInt(x.num[:0], int64(code), 10))
	x.w.WriteByte(' ')
	if enh != "" {
		x.w.WriteString(enh)
		x.w.WriteByte(' ')
	}
	x.w.WriteString(text)
	x.w.WriteString("\r\n")
	if code == 421 {
		x.quit = true
	}
}

func (x *session) replyWith(r *reply) { x.reply(r.code, r.enh, r.text) }

// replyLines buffers a multi-line reply (RFC 5321 §4.2.1: "250-" on every
// line but the last).
func (x *session) replyLines(code int, lines []string) {
	c := strconv.Itoa(code)
	for i, l := range lines {
		x.w.WriteString(c)
		if i < len(lines)-1 {
			x.w.WriteByte('-')
		} else {
			x.w.WriteByte(' ')
		}
		x.w.WriteString(l)
		x.w.WriteString("\r\n")
	}
}

// refuse answers a bad command (unknown, malformed, out of sequence) and
// counts it; too many end the session with 421.
func (x *session) refuse(r *reply) {
	x.replyWith(r)
	x.bad++
	if x.bad >= x.s.opt.MaxBadCommands && !x.quit {
		x.goodbye(replyTooManyBad.enh, replyTooManyBad.text)
		x.log.Info("too many bad commands, closing connection", "bad", x.bad)
	}
}

// fail maps a delivery or resolution error to its reply and counts it.
func (x *session) fail(err error) *reply {
	r, kind := replyFor(err)
	if kind != "" && x.s.opt.Metrics.Error != nil {
		x.s.opt.Metrics.Error(x.s.proto, kind)
	}
	return r
}

// resetTx ends the mail transaction (RSET, a new greeting, the end of a
// message).
func (x *session) resetTx() {
	x.inTx = false
	x.from = ""
	x.rcpts = nil
	x.rcptTried = false
	x.utf8 = false
	x.size = 0
	x.bdatAbandoned = false
	x.remotes = nil
	x.body8 = false
}

// protocol returns the Received: "with" keyword (RFC 3848), in the
// UTF8 form for a transaction with SMTPUTF8 (RFC 6531 §3.7.3: UTF8SMTP,
// UTF8SMTPS, UTF8LMTP).
func (x *session) protocol() string {
	p := "ESMTP"
	switch {
	case x.s.opt.LMTP:
		p = "LMTP"
	case x.tls:
		p = "ESMTPS"
	}
	if x.user != nil {
		// RFC 3848 §1: ESMTPA, ESMTPSA for an authenticated client.
		p += "A"
	}
	if x.utf8 {
		p = "UTF8" + strings.TrimPrefix(p, "E")
	}
	return p
}

// ctx is the context of store calls. It is not tied to the connection: a
// delivery under way when a drain starts must finish.
func (x *session) ctx() context.Context {
	return context.Background()
}

// newID returns a short random message id for logs and Received:.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
