package imapsearch

import (
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/postfach/postfach/internal/message"
)

func TestFoldMatchesEqualFold(t *testing.T) {
	for r := rune(0); r < 0x2000; r++ {
		for _, s := range []rune{r, fold(r)} {
			if !strings.EqualFold(string(r), string(s)) {
				t.Fatalf("fold(%U) = %U, not EqualFold", r, s)
			}
		}
	}
	pairs := [][2]rune{{'k', 'K'}, {'K', 0x212A}, {'s', 0x17F}, {'ä', 'Ä'}, {'я', 'Я'}, {'σ', 'ς'}, {'σ', 'Σ'}}
	for _, p := range pairs {
		if fold(p[0]) != fold(p[1]) {
			t.Errorf("fold(%q) != fold(%q)", p[0], p[1])
		}
	}
	if fold('ß') == fold('s') {
		t.Error("ß folds to s")
	}
}

func TestPatternMatchString(t *testing.T) {
	tests := []struct {
		pat, text string
		want      bool
	}{
		{"", "", true},
		{"", "anything", true},
		{"abc", "", false},
		{"abc", "xxABCxx", true},
		{"ABC", "xxabcxx", true},
		{"aab", "aaab", true},    // needs the failure function
		{"abab", "ababab", true}, // overlapping
		{"abac", "ababac", true}, // partial match restart
		{"aaa", "aa", false},     // too short
		{"Straße", "STRAßE", true},
		{"straße", "strasse", false},
		{"ΣΊΣΥΦΟΣ", "σίσυφος", true},
		{"ключ", "КЛЮЧ В ЗАМКЕ", true},
		{"kelvin", "\u212Aelvin", true},
		{"日本", "日本語のテキスト", true},
		{"語の", "日本語のテキスト", true},
		{"本日", "日本語のテキスト", false},
	}
	for _, tc := range tests {
		if got := newPattern(tc.pat).matchString(tc.text); got != tc.want {
			t.Errorf("%q in %q: %v, want %v", tc.pat, tc.text, got, tc.want)
		}
	}
}

// TestMatcherChunks feeds text in pieces of every size, so runes and
// partial matches are split across reads.
func TestMatcherChunks(t *testing.T) {
	text := "Grüße aus Köln — ПРИВЕТ мир, 日本語. The end."
	for _, pat := range []string{"köln — привет", "日本語.", "the end.", "grüße", "missing"} {
		want := newPattern(pat).matchString(text)
		for size := 1; size <= 8; size++ {
			p := newPattern(pat)
			m := matcher{p: p}
			buf := make([]byte, size+utf8.UTFMax)
			r := iotest.OneByteReader(strings.NewReader(text))
			if size > 1 {
				r = &chunkReader{s: text, n: size}
			}
			got, err := m.feedReader(r, buf)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%q in chunks of %d: %v, want %v", pat, size, got, want)
			}
		}
	}
	// A reader error is returned.
	m := matcher{p: newPattern("x")}
	if _, err := m.feedReader(iotest.ErrReader(io.ErrUnexpectedEOF), make([]byte, 16)); err == nil {
		t.Error("read error lost")
	}
}

type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	k := min(c.n, len(p), len(c.s))
	copy(p, c.s[:k])
	c.s = c.s[k:]
	return k, nil
}

func TestToValidUTF8(t *testing.T) {
	if got := toValidUTF8("caf\xe9 \x80"); got != "café €" {
		t.Errorf("got %q", got)
	}
	if got := toValidUTF8("ok ü"); got != "ok ü" {
		t.Errorf("got %q", got)
	}
}

