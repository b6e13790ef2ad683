package pop3server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/postfach/postfach/internal/store"
)

// msgArg parses the single message-number argument of LIST n, UIDL n,
// RETR, DELE and TOP. A nil message means the response was written (err
// is then errCloseSession or nil).
func (x *session) msgArg(cmd command, arg string) (*msg, int, error) {
	n, valid := parseNumber(arg)
	if !valid {
		return nil, 0, x.badCommand("Invalid message number")
	}
	m, why := x.md.get(n)
	if m == nil {
		x.reply("-ERR %s", why)
		return nil, n, nil
	}
	return m, n, nil
}

// cmdStat answers STAT (RFC 1939 §5): messages not deleted and their size.
func (x *session) cmdStat(cmd command) error {
	if len(cmd.args) != 0 {
		return x.badCommand("STAT takes no arguments")
	}
	n, size := x.md.stat()
	x.reply("+OK %d %d", n, size)
	return nil
}

// cmdList answers LIST [n] (RFC 1939 §5). A size is the message as RETR
// sends it, before byte-stuffing and without the final "." line (§11).
func (x *session) cmdList(cmd command) error {
	if len(cmd.args) > 1 {
		return x.badCommand("LIST takes at most one message number")
	}
	if len(cmd.args) == 1 {
		m, n, err := x.msgArg(cmd, cmd.args[0])
		if m != nil {
			x.reply("+OK %d %d", n, m.size)
		}
		return err
	}
	n, size := x.md.stat()
	x.reply("+OK %d %s (%d octets)", n, plural(n, "message", "messages"), size)
	var buf []byte
	for i := range x.md.msgs {
		if m := &x.md.msgs[i]; !m.deleted && !m.gone {
			buf = strconv.AppendInt(buf[:0], int64(i+1), 10)
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, m.size, 10)
			buf = append(buf, '\r', '\n')
			x.w.Write(buf)
		}
	}
	x.reply(".")
	return nil
}

// cmdUidl answers UIDL [n] (RFC 1939 §7).
func (x *session) cmdUidl(cmd command) error {
	if len(cmd.args) > 1 {
		return x.badCommand("UIDL takes at most one message number")
	}
	if len(cmd.args) == 1 {
		m, n, err := x.msgArg(cmd, cmd.args[0])
		if m != nil {
			x.reply("+OK %d %s", n, m.uidl)
		}
		return err
	}
	x.reply("+OK Unique-id listing follows")
	var buf []byte
	for i := range x.md.msgs {
		if m := &x.md.msgs[i]; !m.deleted && !m.gone {
			buf = strconv.AppendInt(buf[:0], int64(i+1), 10)
			buf = append(buf, ' ')
			buf = append(buf, m.uidl...)
			buf = append(buf, '\r', '\n')
			x.w.Write(buf)
		}
	}
	x.reply(".")
	return nil
}

// cmdDele marks a message deleted; it is removed at QUIT (RFC 1939 §5).
func (x *session) cmdDele(cmd command) error {
	if len(cmd.args) != 1 {
		return x.badCommand("DELE needs one message number")
	}
	m, n, err := x.msgArg(cmd, cmd.args[0])
	if m == nil {
		return err
	}
	m.deleted = true
	x.reply("+OK Message %d deleted", n)
	return nil
}

// cmdNoop answers NOOP (RFC 1939 §5).
func (x *session) cmdNoop(cmd command) error {
	if len(cmd.args) != 0 {
		return x.badCommand("NOOP takes no arguments")
	}
	x.reply("+OK")
	return nil
}

// cmdRset undeletes the session's DELEs (RFC 1939 §5).
func (x *session) cmdRset(cmd command) error {
	if len(cmd.args) != 0 {
		return x.badCommand("RSET takes no arguments")
	}
	x.md.rset()
	n, size := x.md.stat()
	x.reply("+OK Maildrop has %d %s (%d octets)", n, plural(n, "message", "messages"), size)
	return nil
}

// cmdRetr sends a message (RFC 1939 §5), streamed from the store, and
// marks it \Seen when the policy says so.
func (x *session) cmdRetr(cmd command) error {
	if len(cmd.args) != 1 {
		return x.badCommand("RETR needs one message number")
	}
	m, n, err := x.msgArg(cmd, cmd.args[0])
	if m == nil {
		return err
	}
	sent, err := x.sendMessage(m, n, -1)
	if !sent {
		return err
	}
	x.startReadAhead(n)
	if f := x.s.opt.Metrics.Retrieved; f != nil {
		f(m.size)
	}
	if x.md.seen != nil && !m.seen {
		m.seen = true
		x.md.seen.add(m.uid)
	}
	return nil
}

