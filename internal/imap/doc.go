// Package imap is the IMAP wire syntax of postfach: it reads client
// commands into typed values and writes server responses, for IMAP4rev2
// (RFC 9051), IMAP4rev1 (RFC 3501) and the extensions postfach serves. It
// knows nothing of sessions, mailboxes or the store; internal/imapserver
// builds on it.
//
// # Reading commands
//
// A session owns one Reader over the connection's *bufio.Reader:
//
//	r := imap.NewReader(br, func() error {
//		return enc.ContinuationRequest("Ready for literal data")
//	}, imap.Options{MaxAppend: appendLimit, LiteralMinus: true})
//	for {
//		cmd, err := r.ReadCommand()
//		var pe *imap.ParseError
//		switch {
//		case errors.As(err, &pe):
//			enc.ErrorResponse(pe) // "tag BAD reason", or "* BYE" if fatal
//			if pe.Fatal { return }
//			continue
//		case err != nil:
//			return // connection closed or broken
//		}
//		switch c := cmd.(type) {
//		case *imap.Fetch: ...
//		case *imap.Append: ...
//		}
//	}
//
// ReadCommand returns one of the command types (*Login, *Select, *Fetch,
// *Search, ...), each with its arguments parsed and validated; the
// CommandBase gives the tag, the upper-case name and the UID prefix. Every
// literal is checked against the limits of Options before any of its data
// is read; the continuation function is called only for a synchronizing
// literal that is accepted.
//
// A *ParseError is answered with its tag, status (BAD, or NO for an APPEND
// over the size limit), response code and reason. Unless it is Fatal, the
// Reader has consumed the rest of the bad command, so the next
// ReadCommand starts at the next command. Resynchronisation follows what
// the client sends after a BAD (RFC 9051 §2.2.1, §7.5): the rest of the
// line; for a non-synchronizing literal announced at a line end, its data
// and the line after it; it stops at a line that ends with a
// synchronizing literal, whose data the client will not send without a
// continuation request. Non-synchronizing literal data that has to be
// skipped is read and discarded up to Options.MaxDiscard bytes; a larger
// one (or an endless line) makes the error Fatal: the server sends BYE and
// closes, as RFC 7888 §4 allows, instead of reading unbounded data. With
// LITERAL- advertised (Options.LiteralMinus) well-behaved clients never
// send non-synchronizing literals over 4096 bytes, so only broken ones
// meet this.
//
// # APPEND and REPLACE stream their messages
//
// ReadCommand returns *Append (and *Replace) after the mailbox name. The
// server then decides per message, before any message data is read:
//
//	for {
//		msg, err := c.Next() // flags, date, literal size, or CATENATE
//		if err != nil { ... } // *ParseError as above
//		if msg == nil { break } // command complete
//		if msg.Literal.Size > limit || mailboxMissing {
//			enc.StatusResponse(c.Tag, imap.NO, imap.CodeTooBig, "message too big")
//			c.Abort() // skips the rest; never invites a sync literal
//			break
//		}
//		data, err := msg.Literal.Open() // sends "+" for a sync literal
//		stage(data)                     // streams; never buffered here
//	}
//
// A CATENATE message has no Literal; its parts come from msg.NextPart.
//
// # IDLE and AUTHENTICATE
//
// After answering IDLE with a continuation request, the server reads the
// client's "DONE" with ReadDone (typically in a goroutine while it pushes
// updates; the Reader must not be used by anyone else meanwhile). During
// AUTHENTICATE it sends challenges with Encoder.Continuation and reads the
// answers with ReadSASLResponse, which reports a "*" as ErrSASLCancelled.
//
// # Writing responses
//
// An Encoder over the connection's *bufio.Writer writes responses token by
// token, choosing atom, quoted string or literal for strings (8-bit text
// becomes a literal unless SetUTF8 was called after ENABLE UTF8=ACCEPT or
// IMAP4rev2), modified UTF-7 for mailbox names, and streaming literals
// from an io.Reader of known size. It also renders ENVELOPE and
// BODYSTRUCTURE from message.Summary; OpenSection and OpenBinary resolve
// BODY[section]<partial> and BINARY[part] to a stream of the stored
// message. Responses are buffered until Flush. The Code* constants name
// the response codes of the RFCs.
//
// While a session waits (IDLE), Reader.ReleaseBuffers and
// Encoder.ReleaseBuffers drop buffers that grew for a big command or
// response.
//
// # Mailbox names
//
// Mailbox arguments are returned as the client sent them. DecodeMailbox
// turns one into a canonical postfach name (UTF-8, "/" separator, INBOX
// case-insensitive, no empty levels, no control characters, bounded);
// ValidNewMailbox adds the rules for names being created; MatchList
// implements LIST patterns.
//
// # Invariants
//
// The package has no mutable package-level state; a Reader and an Encoder
// belong to one goroutine at a time. Panics are used only inside the
// parser, to unwind a failed parse, and never escape the package.
package imap
