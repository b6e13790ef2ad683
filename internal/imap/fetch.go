package imap

import (
	"strconv"

	"github.com/postfach/postfach/internal/mail"
)

// Fetch is FETCH or UID FETCH (RFC 9051 §6.4.5) with the CHANGEDSINCE and
// VANISHED modifiers of CONDSTORE/QRESYNC (RFC 7162 §3.1.4, §3.2.6). The
// macros ALL, FAST and FULL are expanded into their items.
type Fetch struct {
	CommandBase
	Set   SeqSet
	Items []FetchItem
	// HasChangedSince reports the CHANGEDSINCE modifier; ChangedSince is
	// its value.
	HasChangedSince bool
	ChangedSince    mail.ModSeq
	// Vanished reports the VANISHED modifier (UID FETCH only, with
	// CHANGEDSINCE; RFC 7162 §3.2.6).
	Vanished bool
}

// FetchKind is the kind of a FETCH data item.
type FetchKind uint8

// FETCH data items (RFC 9051 §6.4.5 and extensions).
const (
	FetchFlags         FetchKind = iota + 1
	FetchUID                     // UID
	FetchInternalDate            // INTERNALDATE
	FetchRFC822Size              // RFC822.SIZE
	FetchEnvelope                // ENVELOPE
	FetchBody                    // BODY (structure, no extension data)
	FetchBodyStructure           // BODYSTRUCTURE
	FetchBodySection             // BODY[section]<partial>, BODY.PEEK[...]
	FetchBinary                  // BINARY[part]<partial>, BINARY.PEEK (RFC 3516)
	FetchBinarySize              // BINARY.SIZE[part] (RFC 3516)
	FetchRFC822                  // RFC822 (RFC 3501): BODY[]
	FetchRFC822Header            // RFC822.HEADER (RFC 3501): BODY.PEEK[HEADER]
	FetchRFC822Text              // RFC822.TEXT (RFC 3501): BODY[TEXT]
	FetchModSeq                  // MODSEQ (RFC 7162)
	FetchPreview                 // PREVIEW (RFC 8970)
	FetchSaveDate                // SAVEDATE (RFC 8514)
	FetchEmailID                 // EMAILID (RFC 8474)
	FetchThreadID                // THREADID (RFC 8474)
)

// FetchItem is one FETCH data item.
type FetchItem struct {
	Kind FetchKind
	// Section is the section of BODY[...], BINARY[...] and BINARY.SIZE[...]
	// (for BINARY only Part is used).
	Section Section
	// Peek reports BODY.PEEK / BINARY.PEEK: do not set \Seen.
	Peek bool
	// Partial is the <offset.count> of BODY and BINARY; Count 0 means
	// none.
	Partial Partial
	// Lazy reports PREVIEW (LAZY) (RFC 8970 §3.1).
	Lazy bool
}

// SetsSeen reports whether fetching the item sets \Seen (RFC 9051 §6.4.5:
// BODY[...] and BINARY[...] without .PEEK, RFC822 and RFC822.TEXT).
func (it *FetchItem) SetsSeen() bool {
	switch it.Kind {
	case FetchBodySection, FetchBinary:
		return !it.Peek
	case FetchRFC822, FetchRFC822Text:
		return true
	}
	return false
}

// SectionText is the text part of a section specification.
type SectionText uint8

// Section text specifiers (RFC 9051 §6.4.5).
const (
	SectionAll             SectionText = iota // the whole part ("" )
	SectionHeader                             // HEADER
	SectionHeaderFields                       // HEADER.FIELDS (...)
	SectionHeaderFieldsNot                    // HEADER.FIELDS.NOT (...)
	SectionTextBody                           // TEXT
	SectionMIME                               // MIME
)

// Section is a section specification: a part path and a text specifier.
type Section struct {
	// Part is the part path ("1.2.3" is [1 2 3]); empty for the whole
	// message.
	Part []uint32
	Text SectionText
	// Fields are the header field names of HEADER.FIELDS (.NOT), as the
	// client wrote them.
	Fields []string
}

// Partial is a partial range <Offset.Count>; Count 0 means the whole
// section.
type Partial struct {
	Offset, Count int64
}