// cmdTop sends the header and the first lines of the body of a message
// (RFC 1939 §7). It does not mark the message \Seen.
func (x *session) cmdTop(cmd command) error {
	if len(cmd.args) != 2 {
		return x.badCommand("TOP needs a message number and a number of lines")
	}
	lines, valid := parseNumber(cmd.args[1])
	if !valid && allDigits(cmd.args[1]) {
		// RFC 1939 §7: n is any non-negative number; one too large to
		// count asks for the whole body, like any n beyond its end.
		lines, valid = -1, true
	}
	if !valid {
		return x.badCommand("Invalid number of lines")
	}
	m, n, err := x.msgArg(cmd, cmd.args[0])
	if m == nil {
		return err
	}
	_, err = x.sendMessage(m, n, lines)
	return err
}

// sendMessage writes "+OK", the message byte-stuffed (all of it for lines
// < 0, else its header and that many body lines), and the final ".". It
// reports whether it sent the message; when the body cannot be opened,
// the client gets -ERR [SYS/TEMP] instead. Once "+OK" is out, a read
// error can only be reported by closing the connection.
func (x *session) sendMessage(m *msg, n, lines int) (bool, error) {
	var body store.Body
	var err error
	if lines < 0 {
		body = x.takeReadAhead(n)
	} else if body = x.peekReadAhead(n); body != nil {
		// TOP leaves the body in the queue for the RETR that often
		// follows; it reads with ReadAt, which moves no file offset.
		body = noClose{body}
	}
	if body == nil {
		body, err = x.s.opt.Store.OpenBody(context.Background(), m.blob)
		if err == nil && lines >= 0 && x.keepAhead(n, m.size, body) {
			// TOP opened the body of the message a RETR often asks
			// for next: the queue keeps it and closes it.
			body = noClose{body}
		}
	}
	if errors.Is(err, store.ErrDamaged) {
		// The store logged the damage (once per body); the session goes on
		// and the other messages can be retrieved. No response code: it is
		// neither a temporary failure nor one of the whole system (RFC 3206).
		x.log.Warn("message body damaged: refused", "uid", m.uid, "err", err)
		x.reply("-ERR Message %d cannot be sent: its stored copy is damaged on the server (the administrator can find it in the server log)", n)
		return false, nil
	}
	if err != nil {
		x.log.Error("open message body failed", "uid", m.uid, "err", err)
		x.reply("-ERR " + codeSysTemp + "Cannot read the message, try again later")
		return false, nil
	}
	defer body.Close()
	if lines < 0 && x.manyWrites(m.size) {
		x.cork.Hold()
	}
	if lines < 0 {
		x.reply("+OK %d octets", m.size)
	} else {
		x.reply("+OK Top of message follows")
	}
	st := stuffer{w: x.w, bol: true}
	r := io.NewSectionReader(body, 0, body.Size())
	if lines < 0 {
		if handled, err := x.sendFile(body); handled {
			if err != nil {
				x.log.Error("sending message failed", "uid", m.uid, "err", err)
				return true, fmt.Errorf("send message %d: %w", m.uid, err)
			}
			return true, nil
		}
	}
	if bb, ok := body.(store.BodyBytes); ok && lines < 0 {
		// Held in memory already: stuff and send it without a chunk copy.
		st.write(bb.Bytes())
		err = st.err
	} else if lines < 0 {
		buf := copyBufs.Get().(*[]byte)
		err = st.copyAll(r, *buf)
		copyBufs.Put(buf)
	} else {
		err = st.copyTop(r, lines)
	}
	if err != nil {
		x.log.Error("sending message failed", "uid", m.uid, "err", err)
		return true, fmt.Errorf("send message %d: %w", m.uid, err)
	}
	st.finish()
	return true, nil
}

// tlsRecord is the most a TLS record carries (RFC 8446 §5.1): crypto/tls
// writes each record with a system call of its own.
const tlsRecord = 16 << 10

// manyWrites reports whether a reply carrying a message of size octets
// will reach the socket in more than one write: it does not fit in the
// write buffer, or under TLS in one record (a body sent with sendfile(2)
// is kept in a file for being large, and always does not). Such a reply
// is corked, so that the client receives full segments instead of one
// per write (a lone status line, the short remainder of each 64 KiB
// splice, a stuffing dot, a terminator), each of which costs it a wakeup.
func (x *session) manyWrites(size int64) bool {
	room := int64(x.w.Available()) - 64 // the status line and terminator
	if x.tls {
		room = min(room, tlsRecord-64)
	}
	return size > room
}

