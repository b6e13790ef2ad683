package imap

import (
	"time"
)

// months are the date-month names of RFC 9051 §9.
var months = [12]string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}

// dateTimeLayout is the date-time of RFC 9051 §9 for time.Format.
const dateTimeLayout = "_2-Jan-2006 15:04:05 -0700"

// AppendDateTime appends t in the date-time form of RFC 9051 §9, without
// quotes ("17-Jul-1996 02:44:25 -0700"), as INTERNALDATE and SAVEDATE are
// written.
func AppendDateTime(dst []byte, t time.Time) []byte {
	return t.AppendFormat(dst, dateTimeLayout)
}

// twoDigits consumes exactly two digits.
func (r *Reader) twoDigits(what string) int {
	if r.pos+2 > len(r.line) || !isDigit(r.line[r.pos]) || !isDigit(r.line[r.pos+1]) {
		fail("invalid " + what)
	}
	n := int(r.line[r.pos]-'0')*10 + int(r.line[r.pos+1]-'0')
	r.pos += 2
	return n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// dateText consumes date-day "-" date-month "-" date-year and returns the
// day at 00:00 UTC. A leading space (date-day-fixed) is accepted when
// fixed is set.
func (r *Reader) dateText(fixed bool) time.Time {
	day := 0
	switch {
	case fixed && r.peek() == ' ':
		r.pos++
		if r.pos >= len(r.line) || !isDigit(r.line[r.pos]) {
			fail("invalid date")
		}
		day = int(r.line[r.pos] - '0')
		r.pos++
	default:
		start := r.pos
		for r.pos < len(r.line) && isDigit(r.line[r.pos]) && r.pos-start < 2 {
			day = day*10 + int(r.line[r.pos]-'0')
			r.pos++
		}
		if r.pos == start {
			fail("invalid date")
		}
	}
	r.expect('-', "- in date")
	if r.pos+3 > len(r.line) {
		fail("invalid month")
	}
	var buf [3]byte
	mon := string(upperASCII(buf[:0], r.line[r.pos:r.pos+3]))
	month := 0
	for i, m := range months {
		if m == mon {
			month = i + 1
		}
	}
	if month == 0 {
		fail("invalid month")
	}
	r.pos += 3
	r.expect('-', "- in date")
	year := r.twoDigits("year")*100 + r.twoDigits("year")
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day || day == 0 {
		fail("invalid day of month")
	}
	return t
}

// searchDate consumes date = date-text / DQUOTE date-text DQUOTE.
func (r *Reader) searchDate() time.Time {
	if r.peek() == '"' {
		r.pos++
		t := r.dateText(false)
		r.expect('"', "closing quote of date")
		return t
	}
	return r.dateText(false)
}

// dateTime consumes a quoted date-time (RFC 9051 §9).
func (r *Reader) dateTime() time.Time {
	r.expect('"', "date-time")
	d := r.dateText(true)
	r.expect(' ', "space in date-time")
	hh := r.twoDigits("time")
	r.expect(':', "time")
	mm := r.twoDigits("time")
	r.expect(':', "time")
	ss := r.twoDigits("time")
	if hh > 23 || mm > 59 || ss > 60 {
		fail("invalid time")
	}
	r.expect(' ', "space in date-time")
	sign := r.peek()
	if sign != '+' && sign != '-' {
		fail("invalid time zone")
	}
	r.pos++
	zh := r.twoDigits("time zone")
	zm := r.twoDigits("time zone")
	if zh > 99 || zm > 59 {
		fail("invalid time zone")
	}
	r.expect('"', "closing quote of date-time")
	off := zh*3600 + zm*60
	if sign == '-' {
		off = -off
	}
	loc := time.UTC
	if off != 0 {
		loc = time.FixedZone("", off)
	}
	return time.Date(d.Year(), d.Month(), d.Day(), hh, mm, ss, 0, loc)
}