// Apply returns the offset and length of the partial range within a
// section of size bytes (RFC 9051 §6.4.5: an offset beyond the end gives
// an empty string).
func (p Partial) Apply(size int64) (off, n int64) {
	if p.Count == 0 {
		return 0, size
	}
	if p.Offset >= size {
		return size, 0
	}
	n = size - p.Offset
	if p.Count < n {
		n = p.Count
	}
	return p.Offset, n
}

// macro items (RFC 9051 §6.4.5).
var (
	macroFast = []FetchKind{FetchFlags, FetchInternalDate, FetchRFC822Size}
	macroAll  = []FetchKind{FetchFlags, FetchInternalDate, FetchRFC822Size, FetchEnvelope}
	macroFull = []FetchKind{FetchFlags, FetchInternalDate, FetchRFC822Size, FetchEnvelope, FetchBody}
)

// simpleFetchItems are the items that are a bare name.
var simpleFetchItems = map[string]FetchKind{
	"FLAGS": FetchFlags, "UID": FetchUID, "INTERNALDATE": FetchInternalDate,
	"RFC822.SIZE": FetchRFC822Size, "ENVELOPE": FetchEnvelope,
	"BODYSTRUCTURE": FetchBodyStructure, "RFC822": FetchRFC822,
	"RFC822.HEADER": FetchRFC822Header, "RFC822.TEXT": FetchRFC822Text,
	"MODSEQ": FetchModSeq, "SAVEDATE": FetchSaveDate, "EMAILID": FetchEmailID,
	"THREADID": FetchThreadID,
}

// parseFetch parses FETCH SP sequence-set SP ("ALL" / "FULL" / "FAST" /
// fetch-att / "(" fetch-att *(SP fetch-att) ")") [SP fetch-modifiers]
// (RFC 9051 §9, RFC 4466 §2.4, RFC 7162 §7).
func parseFetch(r *Reader, uid bool) Command {
	c := &Fetch{}
	r.sp()
	c.Set = r.seqSet(true)
	r.sp()
	if r.peek() == '(' {
		r.pos++
		n := 1
		for i := r.pos; i < len(r.line) && r.line[i] != ')'; i++ {
			if r.line[i] == ' ' {
				n++
			}
		}
		c.Items = make([]FetchItem, 0, n)
		for {
			c.Items = append(c.Items, r.fetchAtt())
			if !r.listNext("fetch items") {
				break
			}
		}
	} else {
		var macro []FetchKind
		switch {
		case r.peekKeyword("ALL"):
			macro = macroAll
			r.pos += 3
		case r.peekKeyword("FAST"):
			macro = macroFast
			r.pos += 4
		case r.peekKeyword("FULL"):
			macro = macroFull
			r.pos += 4
		}
		if macro != nil {
			c.Items = make([]FetchItem, len(macro))
			for i, k := range macro {
				c.Items[i].Kind = k
			}
		} else {
			c.Items = []FetchItem{r.fetchAtt()}
		}
	}
	if r.maybeSP() {
		r.expect('(', "( before fetch modifiers")
		for {
			var buf [16]byte
			switch string(r.keyword(buf[:], "fetch modifier")) {
			case "CHANGEDSINCE":
				if c.HasChangedSince {
					fail("CHANGEDSINCE given twice")
				}
				r.sp()
				c.HasChangedSince = true
				c.ChangedSince = mail.ModSeq(r.number64("mod-sequence"))
			case "VANISHED":
				c.Vanished = true
			default:
				fail("unknown fetch modifier")
			}
			if !r.listNext("fetch modifiers") {
				break
			}
		}
		if c.Vanished && !uid {
			// RFC 7162 §3.2.6: VANISHED is for UID FETCH only.
			fail("VANISHED requires UID FETCH")
		}
		if c.Vanished && !c.HasChangedSince {
			fail("VANISHED requires CHANGEDSINCE")
		}
	}
	return c
}

// fetchAttName consumes the name part of a fetch-att: letters, digits, "."
// and "-".
func (r *Reader) fetchAttName() []byte {
	start := r.pos
	for r.pos < len(r.line) {
		c := r.line[r.pos]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			break
		}
		r.pos++
	}
	if r.pos == start {
		fail("expected fetch item")
	}
	return r.line[start:r.pos]
}

