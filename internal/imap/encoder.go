package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postfach/postfach/internal/mail"
)

// Encoder writes server responses (RFC 9051 §7) to a *bufio.Writer. Token
// methods write one token each and put the single space the grammar
// requires between tokens; lists nest with BeginList and EndList; End
// finishes the response line. Methods return the Encoder for chaining:
//
//	enc.Untagged().Number(3).Atom("FETCH").BeginList().
//		Atom("UID").Number(17).Atom("FLAGS").Flags(fl).EndList().End()
//
// The first write error is kept and returned by End, Flush and Err; later
// writes are skipped. An Encoder is not safe for concurrent use.
//
// Strings are written as quoted strings when the grammar allows it and as
// literals otherwise: with CR, LF or NUL, with 8-bit characters unless
// UTF-8 is enabled (RFC 9051 §4.3, RFC 6855 §3), or when long.
type Encoder struct {
	w         *bufio.Writer
	utf8      bool
	sep       bool // a space is due before the next token
	err       error
	flushHook func() error
	num       [24]byte
	scratch   []byte
}

// maxQuoted is the longest string written as a quoted string; longer ones
// become literals, which clients never need to scan for escapes.
const maxQuoted = 4096

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w *bufio.Writer) *Encoder {
	return &Encoder{w: w}
}

// Reset makes the Encoder write to w (after STARTTLS or COMPRESS). Call it
// only between responses, after Flush.
func (e *Encoder) Reset(w *bufio.Writer) {
	e.w = w
	e.sep = false
}

// SetUTF8 sets whether 8-bit UTF-8 may be sent in quoted strings and text:
// true once the client enabled UTF8=ACCEPT or IMAP4rev2 (RFC 6855 §3,
// RFC 9051 §9 text). Mailbox names are then sent as UTF-8 instead of
// modified UTF-7.
func (e *Encoder) SetUTF8(on bool) { e.utf8 = on }

// UTF8 reports whether UTF-8 is enabled.
func (e *Encoder) UTF8() bool { return e.utf8 }

// SetFlushHook sets a function Flush calls after flushing the
// *bufio.Writer, for example to flush a COMPRESS=DEFLATE stream (RFC 4978
// §4: the server flushes after every response it sends).
func (e *Encoder) SetFlushHook(f func() error) { e.flushHook = f }

// ReleaseBuffers drops the Encoder's scratch buffer when it has grown
// beyond a small size (call it while the session waits, between
// responses).
func (e *Encoder) ReleaseBuffers() {
	if cap(e.scratch) > 1024 {
		e.scratch = nil
	}
}

// Err returns the first write error, if any.
func (e *Encoder) Err() error { return e.err }

// Flush writes buffered responses to the connection.
func (e *Encoder) Flush() error {
	if e.err != nil {
		return e.err
	}
	if err := e.w.Flush(); err != nil {
		e.err = err
		return err
	}
	if e.flushHook != nil {
		if err := e.flushHook(); err != nil {
			e.err = err
			return err
		}
	}
	return nil
}

