package message

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkSummary verifies everything that must hold for any Parse result,
// whatever the input: offsets in range and nested consistently, line
// counts and decoded sizes that agree with an independent computation, a
// well-formed preview, and a lossless binary round trip.
func checkSummary(t testing.TB, msg []byte, s *Summary) {
	t.Helper()
	if s.Root.HeaderStart != 0 || s.Root.End != int64(len(msg)) {
		t.Fatalf("root spans [%d,%d), message has %d bytes", s.Root.HeaderStart, s.Root.End, len(msg))
	}
	if s.Root.Envelope == nil {
		t.Fatalf("root has no envelope")
	}
	n := 0
	checkPart(t, msg, &s.Root, "1", 0, &n)
	if n > MaxParts {
		t.Fatalf("%d parts, more than MaxParts", n)
	}
	if !utf8.ValidString(s.Preview) {
		t.Fatalf("preview is not UTF-8: %q", s.Preview)
	}
	if c := utf8.RuneCountInString(s.Preview); c > previewMax {
		t.Fatalf("preview has %d characters", c)
	}
	if strings.HasPrefix(s.Preview, " ") || strings.HasSuffix(s.Preview, " ") || strings.Contains(s.Preview, "  ") {
		t.Fatalf("preview whitespace not collapsed: %q", s.Preview)
	}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	var back Summary
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	if !reflect.DeepEqual(*s, back) {
		t.Fatalf("binary round trip differs:\n got %+v\nwant %+v", back, *s)
	}
}

func checkPart(t testing.TB, msg []byte, p *Part, path string, depth int, n *int) {
	t.Helper()
	*n++
	if depth > MaxDepth {
		t.Fatalf("part %s: depth %d beyond MaxDepth", path, depth)
	}
	if !(0 <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.End && p.End <= int64(len(msg))) {
		t.Fatalf("part %s: bad offsets %d %d %d (len %d)", path, p.HeaderStart, p.BodyStart, p.End, len(msg))
	}
	body := msg[p.BodyStart:p.End]
	if want := countLines(body); p.Lines != want {
		t.Fatalf("part %s: Lines %d, body %q has %d", path, p.Lines, trunc(body), want)
	}
	if p.Type == "" || p.Subtype == "" || strings.ToLower(p.Type) != p.Type || strings.ToLower(p.Subtype) != p.Subtype {
		t.Fatalf("part %s: bad type %q/%q", path, p.Type, p.Subtype)
	}
	if len(p.Parts) == 0 && p.Type != "multipart" {
		if r, err := NewBinaryReader(bytes.NewReader(body), p.Encoding); err == nil {
			dec, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("part %s: decode: %v", path, err)
			}
			if int64(len(dec)) != p.DecodedSize {
				t.Fatalf("part %s (%s): DecodedSize %d, NewBinaryReader gives %d", path, p.Encoding, p.DecodedSize, len(dec))
			}
		} else if p.DecodedSize != p.End-p.BodyStart {
			t.Fatalf("part %s: DecodedSize %d for unknown encoding", path, p.DecodedSize)
		}
	}
	if (len(p.Parts) > 0 || p.Type == "multipart") && p.DecodedSize != p.End-p.BodyStart {
		t.Fatalf("part %s: DecodedSize %d of a container, want %d", path, p.DecodedSize, p.End-p.BodyStart)
	}
	isMsg := p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global")
	if isMsg && len(p.Parts) > 0 {
		if len(p.Parts) != 1 {
			t.Fatalf("part %s: message part with %d children", path, len(p.Parts))
		}
		c := &p.Parts[0]
		if c.HeaderStart != p.BodyStart || c.End != p.End {
			t.Fatalf("part %s: encapsulated message [%d,%d) not the body [%d,%d)", path, c.HeaderStart, c.End, p.BodyStart, p.End)
		}
		if c.Envelope == nil {
			t.Fatalf("part %s: encapsulated message without envelope", path)
		}
	}
	prevEnd := p.BodyStart
	for i := range p.Parts {
		c := &p.Parts[i]
		if c.HeaderStart < prevEnd || c.End > p.End {
			t.Fatalf("part %s.%d [%d,%d) outside parent body [%d,%d) or overlapping (prev end %d)",
				path, i+1, c.HeaderStart, c.End, p.BodyStart, p.End, prevEnd)
		}
		prevEnd = c.End
		checkPart(t, msg, c, fmt.Sprintf("%s.%d", path, i+1), depth+1, n)
	}
}

// countLines counts the lines that start in b.
func countLines(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	n := int64(bytes.Count(b, []byte{'\n'}))
	if b[len(b)-1] != '\n' {
		n++
	}
	return n
}

func trunc(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
