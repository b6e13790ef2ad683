package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrHeaderTooLarge is returned by ReadHeader when the header section is
// longer than the limit it was given.
var ErrHeaderTooLarge = errors.New("header section too large")

// Header is a header section as stored: its fields in order, each with its
// original bytes. FETCH BODY[HEADER.FIELDS (...)] and .NOT must output the
// original lines, folding included (RFC 9051 §6.4.5), and SEARCH HEADER
// matches field values; both work from a Header.
type Header struct {
	// Fields are the header fields in message order.
	Fields []Field
	// Terminated reports whether the section ended with an empty line
	// (the separator before the body). RFC 9051 §6.4.5: header fetches
	// include that blank line, except for a message without one.
	Terminated bool
}

// Field is one header field.
type Field struct {
	// Name is the field name as written, without the colon and any
	// whitespace before it; "" for a line that is not a field (no colon).
	Name string
	// Raw is the field's complete bytes: the first line, its continuation
	// lines, and their line endings, exactly as stored.
	Raw []byte
}

// Value returns the field's value: the text after the colon with folding
// undone (line breaks removed) and surrounding whitespace trimmed. RFC 2047
// encoded words are not decoded (see DecodeHeaderValue).
func (f Field) Value() string {
	b := f.Raw
	if f.Name != "" {
		if i := bytes.IndexByte(b, ':'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimSpace(unfold(b))
}

// unfold removes CR and LF bytes (RFC 5322 §2.2.3: unfolding removes the
// CRLF before whitespace; a CR or LF anywhere else is not header text
// either).
func unfold(b []byte) string {
	if bytes.IndexAny(b, "\r\n") < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c != '\r' && c != '\n' {
			out = append(out, c)
		}
	}
	return string(out)
}

// Get returns the value (Field.Value) of the first field with the given
// name, compared case-insensitively, or "" if there is none.
func (h Header) Get(name string) string {
	for _, f := range h.Fields {
		if f.Name != "" && strings.EqualFold(f.Name, name) {
			return f.Value()
		}
	}
	return ""
}

// Values returns the values of all fields with the given name, in order.
func (h Header) Values(name string) []string {
	var out []string
	for _, f := range h.Fields {
		if f.Name != "" && strings.EqualFold(f.Name, name) {
			out = append(out, f.Value())
		}
	}
	return out
}

// Has reports whether a field with the given name is present.
func (h Header) Has(name string) bool {
	for _, f := range h.Fields {
		if f.Name != "" && strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// AppendFields appends the raw lines of the fields whose names are in names
// (not=false, HEADER.FIELDS) or not in names (not=true, HEADER.FIELDS.NOT),
// followed by the blank line when the header had one: the exact answer of
// RFC 9051 §6.4.5. Names compare case-insensitively. Lines that are not
// fields are kept by .NOT and dropped otherwise. A last field without a
// line ending (a header cut off by the end of the message) gets CRLF
// before the blank line.
func (h Header) AppendFields(dst []byte, names []string, not bool) []byte {
	for _, f := range h.Fields {
		match := false
		if f.Name != "" {
			for _, n := range names {
				if strings.EqualFold(f.Name, n) {
					match = true
					break
				}
			}
		}
		if match != not {
			dst = append(dst, f.Raw...)
			if len(f.Raw) > 0 && f.Raw[len(f.Raw)-1] != '\n' && h.Terminated {
				dst = append(dst, '\r', '\n')
			}
		}
	}
	if h.Terminated {
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// ParseHeader splits a header section held in memory (for example
// msg[part.HeaderStart:part.BodyStart]) into fields. It reads up to the
// first empty line; the returned fields share memory with b.
func ParseHeader(b []byte) Header {
	var h Header
	for len(b) > 0 {
		n := bytes.IndexByte(b, '\n') + 1
		if n == 0 {
			n = len(b)
		}
		line := b[:n]
		b = b[n:]
		if isBlankLine(line) {
			h.Terminated = true
			break
		}
		h.addLine(line)
	}
	return h
}

// isBlankLine reports whether line (with its ending) is empty.
func isBlankLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// addLine adds one complete header line to h.
func (h *Header) addLine(line []byte) {
	if (line[0] == ' ' || line[0] == '\t') && len(h.Fields) > 0 {
		// RFC 5322 §2.2.3: a continuation of the previous field. The raw
		// slices are contiguous, so extend the previous one in place.
		last := &h.Fields[len(h.Fields)-1]
		if len(last.Raw) > 0 && cap(last.Raw) >= len(last.Raw)+len(line) &&
			&last.Raw[:len(last.Raw)+1][len(last.Raw)] == &line[0] {
			last.Raw = last.Raw[:len(last.Raw)+len(line)]
			return
		}
		last.Raw = append(last.Raw[:len(last.Raw):len(last.Raw)], line...)
		return
	}
	name := ""
	if i := bytes.IndexByte(line, ':'); i > 0 {
		n := bytes.TrimRight(line[:i], " \t")
		if validFieldName(n) {
			name = string(n)
		}
	}
	h.Fields = append(h.Fields, Field{Name: name, Raw: line})
}

// validFieldName reports whether b is a field name: printable US-ASCII
// except colon (RFC 5322 §3.6.8), non-empty.
func validFieldName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// ReadHeader reads a header section from r up to and including the empty
// line that ends it (or to EOF) and splits it into fields. At most limit
// bytes are read (limit <= 0 means no limit); a longer header gives the
// fields read so far and an error wrapping ErrHeaderTooLarge. ReadHeader
// may read past the header (it buffers r unless r is a *bufio.Reader), so
// give it a reader of the header section only, such as an
// io.SectionReader from Part.HeaderStart to Part.BodyStart.
func ReadHeader(r io.Reader, limit int) (Header, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 4096)
	}
	var buf []byte
	for {
		line, err := br.ReadSlice('\n')
		if limit > 0 && len(buf)+len(line) > limit {
			buf = append(buf, line[:limit-len(buf)]...)
			h := ParseHeader(buf)
			h.Terminated = false
			return h, fmt.Errorf("read header: %w", ErrHeaderTooLarge)
		}
		buf = append(buf, line...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if isBlankLine(line) && (len(buf) == len(line) || buf[len(buf)-len(line)-1] == '\n') {
			break
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return ParseHeader(buf), fmt.Errorf("read header: %w", err)
		}
	}
	return ParseHeader(buf), nil
}
