package imap

import (
	"strconv"
	"strings"

	"github.com/postfach/postfach/internal/mail"
)

// Star stands for "*" in a SeqRange: the largest number in use (RFC 9051
// §9 seq-number).
const Star uint32 = 0

// SeqRange is one element of a sequence set: Lo:Hi, or a single number
// when Lo == Hi. Either end may be Star. The ends are kept as the client
// wrote them; "4:2" means the same as "2:4".
type SeqRange struct {
	Lo, Hi uint32
}

// SeqSet is a sequence set as the client sent it (RFC 9051 §9
// sequence-set): message sequence numbers, or UIDs in a UID command or a
// UID search key. Saved reports "$", the result saved by SEARCH RETURN
// (SAVE) (RFC 5182), which the set includes besides Ranges.
type SeqSet struct {
	Ranges []SeqRange
	Saved  bool
}

// IsSaved reports whether the set is exactly "$".
func (s SeqSet) IsSaved() bool { return s.Saved && len(s.Ranges) == 0 }

// HasStar reports whether "*" appears in the set. A sequence-number set
// with "*" is invalid in an empty mailbox (RFC 9051 §9 seq-number).
func (s SeqSet) HasStar() bool {
	for _, r := range s.Ranges {
		if r.Lo == Star || r.Hi == Star {
			return true
		}
	}
	return false
}

// Max returns the largest number written in the set (ignoring "*" and
// "$"), or 0. The server uses it to detect sequence numbers beyond the
// mailbox size, which deserve BAD (RFC 9051 §9 seq-number).
func (s SeqSet) Max() uint32 {
	var m uint32
	for _, r := range s.Ranges {
		m = max(m, r.Lo, r.Hi)
	}
	return m
}

// Resolve returns the numbers of the set with "*" replaced by star (the
// number of messages for sequence numbers; the largest UID in use, or
// UIDNEXT in an empty mailbox, for UIDs), and "$" by saved. The result is
// normalised; 0 (from "*" in an empty mailbox) never appears. For UID sets
// the server still intersects the result with the UIDs that exist: "559:*"
// includes the largest UID even when it is below 559 (RFC 9051 §6.4.9).
func (s SeqSet) Resolve(star uint32, saved mail.UIDSet) mail.UIDSet {
	out := make(mail.UIDSet, 0, len(s.Ranges)+len(saved))
	for _, r := range s.Ranges {
		lo, hi := r.Lo, r.Hi
		if lo == Star {
			lo = star
		}
		if hi == Star {
			hi = star
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if lo == 0 {
			if hi == 0 {
				continue
			}
			lo = 1
		}
		out = append(out, mail.UIDRange{Lo: mail.UID(lo), Hi: mail.UID(hi)})
	}
	if s.Saved {
		out = append(out, saved...)
	}
	return out.Normalize()
}

// String formats the set in IMAP syntax.
func (s SeqSet) String() string {
	var b strings.Builder
	num := func(n uint32) {
		if n == Star {
			b.WriteByte('*')
		} else {
			b.WriteString(strconv.FormatUint(uint64(n), 10))
		}
	}
	for i, r := range s.Ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		num(r.Lo)
		if r.Hi != r.Lo {
			b.WriteByte(':')
			num(r.Hi)
		}
	}
	if s.Saved {
		if len(s.Ranges) > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('$')
	}
	return b.String()
}

// ParseSeqSet parses a sequence set in IMAP syntax ("1:4,7,9:*", "$").
func ParseSeqSet(str string) (SeqSet, error) {
	r := &Reader{line: []byte(str)}
	var s SeqSet
	err := r.run(func() {
		s = r.seqSet(true)
		if r.pos != len(r.line) {
			fail("invalid sequence set")
		}
	})
	return s, err
}

// seqSet consumes a sequence set. allowSaved accepts "$" (RFC 5182).
func (r *Reader) seqSet(allowSaved bool) SeqSet {
	var s SeqSet
	n := 1
	for i := r.pos; i < len(r.line) && r.line[i] != ' ' && r.line[i] != ')'; i++ {
		if r.line[i] == ',' {
			n++
		}
	}
	s.Ranges = make([]SeqRange, 0, n)
	for {
		if r.peek() == '$' {
			if !allowSaved {
				fail("$ not allowed here")
			}
			r.pos++
			s.Saved = true
		} else {
			lo := r.seqNumber()
			hi := lo
			if r.peek() == ':' {
				r.pos++
				hi = r.seqNumber()
			}
			s.Ranges = append(s.Ranges, SeqRange{lo, hi})
		}
		if r.peek() != ',' {
			break
		}
		r.pos++
	}
	if len(s.Ranges) == 0 {
		s.Ranges = nil
	}
	return s
}

// seqNumber consumes an nz-number or "*".
func (r *Reader) seqNumber() uint32 {
	if r.peek() == '*' {
		r.pos++
		return Star
	}
	if c := r.peek(); c < '0' || c > '9' {
		fail("invalid sequence set")
	}
	return r.nzNumber("sequence number")
}

// uidSetNoStar consumes a set of UIDs or sequence numbers where "*" and
// "$" are not allowed (RFC 7162 known-uids) and returns it normalised.
func (r *Reader) uidSetNoStar(what string) mail.UIDSet {
	s := r.seqSet(false)
	if s.HasStar() {
		failf("* not allowed in %s", what)
	}
	out := make(mail.UIDSet, len(s.Ranges))
	for i, x := range s.Ranges {
		out[i] = mail.UIDRange{Lo: mail.UID(min(x.Lo, x.Hi)), Hi: mail.UID(max(x.Lo, x.Hi))}
	}
	return out.Normalize()
}
