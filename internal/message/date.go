package message

import (
	"strings"
	"time"
)

// months maps the lower-case three-letter month abbreviations. Read-only.
var months = map[string]time.Month{
	"jan": time.January, "feb": time.February, "mar": time.March, "apr": time.April,
	"may": time.May, "jun": time.June, "jul": time.July, "aug": time.August,
	"sep": time.September, "oct": time.October, "nov": time.November, "dec": time.December,
}

// zones maps the obsolete zone names of RFC 5322 §4.3 (and a few common
// others) to their offsets in minutes. Read-only.
var zones = map[string]int{
	"ut": 0, "utc": 0, "gmt": 0, "z": 0, "wet": 0,
	"edt": -4 * 60, "est": -5 * 60, "cdt": -5 * 60, "cst": -6 * 60,
	"mdt": -6 * 60, "mst": -7 * 60, "pdt": -7 * 60, "pst": -8 * 60,
	"cet": 60, "cest": 2 * 60, "met": 60, "mest": 2 * 60, "bst": 60, "eet": 2 * 60, "eest": 3 * 60,
	"jst": 9 * 60, "kst": 9 * 60, "hkt": 8 * 60, "ist": 5*60 + 30, "aest": 10 * 60, "aedt": 11 * 60,
}

// ParseDate parses a Date header value (RFC 5322 §3.3) into UTC, leniently:
// the day of the week is optional and not checked, seconds are optional, a
// two-digit year is read as RFC 5322 §4.3 says (00-49 is 20xx, 50-99 is
// 19xx), obsolete and common zone names are understood, military zones and
// a missing zone mean UTC, comments and extra punctuation are ignored, and
// the asctime order ("Mon Jan  2 15:04:05 2006") and ISO 8601 dates
// ("2006-01-02 15:04:05") are accepted. ok is false when no day, month and
// year can be found.
func ParseDate(s string) (t time.Time, ok bool) {
	var (
		day, year      = -1, -1
		month          time.Month
		hour, min, sec int
		haveTime       bool
		offset         int // minutes east of UTC
		haveZone       bool
		yearDigits     int
	)
	number := func(n, digits int) {
		switch {
		case digits >= 3 || n > 31:
			if year < 0 {
				year, yearDigits = n, digits
			}
		case day < 0:
			day = n
		case year < 0:
			year, yearDigits = n, digits
		}
	}
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '(' {
			i = skipComment(s, i)
			continue
		}
		if c == ' ' || c == '\t' || c == ',' || c == '\r' || c == '\n' {
			i++
			continue
		}
		// One token: up to whitespace, comma or comment.
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != ',' && s[j] != '(' && s[j] != '\r' && s[j] != '\n' {
			j++
		}
		tok := s[i:j]
		i = j
		switch {
		case len(tok) >= 10 && tok[4] == '-' && isDigits(tok[:4]) && year < 0:
			// ISO 8601: 2006-01-02 or 2006-01-02T15:04:05[Z|±hh:mm].
			y, m, d, rest, ok := parseISODate(tok)
			if !ok {
				continue
			}
			year, month, day, yearDigits = y, m, d, 4
			if rest != "" {
				if h, mi, se, zrest, ok := parseClock(rest); ok {
					hour, min, sec, haveTime = h, mi, se, true
					if off, ok := parseZone(zrest); ok {
						offset, haveZone = off, true
					}
				}
			}
		case isDigit(c) && strings.Count(tok, "-") == 2:
			// "02-Jan-2006".
			parts := strings.Split(tok, "-")
			m, okm := months[strings.ToLower(parts[1][:min2(len(parts[1]), 3)])]
			d, dd := leadingNumber(parts[0])
			y, yd := leadingNumber(parts[2])
			if okm && dd > 0 && dd <= 2 && yd > 0 && month == 0 && day < 0 && year < 0 {
				month, day, year, yearDigits = m, d, y, yd
			}
		case strings.IndexByte(tok, ':') > 0 && !haveTime && isDigit(c):
			h, mi, se, rest, ok := parseClock(tok)
			if !ok {
				continue
			}
			hour, min, sec, haveTime = h, mi, se, true
			if rest != "" {
				if off, ok := parseZone(rest); ok {
					offset, haveZone = off, true
				}
			}
		case (c == '+' || c == '-') && !haveZone && len(tok) > 1 && isDigit(tok[1]):
			if off, ok := parseZone(tok); ok {
				offset, haveZone = off, true
			}
		case isDigit(c):
			if n, digits := leadingNumber(tok); digits > 0 {
				number(n, digits)
			}
		case isLetter(c):
			lower := strings.ToLower(tok)
			if len(lower) >= 3 && month == 0 && isAlphaOnly(lower) {
				if m, ok := months[lower[:3]]; ok {
					month = m
					continue
				}
			}
			switch lower {
			case "pm", "p.m.":
				if haveTime && hour < 12 {
					hour += 12
				}
				continue
			case "am", "a.m.":
				if haveTime && hour == 12 {
					hour = 0
				}
				continue
			}
			if !haveZone {
				if off, ok := parseZone(tok); ok {
					offset, haveZone = off, true
				}
			}
		}
	}
	if day < 1 || day > 31 || month == 0 || year < 0 {
		return time.Time{}, false
	}
	// RFC 5322 §4.3: two-digit years are 1950-2049; three-digit years add
	// 1900.
	switch {
	case yearDigits <= 2 && year < 50:
		year += 2000
	case yearDigits <= 2:
		year += 1900
	case yearDigits == 3:
		year += 1900
	}
	if year < 1 || year > 9999 || hour > 23 || min > 59 || sec > 60 {
		return time.Time{}, false
	}
	if sec == 60 {
		sec = 59 // leap second
	}
	t = time.Date(year, month, day, hour, min, sec, 0, time.UTC)
	if t.Day() != day {
		return time.Time{}, false // such as 31 Feb
	}
	return t.Add(-time.Duration(offset) * time.Minute), true
}

