package imap

import (
	"time"

	"github.com/postfach/postfach/internal/mail"
)

// Append is APPEND (RFC 9051 §6.3.12), with MULTIAPPEND (RFC 3502),
// CATENATE (RFC 4469), UTF8 (RFC 6855 §4) and literal8 (RFC 3516).
//
// ReadCommand returns it after the mailbox name. The messages follow: call
// Next until it returns nil, reading each message's data (Literal.Open, or
// the CATENATE parts through AppendMessage.NextPart) before calling Next
// again. To refuse the command part-way (mailbox missing, message too big,
// quota), answer it and call Abort. A *ParseError from Next has consumed
// the rest of the command unless it is Fatal.
type Append struct {
	CommandBase
	Mailbox string
	stream
}

// Replace is REPLACE or UID REPLACE (RFC 8508): APPEND of one message plus
// the expunge of message Target of the selected mailbox. Its message is
// read like an APPEND message: Next returns it, then nil.
type Replace struct {
	CommandBase
	// Target is the message sequence number, or UID for UID REPLACE;
	// Star for "*".
	Target  uint32
	Mailbox string
	stream
}

// AppendMessage is one message of an APPEND or REPLACE.
type AppendMessage struct {
	// Flags are the flags of the message, nil when the client gave none.
	Flags mail.Flags
	// Date is the internal date the client asked for, or zero.
	Date time.Time
	// Literal is the message data; nil for CATENATE.
	Literal *Literal
	// UTF8 reports the "UTF8 (~{n})" form of RFC 6855 §4: the message may
	// have UTF-8 headers.
	UTF8 bool
	// Catenate reports a CATENATE message: read its parts with NextPart.
	Catenate bool

	s *stream
}

// CatenatePart is one part of a CATENATE message (RFC 4469 §5): a URL of
// existing message data, or literal text.
type CatenatePart struct {
	// URL is an IMAP URL ("/Drafts;UIDVALIDITY=3/;UID=21/;section=1"),
	// or "" for a TEXT part.
	URL string
	// Text is the data of a TEXT part, or nil.
	Text *Literal
	// UTF8 reports the "UTF8 (~{n})" form of a TEXT part (RFC 6855 §4).
	UTF8 bool
}

// streamPhase is the position of a stream within its command.
type streamPhase uint8

const (
	spStart    streamPhase = iota // before the first message
	spMessage                     // a message was returned
	spCatenate                    // in a CATENATE list, before a part
	spCatPart                     // a TEXT part was returned
	spCatDone                     // after the ")" ending a CATENATE list
	spDone                        // the command is complete or abandoned
)

// stream reads the messages of APPEND and REPLACE.
type stream struct {
	r      *Reader
	gen    uint64
	single bool // REPLACE: exactly one message
	phase  streamPhase
	lit    *Literal // the literal returned last, if any
	paren  bool     // a ")" follows lit (UTF8 form)
	first  bool     // the next CATENATE part is the first
}

func (*stream) streaming() {}

// valid reports whether the stream still owns the Reader.
func (s *stream) valid() bool {
	return s.r != nil && s.r.gen == s.gen && s.phase != spDone
}

// Next returns the next message, or nil when the command is complete (its
// final CRLF has been read).
func (s *stream) Next() (*AppendMessage, error) {
	if s.r == nil || s.r.gen != s.gen {
		return nil, ErrStreamDone
	}
	if s.phase == spDone {
		return nil, nil
	}
	r := s.r
	var msg *AppendMessage
	err := r.run(func() {
		defer func() {
			if msg == nil {
				s.phase = spDone
			}
		}()
		switch s.phase {
		case spStart:
			r.sp()
			msg = s.message()
			return
		case spCatenate, spCatPart:
			for s.phase != spCatDone {
				if s.nextPart() == nil {
					break
				}
			}
		case spMessage:
			s.finish()
		}
		// After a message: the end of the command, or another message
		// (MULTIAPPEND, RFC 3502 §6.3.11).
		if r.atEnd() {
			r.end()
			return
		}
		if s.single {
			fail("REPLACE takes one message")
		}
		r.sp()
		msg = s.message()
	})
	if err != nil {
		s.phase = spDone
		return nil, err
	}
	return msg, nil
}

// Abort abandons the rest of the command: it skips what the client still
// sends of it, so that the next ReadCommand starts at the next command.
// Call it after answering the command when refusing it part-way. An
// unopened synchronizing literal is never read (the client waits for a
// continuation that does not come); a non-synchronizing one is read and
// discarded within Options.MaxDiscard; beyond that Abort returns a fatal
// *ParseError and the connection must close. An opened literal is drained.
func (s *stream) Abort() error {
	if !s.valid() {
		return nil
	}
	s.phase = spDone
	err := s.r.resync()
	if pe, ok := err.(*ParseError); ok {
		pe.Tag = s.r.tag
	}
	return err
}

