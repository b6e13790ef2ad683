package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// SummaryVersion is the first byte of the encoding MarshalBinary writes.
// It changes (and the old versions stay decodable) whenever the layout
// changes, and also when Parse comes to describe messages differently, so
// that a store can tell a summary an older parser wrote (its first byte
// is smaller) and parse the body again: stored summaries outlive the code
// that wrote them.
//
//  1. The first layout.
//  2. The same layout. Addresses without a phrase take their display
//     name from a comment, and obsolete local parts and domains with CFWS
//     around the dots are read whole (ParseAddressList).
const SummaryVersion = 2

// binaryVersion is the version MarshalBinary writes.
const binaryVersion = SummaryVersion

// minBinaryVersion is the oldest version UnmarshalBinary decodes; every
// version since has layout 1.
const minBinaryVersion = 1

// ErrBadSummary is returned by UnmarshalBinary for data that is not a
// summary encoding it knows.
var ErrBadSummary = errors.New("malformed message summary encoding")

// Envelope tags in the part encoding.
const (
	envNone   = 0
	envInline = 1
	envChild  = 2 // same pointer as Parts[0].Envelope
)

// Address flag bits in the encoding.
const (
	addrGroupStart = 1 << 0
	addrGroupEnd   = 1 << 1
)

// MarshalBinary encodes the summary compactly (version byte, then varints
// and length-prefixed strings; offsets are stored relative to the
// enclosing part). It implements encoding.BinaryMarshaler and never
// fails.
//
// Layout, versions 1 and 2:
//
//	summary  = version:byte preview:str hasDate:uvarint [unix:varint nsec:uvarint]
//	           nrefs:uvarint refs:str* root:part
//	part     = headerStart-parentBodyStart:varint bodyStart-headerStart:varint
//	           end-bodyStart:varint lines:varint decodedSize:varint
//	           type:str subtype:str params id:str description:str encoding:str
//	           md5:str disposition:str params nlang:uvarint lang:str* location:str
//	           envTag:byte [envelope] nparts:uvarint part*
//	params   = n:uvarint (name:str value:str)*
//	envelope = date:str subject:str from to... as 6 address lists
//	           inReplyTo:str messageID:str
//	addrs    = n:uvarint (flags:byte name:str adl:str mailbox:str host:str)*
//	str      = len:uvarint bytes
func (s *Summary) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, binaryVersion)
	b = appendString(b, s.Preview)
	if s.Date.IsZero() {
		b = binary.AppendUvarint(b, 0)
	} else {
		b = binary.AppendUvarint(b, 1)
		b = binary.AppendVarint(b, s.Date.Unix())
		b = binary.AppendUvarint(b, uint64(s.Date.Nanosecond()))
	}
	b = binary.AppendUvarint(b, uint64(len(s.References)))
	for _, r := range s.References {
		b = appendString(b, r)
	}
	b = appendPart(b, &s.Root, 0, true)
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendParams(b []byte, ps []Param) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendString(b, p.Name)
		b = appendString(b, p.Value)
	}
	return b
}

func appendPart(b []byte, p *Part, base int64, root bool) []byte {
	b = binary.AppendVarint(b, p.HeaderStart-base)
	b = binary.AppendVarint(b, p.BodyStart-p.HeaderStart)
	b = binary.AppendVarint(b, p.End-p.BodyStart)
	b = binary.AppendVarint(b, p.Lines)
	b = binary.AppendVarint(b, p.DecodedSize)
	b = appendString(b, p.Type)
	b = appendString(b, p.Subtype)
	b = appendParams(b, p.Params)
	b = appendString(b, p.ID)
	b = appendString(b, p.Description)
	b = appendString(b, p.Encoding)
	b = appendString(b, p.MD5)
	b = appendString(b, p.Disposition)
	b = appendParams(b, p.DispositionParams)
	b = binary.AppendUvarint(b, uint64(len(p.Language)))
	for _, l := range p.Language {
		b = appendString(b, l)
	}
	b = appendString(b, p.Location)
	switch {
	case p.Envelope == nil:
		b = append(b, envNone)
	case !root && len(p.Parts) > 0 && p.Parts[0].Envelope == p.Envelope:
		b = append(b, envChild)
	default:
		b = append(b, envInline)
		b = appendEnvelope(b, p.Envelope)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Parts)))
	for i := range p.Parts {
		b = appendPart(b, &p.Parts[i], p.BodyStart, false)
	}
	return b
}

func appendEnvelope(b []byte, e *Envelope) []byte {
	b = appendString(b, e.Date)
	b = appendString(b, e.Subject)
	for _, l := range [...][]Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, a := range l {
			var fl byte
			if a.IsGroupStart {
				fl |= addrGroupStart
			}
			if a.IsGroupEnd {
				fl |= addrGroupEnd
			}
			b = append(b, fl)
			b = appendString(b, a.Name)
			b = appendString(b, a.Adl)
			b = appendString(b, a.Mailbox)
			b = appendString(b, a.Host)
		}
	}
	b = appendString(b, e.InReplyTo)
	b = appendString(b, e.MessageID)
	return b
}