// noClose is a body lent by the read-ahead queue, which closes it.
type noClose struct{ store.Body }

func (noClose) Close() error { return nil }

// Read-ahead limits: at most readAheadCount bodies of messages after the
// last one retrieved are held open, of together at most readAheadBytes
// octets; one larger than readAheadMax is passed over.
const (
	readAheadCount = 4
	readAheadBytes = 1 << 20
	readAheadMax   = 1 << 20
)

// readAhead is the body of a message after the last one retrieved, opened
// while the client still reads that one: most clients retrieve the
// messages in order, and the next RETR then finds its body ready.
type readAhead struct {
	n    int // message number
	size int64
	body store.Body
}

// startReadAhead notes that message n was retrieved: the body of the next
// one is opened when the session next waits for the client (openAhead).
func (x *session) startReadAhead(n int) { x.aheadAfter = n }

// openAhead opens the body of the message after the last one retrieved,
// on the session's goroutine, once the reply has gone out and before the
// session waits for the next command: the open overlaps with the client
// reading the reply, and costs no goroutine handoff. (It ran on a
// goroutine of its own, four bodies ahead, until the waking of that
// goroutine and of the session for every RETR was found to cost more
// server CPU than the open it moved: docs/benchmarks.md, "POP3 per RETR,
// again".) One body is opened per wait; a pipelining client, whose next
// command is already there, opens its bodies as it asks for them.
func (x *session) openAhead() {
	n := x.aheadAfter
	x.aheadAfter = 0
	if n == 0 || x.md == nil || len(x.ahead) >= readAheadCount {
		return
	}
	var held int64
	for _, ra := range x.ahead {
		n = ra.n
		held += ra.size
	}
	for next := n + 1; next <= len(x.md.msgs); next++ {
		m, _ := x.md.get(next)
		if m == nil {
			continue
		}
		if m.size > readAheadMax {
			continue // opened when it is asked for
		}
		if held+m.size > readAheadBytes {
			return
		}
		body, err := x.s.opt.Store.OpenBody(context.Background(), m.blob)
		if err != nil {
			return // the RETR opens it again and answers the error
		}
		x.ahead = append(x.ahead, &readAhead{n: next, size: m.size, body: body})
		return
	}
}

// keepAhead puts the body of message n, opened for a TOP, in the
// read-ahead queue for the RETR that often follows, when it is the next
// one the queue would hold. It reports whether the queue took it (and
// will close it).
func (x *session) keepAhead(n int, size int64, body store.Body) bool {
	if size > readAheadMax || len(x.ahead) >= readAheadCount {
		return false
	}
	if k := len(x.ahead); k > 0 && x.ahead[k-1].n >= n {
		return false
	}
	x.ahead = append(x.ahead, &readAhead{n: n, size: size, body: body})
	return true
}

// takeReadAhead returns the body opened ahead for message n, or nil. The
// client went past the bodies opened for messages before n: they are
// closed. A message after n is kept, for when the client goes on in
// order.
func (x *session) takeReadAhead(n int) store.Body {
	for len(x.ahead) > 0 && x.ahead[0].n < n {
		x.popAhead().body.Close()
	}
	if len(x.ahead) == 0 || x.ahead[0].n != n {
		return nil
	}
	return x.popAhead().body
}

// peekReadAhead returns the body opened ahead for message n, or nil,
// leaving it in the queue.
func (x *session) peekReadAhead(n int) store.Body {
	for _, ra := range x.ahead {
		if ra.n == n {
			return ra.body
		}
	}
	return nil
}

// popAhead removes the first entry of the read-ahead queue. The slot is
// cleared, so that the queue's array does not keep a body alive.
func (x *session) popAhead() *readAhead {
	ra := x.ahead[0]
	x.ahead[0] = nil
	x.ahead = x.ahead[1:]
	return ra
}

// discardReadAhead closes the bodies opened ahead, if any.
func (x *session) discardReadAhead() {
	for _, ra := range x.ahead {
		ra.body.Close()
	}
	clear(x.ahead)
	x.ahead = x.ahead[:0]
	x.aheadAfter = 0
}

// allDigits reports whether s is a non-empty string of ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