func min2(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isAlphaOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLetter(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

// leadingNumber returns the value of the leading digits of s (at most 9).
func leadingNumber(s string) (n, digits int) {
	for digits < len(s) && digits < 9 && isDigit(s[digits]) {
		n = n*10 + int(s[digits]-'0')
		digits++
	}
	return n, digits
}

// parseClock parses "hh:mm[:ss[.frac]]" at the start of s and returns what
// follows.
func parseClock(s string) (h, m, sec int, rest string, ok bool) {
	h, d := leadingNumber(s)
	if d == 0 || d > 2 || d >= len(s) || s[d] != ':' {
		return 0, 0, 0, "", false
	}
	s = s[d+1:]
	m, d = leadingNumber(s)
	if d == 0 || d > 2 {
		return 0, 0, 0, "", false
	}
	s = s[d:]
	if len(s) > 0 && s[0] == ':' {
		sec, d = leadingNumber(s[1:])
		if d == 0 || d > 2 {
			return 0, 0, 0, "", false
		}
		s = s[1+d:]
	}
	if len(s) > 0 && (s[0] == '.' || s[0] == ',') {
		k := 1
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		s = s[k:]
	}
	return h, m, sec, s, true
}

// parseISODate parses "yyyy-mm-dd" at the start of s, and returns the rest
// after an optional 'T' or '_'.
func parseISODate(s string) (y int, m time.Month, d int, rest string, ok bool) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' || !isDigits(s[0:4]) || !isDigits(s[5:7]) || !isDigits(s[8:10]) {
		return 0, 0, 0, "", false
	}
	y, _ = leadingNumber(s[0:4])
	mm, _ := leadingNumber(s[5:7])
	d, _ = leadingNumber(s[8:10])
	if mm < 1 || mm > 12 {
		return 0, 0, 0, "", false
	}
	rest = s[10:]
	if rest != "" && (rest[0] == 'T' || rest[0] == 't' || rest[0] == '_') {
		rest = rest[1:]
	}
	return y, time.Month(mm), d, rest, true
}

// parseZone parses a zone: "+hhmm", "-hh:mm", "+hh", a name such as "EST",
// "GMT+0200", or a single military letter (RFC 5322 §4.3: treated as
// -0000, since their sign was specified wrongly). Offsets are in minutes.
func parseZone(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	lower := strings.ToLower(s)
	for _, prefix := range []string{"gmt", "utc", "ut"} {
		if len(lower) > len(prefix) && strings.HasPrefix(lower, prefix) &&
			(lower[len(prefix)] == '+' || lower[len(prefix)] == '-') {
			return parseZone(s[len(prefix):])
		}
	}
	if off, ok := zones[lower]; ok {
		return off, true
	}
	if len(lower) == 1 && isLetter(lower[0]) && lower[0] != 'j' {
		return 0, true
	}
	sign := 1
	switch s[0] {
	case '+':
	case '-':
		sign = -1
	default:
		return 0, false
	}
	s = strings.ReplaceAll(s[1:], ":", "")
	n, d := leadingNumber(s)
	var h, m int
	switch d {
	case 1, 2:
		h = n
	case 3, 4:
		h, m = n/100, n%100
	default:
		return 0, false
	}
	if h > 23 || m > 59 {
		return 0, false
	}
	return sign * (h*60 + m), true
}
