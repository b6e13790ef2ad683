package imap

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"unicode/utf8"
)

// Default limits of a Reader (see Options).
const (
	DefaultMaxLine    = 64 << 10
	DefaultMaxLiteral = 1 << 20
	DefaultMaxCommand = 2 << 20
	DefaultMaxAppend  = 64 << 20
	DefaultMaxDiscard = 1 << 20

	// LiteralMinusMax is the largest non-synchronizing literal a client
	// may send to a LITERAL- server (RFC 7888 §5).
	LiteralMinusMax = 4096

	// maxDepth bounds the nesting of parenthesised lists and search keys.
	maxDepth = 64
)

// Options are the limits of a Reader. Every limit is checked before the
// data it guards is read, so an announcement such as "{10000000000}" is
// refused without reading a byte of the literal. Zero fields take the
// defaults.
type Options struct {
	// MaxLine is the longest line of command text (without CRLF and
	// without literal data). Default DefaultMaxLine.
	MaxLine int
	// MaxLiteral is the largest literal the Reader buffers as a string
	// argument (everything except APPEND/REPLACE message data and CATENATE
	// TEXT parts, which are streamed). Default DefaultMaxLiteral.
	MaxLiteral int64
	// MaxCommand bounds the command text plus buffered literals of one
	// command (streamed message data does not count). Default
	// DefaultMaxCommand.
	MaxCommand int64
	// MaxAppend is the largest message literal of APPEND, REPLACE and a
	// CATENATE TEXT part; a larger one is refused with "NO [TOOBIG]"
	// (RFC 7889). It should equal the advertised APPENDLIMIT. Default
	// DefaultMaxAppend.
	MaxAppend int64
	// MaxDiscard is how many bytes the Reader reads and throws away to
	// resynchronise after an error: the rest of an overlong line and any
	// non-synchronizing literals that follow a rejected command. When more
	// would be needed the error is Fatal and the connection must close
	// (RFC 7888 §4 allows either choice; reading unbounded data would let
	// a client make the server consume gigabytes). Default
	// DefaultMaxDiscard.
	MaxDiscard int64
	// LiteralMinus enforces LITERAL- (RFC 7888 §5): non-synchronizing
	// literals larger than LiteralMinusMax are refused with
	// "BAD [TOOBIG]". Set it when the server advertises LITERAL- rather
	// than LITERAL+.
	LiteralMinus bool
	// Budget, when set, is charged for the bytes the Reader holds for the
	// command being read (its lines and buffered literals) before it
	// holds them, and given them back when the next command begins, at
	// ReleaseBuffers and at SetOptions. When it refuses, the command is
	// refused with "BAD [LIMIT]": fatally, unless the refused bytes are a
	// synchronizing literal the client has not been invited to send.
	// Servers set it before authentication (a per-client limit).
	Budget Budget
	// OnLine, when set, is called after each complete line of command
	// text is read (a command line, the line after a literal, an
	// AUTHENTICATE response, IDLE's DONE). Servers restart their idle
	// timer there, so that a client sending a byte at a time does not.
	OnLine func()
}

// Budget is what Options.Budget is charged to. netserve.Conn implements
// it.
type Budget interface {
	// Grow reports whether n more bytes may be held, and counts them.
	Grow(n int64) bool
	// Shrink gives back n bytes counted by Grow.
	Shrink(n int64)
}

func (o Options) withDefaults() Options {
	if o.MaxLine <= 0 {
		o.MaxLine = DefaultMaxLine
	}
	if o.MaxLiteral <= 0 {
		o.MaxLiteral = DefaultMaxLiteral
	}
	if o.MaxCommand <= 0 {
		o.MaxCommand = DefaultMaxCommand
	}
	if o.MaxAppend <= 0 {
		o.MaxAppend = DefaultMaxAppend
	}
	if o.MaxDiscard <= 0 {
		o.MaxDiscard = DefaultMaxDiscard
	}
	return o
}

// streamState says where the Reader is within the client's byte stream.
type streamState uint8

