package imapsearch

import (
	"strings"
	"time"

	"github.com/postfach/postfach/internal/message"
)

// day is a calendar date packed so that days compare like dates:
// year<<9 | month<<5 | day. 0 means "no date".
type day int32

func makeDay(y int, m time.Month, d int) day {
	return day(y<<9 | int(m)<<5 | d)
}

// dayOf returns the calendar date of t in its own location, or in loc
// when loc is not nil. RFC 9051 §6.4.4 compares dates "disregarding time
// and timezone": the date a timestamp carries is the date in the zone it
// was given in, which the store keeps.
func dayOf(t time.Time, loc *time.Location) day {
	if loc != nil {
		t = t.In(loc)
	}
	y, m, d := t.Date()
	return makeDay(y, m, d)
}

// keyDay returns the date of a search key: the parser gives the day at
// 00:00 UTC.
func keyDay(t time.Time) day {
	y, m, d := t.UTC().Date()
	return makeDay(y, m, d)
}

// sentDay returns the date of the Date header as the sender wrote it
// (RFC 9051 §6.4.4 SENTBEFORE etc.: "disregarding time and timezone"), or
// 0 when the message has no parseable Date header. Summary.Date holds the
// instant in UTC; the calendar date in the header is read from its text
// and trusted only when it is within a day of that instant (the zone
// offset can move the date by at most one day either way), so the two
// parsers can never disagree by more than the zone.
func sentDay(sum *message.Summary) day {
	if sum == nil || sum.Date.IsZero() {
		return 0
	}
	utc := keyDay(sum.Date)
	if sum.Root.Envelope == nil {
		return utc
	}
	y, m, d, ok := headerDate(sum.Root.Envelope.Date)
	if !ok {
		return utc
	}
	written := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	if diff := written.Sub(sum.Date.UTC().Truncate(24 * time.Hour)); diff < -24*time.Hour || diff > 24*time.Hour {
		return utc
	}
	return makeDay(y, m, d)
}

// monthNames holds the three-letter month abbreviations, in order.
const monthNames = "janfebmaraprmayjunjulaugsepoctnovdec"

// headerDate finds the day, month and year written in a Date header value
// (RFC 5322 §3.3, read leniently like message.ParseDate: optional day of
// the week, comments, two-digit years, "2006-01-02" and "02-Jan-2006"
// forms). Times and zones are skipped.
func headerDate(s string) (y int, m time.Month, d int, ok bool) {
	d, y = -1, -1
	yDigits := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '(':
			depth := 0
			for ; i < len(s); i++ {
				if s[i] == '\\' {
					i++
					continue
				}
				if s[i] == '(' {
					depth++
				} else if s[i] == ')' {
					depth--
					if depth == 0 {
						i++
						break
					}
				}
			}
			continue
		case c == ' ' || c == '\t' || c == ',' || c == '\r' || c == '\n':
			i++
			continue
		}
		j := i
		for j < len(s) && !strings.ContainsRune(" \t,(\r\n", rune(s[j])) {
			j++
		}
		tok := s[i:j]
		i = j
		switch {
		case len(tok) >= 10 && tok[4] == '-' && tok[7] == '-' && allDigits(tok[:4]) && allDigits(tok[5:7]) && allDigits(tok[8:10]):
			if y < 0 {
				y, yDigits = atoi(tok[:4]), 4
				m = time.Month(atoi(tok[5:7]))
				d = atoi(tok[8:10])
			}
		case isDigitByte(tok[0]) && strings.Count(tok, "-") == 2:
			p := strings.Split(tok, "-")
			if mm := monthOf(p[1]); mm != 0 && allDigits(p[0]) && len(p[0]) <= 2 && leadingDigits(p[2]) > 0 && d < 0 {
				d, m = atoi(p[0]), mm
				n := leadingDigits(p[2])
				y, yDigits = atoi(p[2][:n]), n
			}
		case strings.IndexByte(tok, ':') >= 0 || tok[0] == '+' || tok[0] == '-':
			// A time or a zone.
		case isDigitByte(tok[0]):
			n := leadingDigits(tok)
			if n > 9 {
				continue
			}
			v := atoi(tok[:n])
			switch {
			case n >= 3 || v > 31:
				if y < 0 {
					y, yDigits = v, n
				}
			case d < 0:
				d = v
			case y < 0:
				y, yDigits = v, n
			}
		default:
			if m == 0 {
				m = monthOf(tok)
			}
		}
	}
	if d < 1 || d > 31 || m < 1 || m > 12 || y < 0 {
		return 0, 0, 0, false
	}
	// RFC 5322 §4.3: two-digit years are 1950-2049, three-digit ones
	// count from 1900.
	switch {
	case yDigits <= 2 && y < 50:
		y += 2000
	case yDigits <= 3 && y < 1000:
		y += 1900
	}
	if y > 9999 || time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Day() != d {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// monthOf returns the month a word names by its first three letters, or 0.
func monthOf(w string) time.Month {
	if len(w) < 3 {
		return 0
	}
	for i := 0; i < len(w); i++ {
		c := w[i] | 0x20
		if (c < 'a' || c > 'z') && w[i] != '.' {
			return 0
		}
	}
	for i := 0; i < len(monthNames); i += 3 {
		if strings.EqualFold(w[:3], monthNames[i:i+3]) {
			return time.Month(i/3 + 1)
		}
	}
	return 0
}

func isDigitByte(c byte) bool { return '0' <= c && c <= '9' }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigitByte(s[i]) {
			return false
		}
	}
	return true
}

// leadingDigits returns the number of leading ASCII digits of s.
func leadingDigits(s string) int {
	n := 0
	for n < len(s) && isDigitByte(s[n]) {
		n++
	}
	return n
}

// atoi parses a string of at most 9 ASCII digits.
func atoi(s string) int {
	v := 0
	for i := 0; i < len(s) && i < 9; i++ {
		v = v*10 + int(s[i]-'0')
	}
	return v
}