// finish consumes the rest of the literal returned last and the text that
// follows it up to where the grammar continues.
func (s *stream) finish() {
	if s.lit != nil {
		s.r.finishLiteral(s.lit)
		s.lit = nil
	}
	if s.paren {
		s.paren = false
		s.r.expect(')', ") after UTF8 literal")
	}
}

// message parses append-message: [flag-list SP] [date-time SP] followed by
// a literal, literal8, "UTF8 (" literal8 ")" or "CATENATE (" ... ")".
func (s *stream) message() *AppendMessage {
	r := s.r
	m := &AppendMessage{s: s}
	s.phase = spMessage
	if r.peek() == '(' {
		m.Flags = r.flagList()
		if m.Flags == nil {
			m.Flags = mail.Flags{}
		}
		r.sp()
	}
	if r.peek() == '"' {
		m.Date = r.dateTime()
		r.sp()
	}
	if r.atLiteral() {
		m.Literal = s.literal(r.ann.binary)
		return m
	}
	var buf [16]byte
	switch string(r.keyword(buf[:], "message literal")) {
	case "CATENATE":
		r.sp()
		r.expect('(', "( after CATENATE")
		m.Catenate = true
		s.phase = spCatenate
		s.first = true
	case "UTF8":
		r.sp()
		r.expect('(', "( after UTF8")
		if !r.atLiteral() || !r.ann.binary {
			fail("expected literal8 after UTF8 (")
		}
		m.UTF8 = true
		m.Literal = s.literal(true)
		s.paren = true
	default:
		fail("expected message literal")
	}
	return m
}

// literal checks the message literal at the parse position and returns it
// unread.
func (s *stream) literal(binary bool) *Literal {
	r := s.r
	a := r.ann
	if !a.sync && r.opt.LiteralMinus && (a.overflow || a.size > LiteralMinusMax) {
		// RFC 7888 §5: BAD with TOOBIG for APPEND.
		failCode(BAD, CodeTooBig, "non-synchronizing literal larger than 4096 bytes")
	}
	if a.overflow || a.size > r.opt.MaxAppend {
		// RFC 7889 §4: NO [TOOBIG], before the data is sent.
		failCode(NO, CodeTooBig, "message too big")
	}
	l := &Literal{Size: a.size, Sync: a.sync, Binary: a.binary || binary, r: r, gen: r.gen}
	s.lit = l
	return l
}

// NextPart returns the next part of a CATENATE message, or nil after the
// last one. Read a TEXT part's data (Text.Open) before calling NextPart
// again.
func (m *AppendMessage) NextPart() (*CatenatePart, error) {
	s := m.s
	if !m.Catenate || s == nil || s.r == nil || s.r.gen != s.gen || s.phase == spDone {
		return nil, ErrStreamDone
	}
	if s.phase == spCatDone {
		return nil, nil
	}
	var part *CatenatePart
	err := s.r.run(func() { part = s.nextPart() })
	if err != nil {
		s.phase = spDone
		return nil, err
	}
	return part, nil
}

// nextPart parses one cat-part, or the ")" that ends the list.
func (s *stream) nextPart() *CatenatePart {
	r := s.r
	if s.phase == spCatPart {
		s.finish()
		s.phase = spCatenate
	}
	if !s.first {
		if r.peek() == ')' {
			r.pos++
			s.phase = spCatDone
			return nil
		}
		r.sp()
	}
	s.first = false
	var buf [16]byte
	p := &CatenatePart{}
	switch string(r.keyword(buf[:], "CATENATE part")) {
	case "URL":
		r.sp()
		p.URL = r.astring("URL")
		if p.URL == "" {
			fail("empty URL")
		}
	case "TEXT":
		r.sp()
		if !r.atLiteral() {
			fail("expected literal after TEXT")
		}
		p.Text = s.literal(false)
		s.phase = spCatPart
	case "UTF8":
		r.sp()
		r.expect('(', "( after UTF8")
		if !r.atLiteral() || !r.ann.binary {
			fail("expected literal8 after UTF8 (")
		}
		p.UTF8 = true
		p.Text = s.literal(true)
		s.paren = true
		s.phase = spCatPart
	default:
		fail("unknown CATENATE part")
	}
	return p
}

// parseAppend parses APPEND SP mailbox; the messages follow via Next.
func parseAppend(r *Reader, _ bool) Command {
	c := &Append{}
	r.sp()
	c.Mailbox = r.mailboxArg()
	c.stream = stream{r: r, gen: r.gen}
	return c
}

// parseReplace parses REPLACE SP seq-number SP mailbox (RFC 8508 §5); the
// message follows via Next.
func parseReplace(r *Reader, _ bool) Command {
	c := &Replace{}
	r.sp()
	c.Target = r.seqNumber()
	r.sp()
	c.Mailbox = r.mailboxArg()
	c.stream = stream{r: r, gen: r.gen, single: true}
	return c
}
