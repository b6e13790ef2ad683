package message

import "time"

// Summary is everything postfach learns from a message at delivery. It is
// computed once by Parse, stored with the message (MarshalBinary), and used
// by FETCH, SEARCH, SORT and THREAD so that no command re-parses a message.
// All offsets are byte offsets into the stored message (CRLF line endings,
// including any trace headers added at delivery).
type Summary struct {
	// Root is the top-level part: the whole message.
	Root Part

	// Preview is the RFC 8970 preview: up to 200 Unicode characters of the
	// first text part, decoded (transfer encoding and charset), with
	// whitespace runs collapsed. Empty when the message has no text.
	Preview string

	// Date is the parsed Date header (UTC), zero when missing or
	// unparseable. SORT DATE and SEARCH SENTBEFORE etc. use it.
	Date time.Time

	// References holds the message IDs of the References header, in order,
	// without angle brackets; THREAD=REFERENCES uses it with
	// Envelope.InReplyTo and Envelope.MessageID.
	References []string
}

// Part is one MIME entity. For multipart/* its children are in Parts; for
// message/rfc822 (and message/global) Parts holds exactly one child, the
// encapsulated message's root, and Envelope describes that message.
type Part struct {
	// HeaderStart is the offset of the first header byte of this part, and
	// BodyStart the offset just after the blank line ending the header (or
	// the end of the part when there is no blank line). End is the offset
	// just after the last byte of the body: for a multipart child, before
	// the CRLF that precedes the next boundary line (RFC 2046 §5.1.1).
	HeaderStart, BodyStart, End int64

	// Lines is the number of lines of the body (text/* and message/rfc822
	// parts; body-fld-lines of RFC 9051 §9): the lines that start in
	// [BodyStart, End), so a last line without a line ending counts and an
	// empty body has none. Parse sets it for every part.
	Lines int64

	// DecodedSize is the size of the body after its transfer encoding is
	// decoded as NewBinaryReader does (IMAP BINARY.SIZE, RFC 3516 §4.2).
	// It equals End-BodyStart for identity and unknown encodings, for
	// multipart parts, and for message parts that contain a parsed
	// message (Parts not empty).
	DecodedSize int64

	// Type and Subtype are lower-case ("text", "plain"); defaults follow
	// RFC 2045 §5.2: text/plain; charset=us-ascii (message/rfc822 in a
	// multipart/digest). Malformed Content-Type yields the default.
	Type, Subtype string
	// Params are the Content-Type parameters in header order, names
	// lower-cased, RFC 2231 continuations and charset/language decoded into
	// plain UTF-8 values.
	Params []Param

	ID          string // Content-ID, raw
	Description string // Content-Description, raw (RFC 2047 still encoded)
	Encoding    string // Content-Transfer-Encoding, lower-case; "" means 7bit
	MD5         string // Content-MD5, raw

	Disposition       string // lower-case disposition type, "" if absent
	DispositionParams []Param
	Language          []string // Content-Language values
	Location          string   // Content-Location

	// Envelope is set for the root part and for message/rfc822 parts (where
	// it describes the encapsulated message). The root of an encapsulated
	// message (Parts[0] of a message/rfc822 part) has it too: for a
	// message/rfc822 part other than the root, Envelope and
	// Parts[0].Envelope are the same pointer, while a root that is itself
	// message/rfc822 keeps its own envelope and the encapsulated one is
	// only in Parts[0].Envelope. BODYSTRUCTURE should therefore use
	// Parts[0].Envelope.
	Envelope *Envelope

	// Parts are the children of a multipart or message/rfc822 part. A
	// multipart can have none when it is malformed (no boundary parameter,
	// no delimiter line, or nested deeper than MaxDepth); RFC 9051 requires
	// at least one body in BODYSTRUCTURE, so the IMAP layer writes an empty
	// text/plain part for it, as other servers do. A message/rfc822 part
	// has none when it is nested too deep or has a transfer encoding other
	// than 7bit, 8bit or binary (RFC 2046 §5.2.1); it is then opaque.
	Parts []Part
}

// Param is one MIME parameter.
type Param struct {
	Name, Value string
}

// Envelope is the IMAP ENVELOPE of a message (RFC 9051 §7.5.2). String
// fields hold the raw header value with leading and trailing whitespace
// removed and folding undone (RFC 2047 encoded words are not decoded, as
// the IMAP ENVELOPE requires); "" means the header is absent (NIL) or
// empty. Of a repeated field the first is used. Each field is what the
// message says: Sender and ReplyTo are nil when their headers are absent,
// and defaulting them to From (RFC 9051 §7.5.2) is the IMAP layer's job.
// Address lists come from ParseAddressList.
type Envelope struct {
	Date      string
	Subject   string
	From      []Address
	Sender    []Address
	ReplyTo   []Address
	To        []Address
	Cc        []Address
	Bcc       []Address
	InReplyTo string
	MessageID string
}

// Address is one element of an address list in an Envelope. A group is
// represented as RFC 9051 §7.5.2 describes: a start marker with Mailbox set
// to the group name and Host empty and IsGroupStart set, the members, then
// an end marker with IsGroupEnd set.
type Address struct {
	// Name is the display name, raw (RFC 2047 still encoded): the phrase,
	// or for an addr-spec without one, its comment (see ParseAddressList).
	Name    string
	Adl     string // source route, usually empty
	Mailbox string // local part
	Host    string // domain

	IsGroupStart, IsGroupEnd bool
}
