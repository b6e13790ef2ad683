package imap

import (
	"bytes"
	"io"
)

// announcement is a literal announced at the end of a line: "{n}",
// "{n+}" (RFC 7888) or "~{n}" (literal8, RFC 3516).
type announcement struct {
	present  bool
	sync     bool  // synchronizing: the client waits for "+"
	binary   bool  // literal8
	overflow bool  // the size does not fit in 63 bits
	size     int64 // octet count
}

// parseAnnouncement recognises a literal announcement at the end of b (a
// line without CRLF) and returns it with its length in bytes. RFC 7888 §3:
// the server checks the end of every line for one.
func parseAnnouncement(b []byte) (announcement, int) {
	n := len(b)
	if n < 3 || b[n-1] != '}' {
		return announcement{}, 0
	}
	i := n - 2
	plus := false
	if b[i] == '+' {
		plus = true
		i--
	}
	j := i
	for j >= 0 && b[j] >= '0' && b[j] <= '9' {
		j--
	}
	if j == i || j < 0 || b[j] != '{' {
		return announcement{}, 0
	}
	a := announcement{present: true, sync: !plus}
	for _, c := range b[j+1 : i+1] {
		d := int64(c - '0')
		if a.size > (1<<63-1-d)/10 {
			a.overflow = true
			break
		}
		a.size = a.size*10 + d
	}
	start := j
	if start > 0 && b[start-1] == '~' {
		a.binary = true
		start--
	}
	return a, n - start
}

// tailBuf keeps the last bytes of a line too long to hold, so that a
// literal announcement at its end is still recognised.
type tailBuf struct {
	n   int
	buf [48]byte
}

func (t *tailBuf) reset() { t.n = 0 }

func (t *tailBuf) add(b []byte) {
	if len(b) >= len(t.buf) {
		t.n = copy(t.buf[:], b[len(b)-len(t.buf):])
		return
	}
	if t.n+len(b) > len(t.buf) {
		drop := t.n + len(b) - len(t.buf)
		copy(t.buf[:], t.buf[drop:t.n])
		t.n -= drop
	}
	t.n += copy(t.buf[t.n:], b)
}

func (t *tailBuf) bytes() []byte { return t.buf[:t.n] }

// checkLiteral applies the limits to the announced literal before any of
// its data is read.
func (r *Reader) checkLiteral(max int64, what string) announcement {
	a := r.ann
	if !a.sync && r.opt.LiteralMinus && (a.overflow || a.size > LiteralMinusMax) {
		// RFC 7888 §5: BAD, with TOOBIG (required for APPEND).
		failCode(BAD, CodeTooBig, "non-synchronizing literal larger than 4096 bytes")
	}
	if a.overflow || a.size > max {
		panic(parseFail{&ParseError{Status: BAD, Code: CodeTooBig, Reason: what + " too big", Limit: "literal"}})
	}
	return a
}

// literalString reads a literal into memory and returns it as a string.
// binary allows literal8 (RFC 3516), which may contain NUL.
func (r *Reader) literalString(binary bool) string {
	a := r.ann
	if a.binary && !binary {
		fail("literal8 not allowed here")
	}
	r.checkLiteral(r.opt.MaxLiteral, "literal")
	if a.size > r.budget {
		panic(parseFail{&ParseError{Status: BAD, Reason: "command too long", Limit: "command"}})
	}
	if !r.charge(int(a.size)) {
		// A client waiting for "+" sends nothing more of the command;
		// one that did not wait sends the data anyway (RFC 7888 §4).
		panic(parseFail{errMemory(!a.sync)})
	}
	r.budget -= a.size
	if a.sync && r.cont != nil {
		if err := r.cont(); err != nil {
			failIO(err)
		}
	}
	r.ann = announcement{}
	r.state = stInLiteral
	r.litLeft = a.size
	if int64(cap(r.scratch)) < a.size {
		r.scratch = make([]byte, a.size)
	}
	buf := r.scratch[:a.size]
	if _, err := io.ReadFull(r.br, buf); err != nil {
		failIO(eofErr(err))
	}
	r.litLeft = 0
	r.state = stAfterLiteral
	s := string(buf)
	hasNUL := bytes.IndexByte(buf, 0) >= 0
	if cap(r.scratch) > 64<<10 {
		r.scratch = nil // do not keep a big buffer for an idle session
	}
	r.nextLine()
	if !a.binary && hasNUL {
		// RFC 9051 §4.3: a literal holds CHAR8, which excludes NUL.
		fail("NUL in literal")
	}
	return s
}

// Literal is literal data the client announced and has not sent yet (or
// sent but the server has not read): an APPEND or REPLACE message, or a
// CATENATE TEXT part. The server decides whether to accept it before
// calling Open; to refuse it, it answers the command and calls Abort on
// the Append or Replace instead.
type Literal struct {
	// Size is the announced number of octets.
	Size int64
	// Sync reports a synchronizing literal: the client waits for a
	// continuation request before sending the data.
	Sync bool
	// Binary reports literal8 ("~{n}", RFC 3516): the data may contain
	// NUL and any octet.
	Binary bool

	r      *Reader
	gen    uint64
	opened bool
}

// Open sends the continuation request for a synchronizing literal and
// returns a reader of exactly Size bytes of data, streamed from the
// connection. Read it to io.EOF before calling Next (or NextPart) again.
func (l *Literal) Open() (io.Reader, error) {
	if l.r == nil || l.r.gen != l.gen || l.opened || l.r.state != stLine || !l.r.ann.present {
		return nil, ErrStreamDone
	}
	l.opened = true
	r := l.r
	if l.Sync && r.cont != nil {
		if err := r.cont(); err != nil {
			return nil, err
		}
	}
	r.ann = announcement{}
	r.state = stInLiteral
	r.litLeft = l.Size
	if l.Size == 0 {
		r.state = stAfterLiteral
	}
	return literalReader{l}, nil
}

// literalReader reads the data of an opened Literal.
type literalReader struct{ l *Literal }

// Read implements io.Reader.
func (lr literalReader) Read(p []byte) (int, error) {
	r := lr.l.r
	if r.gen != lr.l.gen || r.state != stInLiteral {
		if r.gen == lr.l.gen && r.state == stAfterLiteral {
			return 0, io.EOF
		}
		return 0, ErrStreamDone
	}
	if int64(len(p)) > r.litLeft {
		p = p[:r.litLeft]
	}
	n, err := r.br.Read(p)
	r.litLeft -= int64(n)
	if r.litLeft == 0 {
		r.state = stAfterLiteral
		return n, nil
	}
	if err != nil {
		return n, eofErr(err)
	}
	return n, nil
}

// finishLiteral drains a streamed literal the server did not read to the
// end (opening it if needed: the client is owed the continuation) and
// reads the line that follows it.
func (r *Reader) finishLiteral(l *Literal) {
	if !l.opened {
		if _, err := l.Open(); err != nil {
			failIO(err)
		}
	}
	if r.state == stInLiteral {
		if _, err := io.CopyN(io.Discard, r.br, r.litLeft); err != nil {
			failIO(eofErr(err))
		}
		r.litLeft = 0
		r.state = stAfterLiteral
	}
	r.nextLine()
}