// fetchAtt consumes one fetch-att.
func (r *Reader) fetchAtt() FetchItem {
	var buf [24]byte
	name := upperASCII(buf[:0], r.fetchAttName())
	var it FetchItem
	if k, ok := simpleFetchItems[string(name)]; ok {
		it.Kind = k
		return it
	}
	switch string(name) {
	case "BODY":
		if r.peek() != '[' {
			it.Kind = FetchBody
			return it
		}
		it.Kind = FetchBodySection
		it.Section = r.section()
		it.Partial = r.partial()
	case "BODY.PEEK":
		it.Kind, it.Peek = FetchBodySection, true
		it.Section = r.section()
		it.Partial = r.partial()
	case "BINARY", "BINARY.PEEK":
		it.Kind, it.Peek = FetchBinary, len(name) > 6
		it.Section.Part = r.sectionBinary()
		it.Partial = r.partial()
	case "BINARY.SIZE":
		it.Kind = FetchBinarySize
		it.Section.Part = r.sectionBinary()
	case "PREVIEW":
		it.Kind = FetchPreview
		// RFC 8970 §6: "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"].
		// "FETCH 1 PREVIEW (CHANGEDSINCE 5)" is ambiguous: the list is
		// taken as preview modifiers only if it starts with one.
		if r.peek() == ' ' && r.pos+6 <= len(r.line) && r.line[r.pos+1] == '(' &&
			equalFold(r.line[r.pos+2:r.pos+6], "LAZY") {
			r.pos += 2
			for {
				var b2 [8]byte
				if string(r.keyword(b2[:], "preview modifier")) != "LAZY" {
					fail("unknown PREVIEW modifier")
				}
				it.Lazy = true
				if !r.listNext("PREVIEW modifiers") {
					break
				}
			}
		}
	default:
		fail("unknown fetch item")
	}
	return it
}

// section consumes "[" [section-spec] "]" (RFC 9051 §9).
func (r *Reader) section() Section {
	var s Section
	r.expect('[', "[")
	if r.peek() == ']' {
		r.pos++
		return s
	}
	if c := r.peek(); c >= '0' && c <= '9' {
		s.Part = r.sectionPart()
		if r.peek() == ']' {
			r.pos++
			return s
		}
		r.expect('.', ". in section")
	}
	start := r.pos
	for r.pos < len(r.line) {
		c := r.line[r.pos]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '.') {
			break
		}
		r.pos++
	}
	var buf [24]byte
	switch string(upperASCII(buf[:0], r.line[start:r.pos])) {
	case "HEADER":
		s.Text = SectionHeader
	case "HEADER.FIELDS":
		s.Text = SectionHeaderFields
	case "HEADER.FIELDS.NOT":
		s.Text = SectionHeaderFieldsNot
	case "TEXT":
		s.Text = SectionTextBody
	case "MIME":
		if len(s.Part) == 0 {
			fail("MIME needs a part number")
		}
		s.Text = SectionMIME
	default:
		fail("invalid section")
	}
	if s.Text == SectionHeaderFields || s.Text == SectionHeaderFieldsNot {
		r.sp()
		if r.listStart("header list") {
			fail("empty header list")
		}
		for {
			f := r.astring("header field name")
			if !validFieldName(f) {
				fail("invalid header field name")
			}
			s.Fields = append(s.Fields, f)
			if !r.listNext("header list") {
				break
			}
		}
	}
	r.expect(']', "] after section")
	return s
}

// validFieldName reports whether f is an RFC 5322 field-name: printable
// ASCII except ":".
func validFieldName(f string) bool {
	if f == "" {
		return false
	}
	for i := 0; i < len(f); i++ {
		if f[i] <= ' ' || f[i] >= 0x7f || f[i] == ':' {
			return false
		}
	}
	return true
}

// sectionPart consumes nz-number *("." nz-number).
func (r *Reader) sectionPart() []uint32 {
	var part []uint32
	for {
		part = append(part, r.nzNumber("part number"))
		if r.peek() != '.' || r.pos+1 >= len(r.line) || !isDigit(r.line[r.pos+1]) {
			return part
		}
		r.pos++
		if len(part) > maxDepth {
			fail("part number too deep")
		}
	}
}

// sectionBinary consumes "[" [section-part] "]" (RFC 3516 §4.2).
func (r *Reader) sectionBinary() []uint32 {
	r.expect('[', "[")
	var part []uint32
	if r.peek() != ']' {
		part = r.sectionPart()
	}
	r.expect(']', "] after section")
	return part
}

