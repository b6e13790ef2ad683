package message

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	utc := func(y int, m time.Month, d, h, mi, s int) time.Time { return time.Date(y, m, d, h, mi, s, 0, time.UTC) }
	tests := []struct {
		in   string
		want time.Time // zero: not parseable
	}{
		{"Tue, 10 Sep 2024 09:14:58 +0200", utc(2024, 9, 10, 7, 14, 58)},
		{"10 Sep 2024 09:14:58 +0200", utc(2024, 9, 10, 7, 14, 58)},
		{"Tue, 10 Sep 2024 09:14 +0200", utc(2024, 9, 10, 7, 14, 0)},
		{"Tue, 10 Sep 2024 09:14:58 -0000", utc(2024, 9, 10, 9, 14, 58)},
		{"Tue, 10 Sep 2024 09:14:58 +0000 (UTC)", utc(2024, 9, 10, 9, 14, 58)},
		{"Tue, 10 Sep 24 09:14:58 GMT", utc(2024, 9, 10, 9, 14, 58)},
		{"Fri, 21 Nov 97 09:55:06 -0600", utc(1997, 11, 21, 15, 55, 6)},
		{"Thu, 13 Feb 1969 23:32:54 -0330", utc(1969, 2, 14, 3, 2, 54)},
		{"Thu,\r\n 13\r\n   Feb\r\n    1969\r\n  23:32\r\n  -0330 (Newfoundland Time)", utc(1969, 2, 14, 3, 2, 0)},
		{"21 Nov 97 09:55:06 GMT", utc(1997, 11, 21, 9, 55, 6)},
		{"Mon, 2 Jan 2006 15:04:05 EST", utc(2006, 1, 2, 20, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 PDT", utc(2006, 1, 2, 22, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 Z", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 A", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 GMT+0200", utc(2006, 1, 2, 13, 4, 5)},
		{"Mon, 2 Jan 2006 15:04:05 +02:00", utc(2006, 1, 2, 13, 4, 5)},
		{"Mon, 02 January 2006 15:04:05 +0100", utc(2006, 1, 2, 14, 4, 5)},
		{"mon, 2 jan 2006 15:04:05 +0100", utc(2006, 1, 2, 14, 4, 5)},
		{"Mon Jan  2 15:04:05 2006", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon Jan 2 15:04:05 MST 2006", utc(2006, 1, 2, 22, 4, 5)},
		{"2006-01-02 15:04:05", utc(2006, 1, 2, 15, 4, 5)},
		{"2006-01-02T15:04:05+01:00", utc(2006, 1, 2, 14, 4, 5)},
		{"2006-01-02T15:04:05Z", utc(2006, 1, 2, 15, 4, 5)},
		{"Tue, 02-Jan-2006 15:04:05 GMT", utc(2006, 1, 2, 15, 4, 5)},
		{"Jan 2, 2006 3:04 PM", utc(2006, 1, 2, 15, 4, 0)},
		{"Mon, 2 Jan 2006 15:04:05.123 +0000", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon, 2 Jan 2006 23:59:60 +0000", utc(2006, 1, 2, 23, 59, 59)},
		{"Mon,2 Jan 2006 15:04:05 +0000", utc(2006, 1, 2, 15, 4, 5)},
		{"", time.Time{}},
		{"garbage", time.Time{}},
		{"31 Feb 2006 00:00:00", time.Time{}},
		{"Mon, 2 2006 15:04:05", time.Time{}},
		{"Mon, 2 Jan 2006 25:04:05", time.Time{}},
		{"Mon, 0 Jan 2006", time.Time{}},
	}
	for _, tt := range tests {
		got, ok := ParseDate(tt.in)
		if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", tt.in, got, ok, tt.want)
		}
		if ok && got.Location() != time.UTC {
			t.Errorf("ParseDate(%q) not in UTC", tt.in)
		}
	}
}