// UnmarshalBinary decodes what MarshalBinary wrote, replacing s; every
// SummaryVersion since the first is understood. It
// implements encoding.BinaryUnmarshaler. It never panics on malformed
// input, and what it allocates is bounded by a small multiple of len(data):
// every count is checked against the bytes left before anything is
// allocated, and nesting is limited. All strings share one copy of data.
func (s *Summary) UnmarshalBinary(data []byte) error {
	if len(data) == 0 || data[0] < minBinaryVersion || data[0] > binaryVersion {
		if len(data) == 0 {
			return fmt.Errorf("decode summary: empty: %w", ErrBadSummary)
		}
		return fmt.Errorf("decode summary: version %d: %w", data[0], ErrBadSummary)
	}
	d := decoder{s: string(data), i: 1}
	var out Summary
	out.Preview = d.str()
	if d.uvarint() == 1 {
		sec := d.varint()
		nsec := d.uvarint()
		if nsec >= 1e9 {
			d.fail()
		}
		out.Date = time.Unix(sec, int64(nsec)).UTC()
	}
	if n := d.count(1); n > 0 {
		out.References = make([]string, n)
		for i := range out.References {
			out.References[i] = d.str()
		}
	}
	d.part(&out.Root, 0, 0)
	if d.err == nil && d.i != len(d.s) {
		d.fail()
	}
	if d.err != nil {
		return fmt.Errorf("decode summary: %w", d.err)
	}
	*s = out
	return nil
}

// decoder reads the encoding; after the first error every read returns a
// zero value, and err says what went wrong.
type decoder struct {
	s   string
	i   int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = ErrBadSummary
	}
	d.i = len(d.s)
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for k := 0; k < binary.MaxVarintLen64; k++ {
		if d.i >= len(d.s) {
			d.fail()
			return 0
		}
		c := d.s[d.i]
		d.i++
		if c < 0x80 {
			if k == binary.MaxVarintLen64-1 && c > 1 {
				d.fail()
				return 0
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.fail()
	return 0
}

func (d *decoder) varint() int64 {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) byte() byte {
	if d.err != nil || d.i >= len(d.s) {
		d.fail()
		return 0
	}
	c := d.s[d.i]
	d.i++
	return c
}

// count reads an element count and checks that the remaining input can
// hold that many elements of at least minSize bytes each.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64((len(d.s)-d.i)/minSize) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)-d.i) {
		d.fail()
		return ""
	}
	v := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return v
}

func (d *decoder) params() []Param {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	ps := make([]Param, n)
	for i := range ps {
		ps[i].Name = d.str()
		ps[i].Value = d.str()
	}
	return ps
}

func (d *decoder) addrs() []Address {
	n := d.count(5)
	if n == 0 {
		return nil
	}
	as := make([]Address, n)
	for i := range as {
		fl := d.byte()
		as[i] = Address{
			Name:         d.str(),
			Adl:          d.str(),
			Mailbox:      d.str(),
			Host:         d.str(),
			IsGroupStart: fl&addrGroupStart != 0,
			IsGroupEnd:   fl&addrGroupEnd != 0,
		}
	}
	return as
}

// minPartSize is the fewest bytes one encoded part takes.
const minPartSize = 5 + 2 + 1 + 5 + 1 + 1 + 1 + 1 + 1

func (d *decoder) part(p *Part, base int64, depth int) {
	if depth > MaxDepth+1 {
		d.fail()
		return
	}
	p.HeaderStart = base + d.varint()
	p.BodyStart = p.HeaderStart + d.varint()
	p.End = p.BodyStart + d.varint()
	p.Lines = d.varint()
	p.DecodedSize = d.varint()
	p.Type = d.str()
	p.Subtype = d.str()
	p.Params = d.params()
	p.ID = d.str()
	p.Description = d.str()
	p.Encoding = d.str()
	p.MD5 = d.str()
	p.Disposition = d.str()
	p.DispositionParams = d.params()
	if n := d.count(1); n > 0 {
		p.Language = make([]string, n)
		for i := range p.Language {
			p.Language[i] = d.str()
		}
	}
	p.Location = d.str()
	tag := d.byte()
	switch tag {
	case envNone, envChild:
	case envInline:
		p.Envelope = &Envelope{
			Date:      d.str(),
			Subject:   d.str(),
			From:      d.addrs(),
			Sender:    d.addrs(),
			ReplyTo:   d.addrs(),
			To:        d.addrs(),
			Cc:        d.addrs(),
			Bcc:       d.addrs(),
			InReplyTo: d.str(),
			MessageID: d.str(),
		}
	default:
		d.fail()
	}
	if n := d.count(minPartSize); n > 0 {
		p.Parts = make([]Part, n)
		for i := range p.Parts {
			d.part(&p.Parts[i], p.BodyStart, depth+1)
		}
	}
	if tag == envChild {
		if len(p.Parts) == 0 {
			d.fail()
			return
		}
		p.Envelope = p.Parts[0].Envelope
	}
}