const (
	// stBoundary: at the start of a command.
	stBoundary streamState = iota
	// stLine: r.line holds a complete line (its CRLF consumed); r.ann is
	// its trailing literal announcement, whose data has not been read.
	stLine
	// stLongOpen: an overlong line was cut; the rest of it is unread.
	stLongOpen
	// stInLiteral: literal data is being read; r.litLeft bytes remain.
	stInLiteral
	// stAfterLiteral: literal data was read; the line that continues the
	// command is not.
	stAfterLiteral
)

// Reader reads IMAP commands from a client (RFC 9051 §2.2.1). It is not
// safe for concurrent use; one goroutine (the session) owns it.
type Reader struct {
	br   *bufio.Reader
	cont func() error
	opt  Options

	state   streamState
	line    []byte       // current line without CRLF and without ann
	pos     int          // parse position in line
	ann     announcement // literal announced at the end of line
	litLeft int64        // stInLiteral: bytes of literal data left
	tail    tailBuf      // end of an overlong line, for its announcement
	budget  int64        // command bytes left (Options.MaxCommand)
	tag     string       // tag of the command being read
	cmdName string       // name of the command being read
	depth   int          // nesting depth of the current parse
	gen     uint64       // incremented for every command read
	held    int64        // bytes charged to opt.Budget for this command

	scratch []byte // buffer for literal data
}

// NewReader returns a Reader of commands from br. cont is called before
// the Reader reads the data of a synchronizing literal; it must send a
// command continuation request ("+ Ready for literal data", see
// Encoder.ContinuationRequest) and flush it. cont may be nil in tests.
func NewReader(br *bufio.Reader, cont func() error, opt Options) *Reader {
	return &Reader{br: br, cont: cont, opt: opt.withDefaults()}
}

// SetOptions replaces the Reader's limits, as when a client logs in and
// the limits before authentication no longer apply. Call it only between
// commands. What the old Budget was charged is given back.
func (r *Reader) SetOptions(opt Options) {
	r.uncharge()
	r.opt = opt.withDefaults()
}

// InLiteral reports whether the Reader is reading literal data (as
// opposed to command text), for servers that treat a trickle of literal
// data differently from one of command text.
func (r *Reader) InLiteral() bool { return r.state == stInLiteral }

// charge counts n more bytes held for the command against the Budget;
// false means it refused them.
func (r *Reader) charge(n int) bool {
	if r.opt.Budget == nil || n <= 0 {
		return true
	}
	if !r.opt.Budget.Grow(int64(n)) {
		return false
	}
	r.held += int64(n)
	return true
}

// uncharge gives back what the current command held.
func (r *Reader) uncharge() {
	if r.held > 0 && r.opt.Budget != nil {
		r.opt.Budget.Shrink(r.held)
	}
	r.held = 0
}

// errMemory is the error for bytes the Budget refused.
func errMemory(fatal bool) *ParseError {
	return &ParseError{Status: BAD, Code: CodeLimit, Reason: "too much pending data from your address", Fatal: fatal, Limit: "memory"}
}

// Reset makes the Reader read from br, as after STARTTLS or COMPRESS. Call
// it only between commands. Before switching to TLS the server must check
// that Buffered is 0: bytes the client sent after STARTTLS in the clear
// must not be treated as protected commands (they would allow command
// injection); close the connection instead.
func (r *Reader) Reset(br *bufio.Reader) {
	r.br = br
	r.state = stBoundary
}

// Buffered returns the number of bytes read from the connection but not
// yet consumed.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// ReleaseBuffers drops the Reader's own buffers (the line buffer and the
// literal scratch space) when they have grown beyond a small size, so a
// session waiting for its next command (IDLE) keeps little memory. Call it
// only between commands.
func (r *Reader) ReleaseBuffers() {
	if cap(r.line) > 1024 {
		r.line = nil
	}
	r.scratch = nil
	r.uncharge()
}

// run executes a parse function and turns a parse failure into a returned
// error, resynchronising the stream first.
func (r *Reader) run(f func()) (err error) {
	defer func() {
		x := recover()
		if x == nil {
			return
		}
		pf, ok := x.(parseFail)
		if !ok {
			panic(x)
		}
		err = r.failure(pf.err)
	}()
	f()
	return nil
}