// write and friends record the first error.
func (e *Encoder) write(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *Encoder) writeString(s string) {
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

func (e *Encoder) writeByte(c byte) {
	if e.err == nil {
		e.err = e.w.WriteByte(c)
	}
}

// token writes the separator a new token needs.
func (e *Encoder) token() {
	if e.sep {
		e.writeByte(' ')
	}
	e.sep = true
}

// ContinuationRequest writes "+ text" (RFC 9051 §7.6) and flushes. It is
// the function a Reader calls before reading a synchronizing literal (pass
// a closure that calls it with "Ready for literal data").
func (e *Encoder) ContinuationRequest(text string) error {
	e.writeString("+ ")
	e.sep = false
	e.Text(text)
	e.End()
	return e.Flush()
}

// Continuation writes "+ " followed by base64 data, for a SASL challenge
// (RFC 9051 §6.2.2), and flushes.
func (e *Encoder) Continuation(challenge []byte) error {
	e.writeString("+ ")
	if e.err == nil {
		enc := base64.NewEncoder(base64.StdEncoding, e.w)
		_, e.err = enc.Write(challenge)
		if e.err == nil {
			e.err = enc.Close()
		}
	}
	e.sep = false
	e.End()
	return e.Flush()
}

// Untagged starts an untagged response ("* ...").
func (e *Encoder) Untagged() *Encoder {
	e.sep = false
	e.token()
	e.writeByte('*')
	return e
}

// Tagged starts a tagged response.
func (e *Encoder) Tagged(tag string) *Encoder {
	e.sep = false
	e.token()
	e.writeString(tag)
	return e
}

// End finishes the response line with CRLF. It returns the first write
// error, if any.
func (e *Encoder) End() error {
	e.writeString("\r\n")
	e.sep = false
	return e.err
}

// Atom writes s as it is. The caller guarantees that s is valid where it
// is written (an atom, a keyword, a flag, a number in text form).
func (e *Encoder) Atom(s string) *Encoder {
	e.token()
	e.writeString(s)
	return e
}

// AtomBytes is Atom for a byte slice.
func (e *Encoder) AtomBytes(b []byte) *Encoder {
	e.token()
	e.write(b)
	return e
}

// Number writes a number.
func (e *Encoder) Number(n uint32) *Encoder {
	e.token()
	e.write(strconv.AppendUint(e.num[:0], uint64(n), 10))
	return e
}

// Number64 writes a number64.
func (e *Encoder) Number64(n uint64) *Encoder {
	e.token()
	e.write(strconv.AppendUint(e.num[:0], n, 10))
	return e
}

// Nil writes NIL.
func (e *Encoder) Nil() *Encoder {
	e.token()
	e.writeString("NIL")
	return e
}

// BeginList writes "(".
func (e *Encoder) BeginList() *Encoder {
	e.token()
	e.writeByte('(')
	e.sep = false
	return e
}

// EndList writes ")".
func (e *Encoder) EndList() *Encoder {
	e.writeByte(')')
	e.sep = true
	return e
}

// String writes s as a quoted string, or as a literal when it must be one.
func (e *Encoder) String(s string) *Encoder {
	e.token()
	e.writeStringValue(s)
	return e
}

// NString writes s as String does, or NIL for "".
func (e *Encoder) NString(s string) *Encoder {
	if s == "" {
		return e.Nil()
	}
	return e.String(s)
}

// AString writes s as an atom when it is one (and not "NIL"), else as
// String does.
func (e *Encoder) AString(s string) *Encoder {
	e.token()
	if isAtomString(s) {
		e.writeString(s)
	} else {
		e.writeStringValue(s)
	}
	return e
}

// Mailbox writes a mailbox name (postfach's UTF-8 form): modified UTF-7
// (RFC 3501 §5.1.3) unless UTF-8 is enabled.
func (e *Encoder) Mailbox(name string) *Encoder {
	if !e.utf8 {
		name = EncodeMUTF7(name)
	}
	return e.AString(name)
}

// Flags writes a parenthesised flag list.
func (e *Encoder) Flags(fl mail.Flags) *Encoder {
	e.BeginList()
	for _, f := range fl {
		e.Atom(f)
	}
	return e.EndList()
}

// DateTime writes t as a quoted date-time (INTERNALDATE, SAVEDATE).
func (e *Encoder) DateTime(t time.Time) *Encoder {
	e.token()
	b := append(e.num[:0], '"')
	b = AppendDateTime(b, t)
	e.write(append(b, '"'))
	return e
}

// UIDSet writes a set of UIDs or numbers in sequence-set syntax, as in
// COPYUID, VANISHED and ESEARCH ALL. The set must not be empty.
func (e *Encoder) UIDSet(s mail.UIDSet) *Encoder {
	e.token()
	for i, r := range s {
		if i > 0 {
			e.writeByte(',')
		}
		e.write(strconv.AppendUint(e.num[:0], uint64(r.Lo), 10))
		if r.Hi != r.Lo {
			e.writeByte(':')
			e.write(strconv.AppendUint(e.num[:0], uint64(r.Hi), 10))
		}
	}
	return e
}

// FetchItemName writes the name of a FETCH data item as the response
// names it ("BODY[HEADER]<0>").
func (e *Encoder) FetchItemName(it *FetchItem) *Encoder {
	e.scratch = it.AppendName(e.scratch[:0])
	return e.AtomBytes(e.scratch)
}

// Code writes a response code: "[" code "]" (RFC 9051 §7.1). code is the
// text between the brackets ("UIDNEXT 4", "PERMANENTFLAGS (\Seen \*)");
// see also the Code* helpers.
func (e *Encoder) Code(code string) *Encoder {
	e.token()
	e.writeByte('[')
	e.writeString(code)
	e.writeByte(']')
	return e
}

// Text writes human-readable response text. CR, LF and NUL become spaces;
// 8-bit characters become "?" unless UTF-8 is enabled (RFC 9051 §9 text).
func (e *Encoder) Text(s string) *Encoder {
	e.token()
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		e.writeString(s)
		return e
	}
	b := e.scratch[:0]
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\r' || c == '\n' || c == 0:
			b = append(b, ' ')
			i++
		case c < 0x80:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if !e.utf8 || r == utf8.RuneError {
				b = append(b, '?')
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
		}
	}
	e.scratch = b
	e.write(b)
	return e
}

// StatusResponse writes a complete status response line: tag (or "*" for
// ""), status (OK, NO, BAD, BYE, PREAUTH), an optional response code and
// text. Empty text is written as the status word lower-cased ("ok"), since
// IMAP4rev1 clients require text.
func (e *Encoder) StatusResponse(tag, status, code, text string) error {
	if tag == "" {
		e.Untagged()
	} else {
		e.Tagged(tag)
	}
	e.Atom(status)
	if code != "" {
		e.Code(code)
	}
	if text == "" {
		text = strings.ToLower(status)
	}
	e.Text(text)
	return e.End()
}