func TestHeaderDate(t *testing.T) {
	tests := []struct {
		in   string
		want string // yyyy-mm-dd or ""
	}{
		{"Wed, 11 Sep 2024 23:30:00 -0700", "2024-09-11"},
		{"11 Sep 2024 23:30 +1400", "2024-09-11"},
		{"Thu, 1 Jan 70 00:00:00 GMT", "1970-01-01"},
		{"Mon, 3 Mar 03 10:00:00 EST (Eastern Standard Time)", "2003-03-03"},
		{"(comment, with 12) Tue, 4 Feb 2025 08:00:00 +0100", "2025-02-04"},
		{"2024-12-31T23:59:59-05:00", "2024-12-31"},
		{"2024-12-31 23:59:59", "2024-12-31"},
		{"31-Dec-2024 23:59:59 +0000", "2024-12-31"},
		{"Sat Feb  8 12:00:00 2020", "2020-02-08"},
		{"December 5, 2019 10:00", "2019-12-05"},
		{"31 Feb 2024 10:00:00 +0000", ""},
		{"not a date", ""},
		{"", ""},
	}
	for _, tc := range tests {
		y, m, d, ok := headerDate(tc.in)
		got := ""
		if ok {
			got = time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Format("2006-01-02")
		}
		if got != tc.want {
			t.Errorf("headerDate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSentDay(t *testing.T) {
	tests := []struct {
		date string
		want string
	}{
		// The written date, even where the zone puts the instant on
		// another day in UTC.
		{"Wed, 11 Sep 2024 23:30:00 -0700", "2024-09-11"},
		{"Thu, 12 Sep 2024 00:10:00 +0200", "2024-09-12"},
		{"Thu, 12 Sep 2024 00:00:00 +1400", "2024-09-12"},
		{"Thu, 12 Sep 2024 23:59:59 -1200", "2024-09-12"},
		{"Thu, 12 Sep 2024 12:00:00 +0000", "2024-09-12"},
		{"garbage", ""},
	}
	for _, tc := range tests {
		sum, err := message.Parse(strings.NewReader("Date: " + tc.date + "\r\nSubject: x\r\n\r\nbody\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if d := sentDay(sum); d != 0 {
			got = time.Date(int(d>>9), time.Month(d>>5&15), int(d&31), 0, 0, 0, 0, time.UTC).Format("2006-01-02")
		}
		if got != tc.want {
			t.Errorf("sentDay(%q) = %q, want %q", tc.date, got, tc.want)
		}
	}
	if sentDay(nil) != 0 {
		t.Error("sentDay(nil)")
	}
}

func TestDayOf(t *testing.T) {
	ts := date("2024-09-11T23:30:00-07:00")
	if dayOf(ts, nil) != makeDay(2024, 9, 11) {
		t.Error("own zone")
	}
	if dayOf(ts, time.UTC) != makeDay(2024, 9, 12) {
		t.Error("UTC")
	}
	if !(makeDay(2024, 1, 31) < makeDay(2024, 2, 1) && makeDay(2023, 12, 31) < makeDay(2024, 1, 1)) {
		t.Error("day order")
	}
}

// TestFoldedTextMatchesMatcher: a search over prepared text (folded
// bytes, searchtext.go) finds exactly what the streaming matcher finds,
// on random text and patterns of ASCII, letters whose case folds across
// byte lengths (K and the Kelvin sign, s and the long s, ß), and invalid
// UTF-8.
func TestFoldedTextMatchesMatcher(t *testing.T) {
	alphabet := []string{"a", "A", "k", "K", "\u212a", "s", "S", "\u017f", "ß", "σ", "ς", "Σ", "я", "Я", " ", "\xff", "\xe2\x82"}
	rng := rand.New(rand.NewPCG(4, 5))
	str := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for i := 0; i < 20000; i++ {
		text, pat := str(rng.IntN(12)), toValidUTF8(str(1+rng.IntN(3)))
		p := newPattern(pat)
		m := matcher{p: p}
		_, want := m.feedBytes([]byte(text), true)
		got := matchBodyText(&BodyText{segs: [][]byte{appendFoldedBytes(nil, []byte(text))}}, p)
		if got != want {
			t.Fatalf("text %q pattern %q: prepared %v, matcher %v", text, pat, got, want)
		}
	}
}