// failure completes err with the tag and, for a ParseError that is not
// fatal, consumes the rest of the command. Errors from the connection are
// returned as they are.
func (r *Reader) failure(err error) error {
	var pe *ParseError
	if !errors.As(err, &pe) {
		return err
	}
	pe.Tag = r.tag
	if pe.Status == "" {
		pe.Status = BAD
	}
	if pe.Fatal {
		return pe
	}
	if rerr := r.resync(); rerr != nil {
		var fe *ParseError
		if errors.As(rerr, &fe) {
			// Keep the original reason: it says what was wrong; the
			// connection closes because skipping it was too costly.
			pe.Fatal = true
			if fe.Code != "" && pe.Code == "" {
				pe.Code = fe.Code
			}
			return pe
		}
		return rerr
	}
	return pe
}

// resync consumes the rest of the current command as the client sends it
// after a BAD or NO: the remainder of the line; the data of every
// non-synchronizing literal announced at a line end, and the line after
// it; up to the first line that ends without a literal announcement or
// with a synchronizing one (the client waits for a continuation that will
// not come, RFC 9051 §7.5 "+" and §2.2.1). An open literal the client was
// invited to send is drained in full. Skipped bytes beyond MaxDiscard make
// the error fatal.
func (r *Reader) resync() error {
	budget := r.opt.MaxDiscard
	for {
		switch r.state {
		case stBoundary:
			return nil
		case stInLiteral:
			// The client was told to send these bytes; they were
			// accepted within the limits, so read them regardless.
			if _, err := io.CopyN(io.Discard, r.br, r.litLeft); err != nil {
				return eofErr(err)
			}
			r.litLeft = 0
			r.state = stAfterLiteral
		case stAfterLiteral:
			r.tail.reset()
			if err := r.skipLine(&budget); err != nil {
				return err
			}
		case stLongOpen:
			if err := r.skipLine(&budget); err != nil {
				return err
			}
		case stLine:
			a := r.ann
			r.line = r.line[:0]
			r.pos = 0
			r.ann = announcement{}
			switch {
			case !a.present:
				r.state = stBoundary
			case a.sync:
				// No continuation was sent, so the client sends
				// nothing more of this command.
				r.state = stBoundary
			case a.overflow || a.size > budget:
				return &ParseError{Status: BAD, Code: CodeTooBig, Reason: "literal too big to skip", Fatal: true}
			default:
				budget -= a.size
				if _, err := io.CopyN(io.Discard, r.br, a.size); err != nil {
					return eofErr(err)
				}
				r.state = stAfterLiteral
			}
		}
	}
}

// skipLine reads and discards up to and including the next LF, tracking
// the last bytes to find a trailing literal announcement. It leaves the
// Reader in stLine with an empty line.
func (r *Reader) skipLine(budget *int64) error {
	for {
		chunk, err := r.br.ReadSlice('\n')
		*budget -= int64(len(chunk))
		if *budget < 0 {
			return &ParseError{Status: BAD, Reason: "command too long to skip", Fatal: true}
		}
		r.tail.add(chunk)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return eofErr(err)
		}
	}
	t := trimEOL(r.tail.bytes())
	a, _ := parseAnnouncement(t)
	r.line = r.line[:0]
	r.pos = 0
	r.ann = a
	r.state = stLine
	return nil
}