// partial consumes an optional "<" number64 "." nz-number64 ">".
func (r *Reader) partial() Partial {
	if r.peek() != '<' {
		return Partial{}
	}
	r.pos++
	var p Partial
	p.Offset = int64(r.number64("partial offset"))
	r.expect('.', ". in partial")
	p.Count = int64(r.number64("partial length"))
	if p.Count == 0 {
		fail("partial length must not be zero")
	}
	r.expect('>', "> after partial")
	return p
}

// AppendName appends the item's name as the FETCH response names it
// (RFC 9051 §7.5.2): "BODY[1.2.HEADER.FIELDS (SUBJECT)]<0>" for
// BODY.PEEK[1.2.HEADER.FIELDS (SUBJECT)]<0.100>, "BINARY.SIZE[1]", "UID".
func (it *FetchItem) AppendName(dst []byte) []byte {
	switch it.Kind {
	case FetchBodySection:
		dst = append(dst, "BODY"...)
		dst = it.Section.appendSpec(dst)
	case FetchBinary:
		dst = append(dst, "BINARY"...)
		dst = it.Section.appendSpec(dst)
	case FetchBinarySize:
		dst = append(dst, "BINARY.SIZE"...)
		return it.Section.appendSpec(dst)
	default:
		return append(dst, fetchKindNames[it.Kind]...)
	}
	if it.Partial.Count != 0 {
		dst = append(dst, '<')
		dst = strconv.AppendInt(dst, it.Partial.Offset, 10)
		dst = append(dst, '>')
	}
	return dst
}

// AppendRequest appends the item as the client asked for it (RFC 9051
// §6.4.5), for logs: "BODY.PEEK[1.2.HEADER.FIELDS (SUBJECT)]<0.100>"
// where AppendName gives the response's "BODY[1.2.HEADER.FIELDS
// (SUBJECT)]<0>".
func (it *FetchItem) AppendRequest(dst []byte) []byte {
	switch it.Kind {
	case FetchBodySection, FetchBinary:
	default:
		return it.AppendName(dst)
	}
	dst = append(dst, fetchKindNames[it.Kind]...)
	if it.Peek {
		dst = append(dst, ".PEEK"...)
	}
	dst = it.Section.appendSpec(dst)
	if it.Partial.Count != 0 {
		dst = append(dst, '<')
		dst = strconv.AppendInt(dst, it.Partial.Offset, 10)
		dst = append(dst, '.')
		dst = strconv.AppendInt(dst, it.Partial.Count, 10)
		dst = append(dst, '>')
	}
	return dst
}

var fetchKindNames = [...]string{
	FetchFlags: "FLAGS", FetchUID: "UID", FetchInternalDate: "INTERNALDATE",
	FetchRFC822Size: "RFC822.SIZE", FetchEnvelope: "ENVELOPE", FetchBody: "BODY",
	FetchBodyStructure: "BODYSTRUCTURE", FetchBodySection: "BODY", FetchBinary: "BINARY",
	FetchBinarySize: "BINARY.SIZE", FetchRFC822: "RFC822", FetchRFC822Header: "RFC822.HEADER",
	FetchRFC822Text: "RFC822.TEXT", FetchModSeq: "MODSEQ", FetchPreview: "PREVIEW",
	FetchSaveDate: "SAVEDATE", FetchEmailID: "EMAILID", FetchThreadID: "THREADID",
}

// appendSpec appends "[" section-spec "]".
func (s *Section) appendSpec(dst []byte) []byte {
	dst = append(dst, '[')
	for i, p := range s.Part {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = strconv.AppendUint(dst, uint64(p), 10)
	}
	if s.Text != SectionAll && len(s.Part) > 0 {
		dst = append(dst, '.')
	}
	switch s.Text {
	case SectionHeader:
		dst = append(dst, "HEADER"...)
	case SectionHeaderFields, SectionHeaderFieldsNot:
		dst = append(dst, "HEADER.FIELDS"...)
		if s.Text == SectionHeaderFieldsNot {
			dst = append(dst, ".NOT"...)
		}
		dst = append(dst, " ("...)
		for i, f := range s.Fields {
			if i > 0 {
				dst = append(dst, ' ')
			}
			dst = appendAString(dst, f)
		}
		dst = append(dst, ')')
	case SectionTextBody:
		dst = append(dst, "TEXT"...)
	case SectionMIME:
		dst = append(dst, "MIME"...)
	}
	return append(dst, ']')
}