// ErrorResponse writes the response for a ParseError: "tag BAD [code]
// reason", or "* BYE [code] reason" for a fatal one.
func (e *Encoder) ErrorResponse(pe *ParseError) error {
	if pe.Fatal {
		return e.StatusResponse("", BYE, pe.Code, pe.Reason)
	}
	return e.StatusResponse(pe.Tag, pe.Status, pe.Code, pe.Reason)
}

// Literal writes a literal of exactly size bytes read from r, streaming
// (RFC 9051 §4.3). If r ends early the error is kept: the response can not
// be completed and the connection must be closed.
func (e *Encoder) Literal(size int64, r io.Reader) *Encoder {
	return e.literal("{", size, r)
}

// Literal8 writes a literal8 ("~{n}", RFC 3516 §4.3), for BINARY data that
// may contain NUL.
func (e *Encoder) Literal8(size int64, r io.Reader) *Encoder {
	return e.literal("~{", size, r)
}

// errLiteralSendHook is kept when LiteralSend is used while a flush hook
// (a compressor) stands between the encoder and the connection.
var errLiteralSendHook = errors.New("imap: LiteralSend past a flush hook")

// LiteralSend writes a literal of size octets whose data send writes
// itself, past the encoder: the encoder writes "{size}" CRLF and flushes
// its buffer, then send must write exactly size octets to the connection
// (with sendfile(2), for one). It must not be used with a flush hook: the
// hook's layer (COMPRESS) would be bypassed. An error from send is kept
// like a write error.
func (e *Encoder) LiteralSend(size int64, send func() error) *Encoder {
	if e.flushHook != nil && e.err == nil {
		e.err = errLiteralSendHook
	}
	e.token()
	e.writeString("{")
	e.write(strconv.AppendInt(e.num[:0], size, 10))
	e.writeString("}\r\n")
	if e.err == nil {
		if err := e.w.Flush(); err != nil {
			e.err = err
		} else if err := send(); err != nil {
			e.err = fmt.Errorf("write literal: %w", err)
		}
	}
	return e
}

// errShortLiteral is kept when a literal's reader ends early.
var errShortLiteral = errors.New("imap: literal data shorter than announced")

func (e *Encoder) literal(open string, size int64, r io.Reader) *Encoder {
	e.token()
	e.writeString(open)
	e.write(strconv.AppendInt(e.num[:0], size, 10))
	e.writeString("}\r\n")
	if e.err == nil {
		n, err := io.CopyN(e.w, r, size)
		if err == io.EOF && n < size {
			err = errShortLiteral
		}
		if err != nil {
			e.err = fmt.Errorf("write literal: %w", err)
		}
	}
	return e
}

// writeStringValue writes s as a quoted string or a literal.
func (e *Encoder) writeStringValue(s string) {
	switch quoting(s, e.utf8) {
	case asQuoted:
		e.writeByte('"')
		if strings.IndexByte(s, '"') < 0 && strings.IndexByte(s, '\\') < 0 {
			e.writeString(s)
		} else {
			for i := 0; i < len(s); i++ {
				if s[i] == '"' || s[i] == '\\' {
					e.writeByte('\\')
				}
				e.writeByte(s[i])
			}
		}
		e.writeByte('"')
	case asLiteralNoNUL:
		s = strings.ReplaceAll(s, "\x00", "")
		fallthrough
	default:
		e.writeByte('{')
		e.write(strconv.AppendInt(e.num[:0], int64(len(s)), 10))
		e.writeString("}\r\n")
		e.writeString(s)
	}
}

type quoteKind uint8

const (
	asQuoted quoteKind = iota
	asLiteral
	asLiteralNoNUL
)

// quoting decides how a string must be sent (RFC 9051 §4.3: quoted
// strings hold TEXT-CHAR and, with UTF-8, UTF-8 characters; literals hold
// any CHAR8, which excludes NUL).
func quoting(s string, utf8OK bool) quoteKind {
	kind := asQuoted
	if len(s) > maxQuoted {
		kind = asLiteral
	}
	eightBit := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0:
			return asLiteralNoNUL
		case c == '\r' || c == '\n':
			kind = asLiteral
		case c >= 0x80:
			eightBit = true
		}
	}
	if eightBit && (!utf8OK || !utf8.ValidString(s)) {
		kind = asLiteral
	}
	return kind
}

// isAtomString reports whether s can be sent as an astring atom.
func isAtomString(s string) bool {
	if s == "" || len(s) > maxQuoted {
		return false
	}
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&cAString == 0 {
			return false
		}
	}
	return !(len(s) == 3 && strings.EqualFold(s, "NIL"))
}

// appendAString appends s as an atom or a quoted string (for text built
// into one token, such as header field names in a section; those never
// need a literal).
func appendAString(dst []byte, s string) []byte {
	if isAtomString(s) {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// QuoteString returns s in IMAP string syntax as String would write it
// (for building response codes such as BADURL).
func QuoteString(s string, utf8OK bool) string {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	e := &Encoder{w: w, utf8: utf8OK}
	e.writeStringValue(s)
	w.Flush()
	return b.String()
}