// eofErr turns io.EOF in the middle of a command into io.ErrUnexpectedEOF.
func eofErr(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// trimEOL removes a trailing LF and the CR before it.
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// errLineTooLong is raised by nextLine for an overlong line.
func errLineTooLong() *ParseError {
	return &ParseError{Status: BAD, Reason: "command line too long", Limit: "line"}
}

// readLine reads the next line of command text into r.line, stripping the
// CRLF (a bare LF is accepted) and a trailing literal announcement, which
// goes to r.ann. An overlong line yields a ParseError with the Reader in
// stLongOpen or stLine, ready for resync. At a clean end of stream before
// any byte of a line it returns io.EOF.
func (r *Reader) readLine() error {
	r.line = r.line[:0]
	r.pos = 0
	r.ann = announcement{}
	max := r.opt.MaxLine + 2 // the CRLF is not counted
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(r.line)+len(chunk) > max {
			// Keep the start (for the tag), remember the end (for a
			// literal announcement), and leave the rest for resync.
			r.tail.reset()
			r.tail.add(r.line)
			r.tail.add(chunk)
			if room := r.opt.MaxLine - len(r.line); room > 0 {
				if !r.charge(room) {
					return errMemory(true)
				}
				r.line = append(r.line, chunk[:room]...)
			}
			switch {
			case err == nil:
				a, _ := parseAnnouncement(trimEOL(r.tail.bytes()))
				r.ann = a
				r.state = stLine
			case err == bufio.ErrBufferFull:
				r.state = stLongOpen
			default:
				return eofErr(err)
			}
			return errLineTooLong()
		}
		if !r.charge(len(chunk)) {
			return errMemory(true)
		}
		r.line = append(r.line, chunk...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF && len(r.line) == 0 && r.state == stBoundary {
				return io.EOF
			}
			return eofErr(err)
		}
	}
	r.line = trimEOL(r.line)
	a, n := parseAnnouncement(r.line)
	r.line = r.line[:len(r.line)-n]
	r.ann = a
	r.state = stLine
	if r.opt.OnLine != nil {
		r.opt.OnLine()
	}
	r.budget -= int64(len(r.line))
	if r.budget < 0 {
		// Treat the line as read; resync skips what follows.
		return &ParseError{Status: BAD, Reason: "command too long", Limit: "command"}
	}
	return nil
}

// nextLine reads the line that continues a command after literal data,
// aborting the parse on failure.
func (r *Reader) nextLine() {
	if err := r.readLine(); err != nil {
		failIO(err)
	}
}

// begin prepares the Reader for a new command, abandoning what is left of
// the previous one (an APPEND whose messages the server did not read).
func (r *Reader) begin() error {
	if r.state != stBoundary {
		if err := r.resync(); err != nil {
			return err
		}
	}
	r.uncharge()
	r.gen++
	r.tag = ""
	r.depth = 0
	r.budget = r.opt.MaxCommand
	return nil
}

// ReadDone reads the line that ends IDLE (RFC 9051 §6.3.13). It returns
// nil for "DONE" (in any case) and a ParseError for anything else; the
// server then answers the IDLE command with BAD (the ParseError has no tag:
// use the IDLE command's).
func (r *Reader) ReadDone() error {
	if err := r.begin(); err != nil {
		return err
	}
	return r.run(func() {
		if err := r.readLine(); err != nil {
			failIO(err)
		}
		if r.ann.present || !equalFold(r.line, "DONE") {
			fail("expected DONE")
		}
		r.state = stBoundary
	})
}

// ReadSASLResponse reads one client response of an AUTHENTICATE exchange
// (RFC 9051 §6.2.2) and returns it base64-decoded. It returns
// ErrSASLCancelled when the client sends "*", and a ParseError for a line
// that is not valid base64.
func (r *Reader) ReadSASLResponse() ([]byte, error) {
	if err := r.begin(); err != nil {
		return nil, err
	}
	var out []byte
	var cancelled bool
	err := r.run(func() {
		if err := r.readLine(); err != nil {
			failIO(err)
		}
		if r.ann.present {
			fail("invalid base64 in authentication response")
		}
		r.state = stBoundary
		if len(r.line) == 1 && r.line[0] == '*' {
			cancelled = true
			return
		}
		var ok bool
		out, ok = decodeBase64(r.line)
		if !ok {
			fail("invalid base64 in authentication response")
		}
	})
	if err != nil {
		return nil, err
	}
	if cancelled {
		return nil, ErrSASLCancelled
	}
	return out, nil
}

// decodeBase64 decodes standard base64, with or without padding.
func decodeBase64(b []byte) ([]byte, bool) {
	enc := base64.StdEncoding
	if len(b)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	out := make([]byte, enc.DecodedLen(len(b)))
	n, err := enc.Decode(out, b)
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

// --- tokens -------------------------------------------------------------

// peek returns the next byte of the line, or -1 at its end.
func (r *Reader) peek() int {
	if r.pos < len(r.line) {
		return int(r.line[r.pos])
	}
	return -1
}

// atLiteral reports whether the parse position is at a literal
// announcement.
func (r *Reader) atLiteral() bool {
	return r.pos == len(r.line) && r.ann.present
}

// atEnd reports whether the command text is exhausted.
func (r *Reader) atEnd() bool {
	return r.pos == len(r.line) && !r.ann.present
}

// end checks that the command is complete and marks the stream at a
// command boundary.
func (r *Reader) end() {
	if r.ann.present {
		fail("unexpected literal at end of command")
	}
	if r.pos < len(r.line) {
		fail("unexpected characters at end of command")
	}
	r.state = stBoundary
}

// sp consumes one space.
func (r *Reader) sp() {
	if r.peek() != ' ' {
		if r.pos == len(r.line) {
			fail("missing argument")
		}
		fail("expected space")
	}
	r.pos++
}

// maybeSP consumes a space if there is one.
func (r *Reader) maybeSP() bool {
	if r.peek() == ' ' {
		r.pos++
		return true
	}
	return false
}

// expect consumes byte c.
func (r *Reader) expect(c byte, what string) {
	if r.peek() != int(c) {
		fail("expected " + what)
	}
	r.pos++
}

// enter and leave bound the nesting depth of recursive productions.
func (r *Reader) enter() {
	r.depth++
	if r.depth > maxDepth {
		fail("nesting too deep")
	}
}

func (r *Reader) leave() { r.depth-- }

// Character classes (RFC 9051 §9).
const (
	cAtom    = 1 << iota // ATOM-CHAR
	cAString             // ASTRING-CHAR
	cList                // list-char
	cTag                 // tag char
	cDigit
)

var charClass = func() (t [256]uint8) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = cAtom | cAString | cList | cTag
	}
	for _, c := range []byte(`(){ %*"\]`) {
		t[c] &^= cAtom | cAString | cList | cTag
	}
	t[']'] |= cAString | cList | cTag
	t['%'] |= cList
	t['*'] |= cList
	t['+'] &^= cTag
	for c := '0'; c <= '9'; c++ {
		t[c] |= cDigit
	}
	return t
}()

// span consumes the longest run of bytes of class cls and returns it.
func (r *Reader) span(cls uint8) []byte {
	start := r.pos
	for r.pos < len(r.line) && charClass[r.line[r.pos]]&cls != 0 {
		r.pos++
	}
	return r.line[start:r.pos]
}

// atom consumes an atom.
func (r *Reader) atom(what string) []byte {
	a := r.span(cAtom)
	if len(a) == 0 {
		fail("expected " + what)
	}
	return a
}

// keyword consumes an atom and returns it upper-cased in buf (no
// allocation for short keywords).
func (r *Reader) keyword(buf []byte, what string) []byte {
	return upperASCII(buf[:0], r.atom(what))
}

// upperASCII appends b upper-cased to dst.
func upperASCII(dst, b []byte) []byte {
	for _, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// upperString returns s upper-cased (ASCII only).
func upperString(b []byte) string {
	for _, c := range b {
		if 'a' <= c && c <= 'z' {
			var buf [64]byte
			return string(upperASCII(buf[:0], b))
		}
	}
	return string(b)
}

// equalFold reports whether b equals the upper-case ASCII string s,
// ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// isNIL reports whether the next token is the atom NIL.
func (r *Reader) isNIL() bool {
	if r.pos+3 > len(r.line) || !equalFold(r.line[r.pos:r.pos+3], "NIL") {
		return false
	}
	if r.pos+3 < len(r.line) && charClass[r.line[r.pos+3]]&cAString != 0 {
		return false
	}
	return true
}

// astring consumes an astring (RFC 9051 §9): an atom (which may contain
// "]"), a quoted string or a literal.
func (r *Reader) astring(what string) string {
	switch {
	case r.peek() == '"':
		return r.quoted()
	case r.atLiteral():
		return r.literalString(false)
	}
	a := r.span(cAString)
	if len(a) == 0 {
		fail("expected " + what)
	}
	return string(a)
}

// str consumes a string: quoted or literal.
func (r *Reader) str(what string) string {
	switch {
	case r.peek() == '"':
		return r.quoted()
	case r.atLiteral():
		return r.literalString(false)
	}
	fail("expected " + what)
	return ""
}

// nstring consumes a string or NIL; ok is false for NIL.
func (r *Reader) nstring(what string) (s string, ok bool) {
	if r.isNIL() {
		r.pos += 3
		return "", false
	}
	return r.str(what), true
}

// listMailbox consumes a list-mailbox: 1*list-char or a string.
func (r *Reader) listMailbox() string {
	switch {
	case r.peek() == '"':
		return r.quoted()
	case r.atLiteral():
		return r.literalString(false)
	}
	a := r.span(cList)
	if len(a) == 0 {
		fail("expected mailbox pattern")
	}
	return string(a)
}

// quoted consumes a quoted string (RFC 9051 §4.3): UTF-8 text without CR,
// LF and NUL, with \" and \\ as the only escapes.
func (r *Reader) quoted() string {
	r.pos++ // opening quote
	start := r.pos
	escaped := false
	eightBit := false
	for {
		if r.pos >= len(r.line) {
			fail("unterminated quoted string")
		}
		c := r.line[r.pos]
		switch {
		case c == '"':
			raw := r.line[start:r.pos]
			r.pos++
			if eightBit && !utf8.Valid(raw) {
				fail("invalid UTF-8 in quoted string")
			}
			if !escaped {
				return string(raw)
			}
			out := make([]byte, 0, len(raw))
			for i := 0; i < len(raw); i++ {
				if raw[i] == '\\' {
					i++
				}
				out = append(out, raw[i])
			}
			return string(out)
		case c == '\\':
			if r.pos+1 >= len(r.line) || (r.line[r.pos+1] != '"' && r.line[r.pos+1] != '\\') {
				fail("invalid escape in quoted string")
			}
			escaped = true
			r.pos += 2
		case c == 0:
			fail("NUL in quoted string")
		case c == '\r' || c == '\n':
			fail("CR or LF in quoted string")
		default:
			if c >= 0x80 {
				eightBit = true
			}
			r.pos++
		}
	}
}

// digits consumes 1*DIGIT and returns its value, failing above max.
func (r *Reader) digits(max uint64, what string) uint64 {
	start := r.pos
	var n uint64
	for r.pos < len(r.line) {
		c := r.line[r.pos]
		if c < '0' || c > '9' {
			break
		}
		d := uint64(c - '0')
		if n > (max-d)/10 {
			failf("%s out of range", what)
		}
		n = n*10 + d
		r.pos++
	}
	if r.pos == start {
		fail("expected " + what)
	}
	return n
}

// number consumes a number (RFC 9051 §9: unsigned 32-bit).
func (r *Reader) number(what string) uint32 {
	return uint32(r.digits(1<<32-1, what))
}

// nzNumber consumes an nz-number.
func (r *Reader) nzNumber(what string) uint32 {
	n := r.number(what)
	if n == 0 {
		failf("%s must not be zero", what)
	}
	return n
}

// number64 consumes a number64 (unsigned 63-bit).
func (r *Reader) number64(what string) uint64 {
	return r.digits(1<<63-1, what)
}

// listStart consumes "(" and reports whether the list is empty (then it
// also consumes the ")").
func (r *Reader) listStart(what string) (empty bool) {
	r.expect('(', "( to start "+what)
	if r.peek() == ')' {
		r.pos++
		return true
	}
	return false
}

// listNext consumes SP between list elements and returns true, or consumes
// the closing ")" and returns false.
func (r *Reader) listNext(what string) bool {
	switch r.peek() {
	case ' ':
		r.pos++
		return true
	case ')':
		r.pos++
		return false
	}
	fail("expected space or ) in " + what)
	return false
}

// readTag extracts the tag at the start of line (RFC 9051 §9 tag).
func readTag(line []byte) (tag string, n int) {
	for n < len(line) && charClass[line[n]]&cTag != 0 {
		n++
	}
	if n == 0 {
		return "", 0
	}
	return string(line[:n]), n
}
