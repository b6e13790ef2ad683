package imapsearch

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/charmap"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

const msgPlain = `From: "Alice Smith" <alice@example.org>
To: Bob <bob@example.net>
Cc: carol@example.com
Bcc: dave@example.com
Subject: Quarterly report
Date: Wed, 11 Sep 2024 23:30:00 -0700
Message-ID: <q1@example.org>
X-Custom: first value
X-Custom: Second
Content-Type: text/plain; charset=utf-8

The numbers look good.
Straße in München.
`

const msgLatin1 = `From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.de>
To: team@example.org
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=
Date: Thu, 12 Sep 2024 00:10:00 +0200
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Sch=F6ne Gr=FC=DFe aus K=F6ln, der Stadt am Rh=
ein.
`

func msgMultipart() string {
	text := base64.StdEncoding.EncodeToString([]byte("Привет, мир! Отчёт готов.\r\n"))
	att := base64.StdEncoding.EncodeToString([]byte("secretword inside attachment"))
	return `From: ivan@example.ru
To: "Team" <team@example.org>, alice@example.org
Subject: Re: [list] Fwd: Quarterly report (fwd)
Date: 13 Sep 2024 10:00:00 +0000
In-Reply-To: <q1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

` + text + `
--b1
Content-Type: text/html; charset=utf-8

<p>Hello <b>HTML</b> world</p>
--b1
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

` + att + `
--b1--
`
}

const msgNested = `From: bob@example.net
To: alice@example.org
Subject: Fwd: inner
Date: Sat, 14 Sep 2024 09:00:00 +0100
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

See below.
--outer
Content-Type: message/rfc822

From: Zed <zed@example.com>
Subject: Inner topic
Date: Fri, 13 Sep 2024 08:00:00 +0000

The deepword is here.
--outer--
`

func cp1251(s string) string {
	b, err := charmap.Windows1251.NewEncoder().String(s)
	if err != nil {
		panic(err)
	}
	return b
}

func msgCyrillic() string {
	subj := base64.StdEncoding.EncodeToString([]byte(cp1251("Отчёт за неделю")))
	return "From: olga@example.ru\n" +
		"To: alice@example.org\n" +
		"Subject: =?windows-1251?B?" + subj + "?=\n" +
		"X-Long: part one\n  part two\n" +
		"Content-Type: text/plain; charset=windows-1251\n" +
		"Content-Transfer-Encoding: 8bit\n" +
		"\n" +
		cp1251("Привет из Москвы.") + "\n"
}

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// fixtures returns five messages with their metadata (UIDs 10, 11, 12,
// 20, 21).
func fixtures(t testing.TB) []*fixture {
	return []*fixture{
		{meta: store.Message{UID: 10, ModSeq: 5, Flags: mail.NewFlags(`\Seen`), Size: 100,
			InternalDate: date("2024-09-12T01:00:00+02:00"), SaveDate: date("2024-10-01T10:00:00Z")},
			threadID: "T1", src: newSource(t, msgPlain)},
		{meta: store.Message{UID: 11, ModSeq: 7, Flags: mail.NewFlags(`\Flagged`, "$Work"), Size: 200,
			InternalDate: date("2024-09-12T00:20:00Z"), EmailID: "Mabc"},
			src: newSource(t, msgLatin1)},
		{meta: store.Message{UID: 12, ModSeq: 9, Flags: mail.NewFlags(`\Answered`, `\Seen`), Size: 3000,
			InternalDate: date("2024-09-13T12:00:00Z")},
			recent: true, threadID: "T1", src: newSource(t, msgMultipart())},
		{meta: store.Message{UID: 20, ModSeq: 10, Flags: mail.NewFlags(`\Deleted`, `\Draft`), Size: 400,
			InternalDate: date("2024-09-14T10:00:00+01:00")},
			src: newSource(t, msgNested)},
		{meta: store.Message{UID: 21, ModSeq: 12, Size: 500,
			InternalDate: date("2024-09-15T23:59:59-05:00")},
			recent: true, src: newSource(t, msgCyrillic())},
	}
}

func TestSearchKeys(t *testing.T) {
	fx := fixtures(t)
	now := date("2024-09-15T00:00:00Z")
	base := Options{NumMessages: 5, MaxUID: 21, Saved: mail.NewUIDSet(12, 21), Now: now}
	utc := base
	utc.Location = time.UTC
	noSave := base
	noSave.NoSaveDate = true
	tests := []struct {
		program string
		want    []uint32
		opt     *Options
	}{
		{program: "ALL", want: []uint32{1, 2, 3, 4, 5}},
		// Flags.
		{program: "SEEN", want: []uint32{1, 3}},
		{program: "UNSEEN", want: []uint32{2, 4, 5}},
		{program: "ANSWERED", want: []uint32{3}},
		{program: "UNANSWERED", want: []uint32{1, 2, 4, 5}},
		{program: "FLAGGED", want: []uint32{2}},
		{program: "UNFLAGGED", want: []uint32{1, 3, 4, 5}},
		{program: "DELETED", want: []uint32{4}},
		{program: "UNDELETED", want: []uint32{1, 2, 3, 5}},
		{program: "DRAFT", want: []uint32{4}},
		{program: "UNDRAFT", want: []uint32{1, 2, 3, 5}},
		{program: "KEYWORD $work", want: []uint32{2}},
		{program: "KEYWORD $WORK", want: []uint32{2}},
		{program: "UNKEYWORD $Work", want: []uint32{1, 3, 4, 5}},
		{program: "KEYWORD nope", want: nil},
		{program: "RECENT", want: []uint32{3, 5}},
		{program: "NEW", want: []uint32{5}},
		{program: "OLD", want: []uint32{1, 2, 4}},
		{program: `KEYWORD \Recent`, want: []uint32{3, 5}},
		// Addresses and subject, over decoded text.
		{program: "FROM alice", want: []uint32{1}},
		{program: `FROM "Alice Smith <alice@"`, want: []uint32{1}},
		{program: `FROM "smith"`, want: []uint32{1}},
		{program: `FROM "jörg"`, want: []uint32{2}},
		{program: `FROM "JÖRG"`, want: []uint32{2}},
		{program: `FROM "=?ISO"`, want: nil},
		{program: "FROM example", want: []uint32{1, 2, 3, 4, 5}},
		{program: "TO team@example.org", want: []uint32{2, 3}},
		{program: `TO "org>, alice"`, want: []uint32{3}},
		{program: "CC carol", want: []uint32{1}},
		{program: "CC nobody", want: nil},
		{program: "BCC DAVE@EXAMPLE.COM", want: []uint32{1}},
		{program: "SUBJECT report", want: []uint32{1, 3}},
		{program: `SUBJECT "GRÜßE"`, want: []uint32{2}},
		{program: `SUBJECT "aus köln"`, want: []uint32{2}},
		{program: `SUBJECT "ОТЧЁТ"`, want: []uint32{5}},
		{program: `SUBJECT ""`, want: []uint32{1, 2, 3, 4, 5}},
		{program: `SUBJECT "[list]"`, want: []uint32{3}},
		// HEADER.
		{program: "HEADER X-Custom second", want: []uint32{1}},
		{program: `HEADER x-custom ""`, want: []uint32{1}},
		{program: `HEADER Message-ID ""`, want: []uint32{1}},
		{program: `HEADER In-Reply-To q1@example`, want: []uint32{3}},
		{program: `HEADER X-Long "one  part two"`, want: []uint32{5}},
		{program: `HEADER Subject "неделю"`, want: []uint32{5}},
		{program: `HEADER Subject "windows-1251"`, want: nil},
		{program: `HEADER Content-Type "boundary"`, want: []uint32{3, 4}},
		// BODY and TEXT.
		{program: "BODY good", want: []uint32{1}},
		{program: `BODY "STRAßE"`, want: []uint32{1}},
		{program: "BODY strasse", want: nil},
		{program: `BODY "schöne"`, want: []uint32{2}},
		{program: `BODY "Rhein."`, want: []uint32{2}},
		{program: `BODY "МИР"`, want: []uint32{3}},
		{program: "BODY html", want: []uint32{3}},
		{program: "BODY secretword", want: nil},
		{program: "BODY deepword", want: []uint32{4}},
		{program: `BODY "Inner topic"`, want: []uint32{4}},
		{program: `BODY "москвы"`, want: []uint32{5}},
		{program: "BODY Quarterly", want: nil},
		{program: "BODY boundary", want: nil},
		{program: `BODY ""`, want: []uint32{1, 2, 3, 4, 5}},
		{program: "TEXT Quarterly", want: []uint32{1, 3}},
		{program: `TEXT "subject: re:"`, want: []uint32{3}},
		{program: "TEXT deepword", want: []uint32{4}},
		{program: "TEXT joerg", want: []uint32{2}},
		// Internal date: the date in the zone the message carries.
		{program: "BEFORE 12-Sep-2024", want: nil},
		{program: "ON 12-Sep-2024", want: []uint32{1, 2}},
		{program: "SINCE 13-Sep-2024", want: []uint32{3, 4, 5}},
		{program: "ON 15-Sep-2024", want: []uint32{5}},
		{program: "BEFORE 12-Sep-2024", want: []uint32{1}, opt: &utc},
		{program: "ON 15-Sep-2024", want: nil, opt: &utc},
		{program: "ON 16-Sep-2024", want: []uint32{5}, opt: &utc},
		// Sent date: the date written in the Date header.
		{program: "SENTON 11-Sep-2024", want: []uint32{1}},
		{program: "SENTON 12-Sep-2024", want: []uint32{2}},
		{program: "SENTBEFORE 12-Sep-2024", want: []uint32{1}},
		{program: "SENTSINCE 13-Sep-2024", want: []uint32{3, 4}},
		{program: "NOT SENTBEFORE 1-Jan-2100", want: []uint32{5}},
		// Save date, with the internal date where there is none.
		{program: "SAVEDON 1-Oct-2024", want: []uint32{1}},
		{program: "SAVEDSINCE 13-Sep-2024", want: []uint32{1, 3, 4, 5}},
		{program: "SAVEDBEFORE 13-Sep-2024", want: []uint32{2}},
		{program: "SAVEDATESUPPORTED", want: []uint32{1, 2, 3, 4, 5}},
		{program: "SAVEDON 1-Oct-2024", want: nil, opt: &noSave},
		{program: "SAVEDON 12-Sep-2024", want: []uint32{1, 2}, opt: &noSave},
		{program: "SAVEDATESUPPORTED", want: nil, opt: &noSave},
		// OLDER and YOUNGER from Options.Now.
		{program: "YOUNGER 86400", want: []uint32{4, 5}},
		{program: "OLDER 86400", want: []uint32{1, 2, 3}},
		{program: "OLDER 4294967295", want: nil},
		// Sizes.
		{program: "LARGER 400", want: []uint32{3, 5}},
		{program: "SMALLER 400", want: []uint32{1, 2}},
		{program: "LARGER 0", want: []uint32{1, 2, 3, 4, 5}},
		{program: "SMALLER 0", want: nil},
		// Sequence sets, UID sets, "*" and "$".
		{program: "2:3", want: []uint32{2, 3}},
		{program: "3:2", want: []uint32{2, 3}},
		{program: "*", want: []uint32{5}},
		{program: "4:*", want: []uint32{4, 5}},
		{program: "1,4,9", want: []uint32{1, 4}},
		{program: "UID 10:11", want: []uint32{1, 2}},
		{program: "UID 20:*", want: []uint32{4, 5}},
		{program: "UID *", want: []uint32{5}},
		{program: "UID 13:19", want: nil},
		{program: "UID 100:*", want: []uint32{5}},
		{program: "$", want: []uint32{3, 5}},
		{program: "1,$", want: []uint32{1, 3, 5}},
		{program: "UID $", want: []uint32{3, 5}},
		{program: "UID 10,$", want: []uint32{1, 3, 5}},
		{program: "NOT $", want: []uint32{1, 2, 4}},
		{program: "$", want: nil, opt: &Options{NumMessages: 5, MaxUID: 21}},
		// MODSEQ.
		{program: "MODSEQ 7", want: []uint32{2, 3, 4, 5}},
		{program: `MODSEQ "/flags/\\draft" all 10`, want: []uint32{4, 5}},
		{program: "MODSEQ 0", want: []uint32{1, 2, 3, 4, 5}},
		// Object IDs.
		{program: "EMAILID Mabc", want: []uint32{2}},
		{program: "EMAILID MABC", want: nil},
		{program: "THREADID T1", want: []uint32{1, 3}},
		{program: "THREADID T2", want: nil},
		// NOT, OR, AND and nesting.
		{program: "OR SEEN FLAGGED", want: []uint32{1, 2, 3}},
		{program: "NOT OR SEEN FLAGGED", want: []uint32{4, 5}},
		{program: "OR (SEEN FROM ivan) DELETED", want: []uint32{3, 4}},
		{program: "NOT NOT SEEN", want: []uint32{1, 3}},
		{program: "SEEN SUBJECT report NOT ANSWERED", want: []uint32{1}},
		{program: `(OR BODY deepword BODY "мир") (NOT 3)`, want: []uint32{4}},
		{program: "OR OR 1 2 OR UID 20 $", want: []uint32{1, 2, 3, 4, 5}},
		{program: "NOT (UNSEEN OR TEXT report LARGER 450)", want: []uint32{1, 2, 3, 4}},
	}
	for _, tc := range tests {
		opt := base
		if tc.opt != nil {
			opt = *tc.opt
			if opt.Now.IsZero() {
				opt.Now = now
			}
		}
		name := tc.program
		if tc.opt != nil {
			name += " (options)"
		}
		t.Run(name, func(t *testing.T) {
			s := parseKey(t, tc.program)
			opt.Charset = s.Charset
			prog, err := Compile(s.Key, opt)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if got := run(t, prog, fx); !slices.Equal(got, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.program, got, tc.want)
			}
			// The same over text prepared for search (TextSource).
			if got := runPrepared(t, prog, fx); !slices.Equal(got, tc.want) {
				t.Errorf("%s over prepared text: got %v, want %v", tc.program, got, tc.want)
			}
		})
	}
}

func TestSearchCharset(t *testing.T) {
	fx := fixtures(t)
	koi8, err := charmap.KOI8R.NewEncoder().String("москвы")
	if err != nil {
		t.Fatal(err)
	}
	latin1, err := charmap.ISO8859_1.NewEncoder().String("Grüße")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line string
		want []uint32
	}{
		{"a SEARCH CHARSET KOI8-R BODY {" + strconv.Itoa(len(koi8)) + "}\r\n" + koi8 + "\r\n", []uint32{5}},
		{"a SEARCH CHARSET ISO-8859-1 SUBJECT {" + strconv.Itoa(len(latin1)) + "}\r\n" + latin1 + "\r\n", []uint32{2}},
		{"a SEARCH CHARSET windows-1251 TEXT {5}\r\n" + cp1251("Отчёт") + "\r\n", []uint32{3, 5}},
		{"a SEARCH CHARSET US-ASCII FROM alice\r\n", []uint32{1}},
		{"a SEARCH CHARSET UTF-8 BODY \"мир\"\r\n", []uint32{3}},
		// No CHARSET: UTF-8, and 8-bit bytes that are not UTF-8 as
		// windows-1252.
		{"a SEARCH BODY {3}\r\n" + latin1[:3] + "\r\n", []uint32{2}},
	}
	for _, tc := range tests {
		s, err := parseSearch(tc.line)
		if err != nil {
			t.Fatalf("parse %q: %v", tc.line, err)
		}
		prog, err := Compile(s.Key, Options{Charset: s.Charset, NumMessages: 5, MaxUID: 21})
		if err != nil {
			t.Fatalf("%q: compile: %v", tc.line, err)
		}
		if got := run(t, prog, fx); !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.line, got, tc.want)
		}
	}
	for _, cs := range []string{"X-UNKNOWN", "KLINGON", "UTF-9"} {
		_, err := Compile(imap.SearchKey{Op: imap.SearchBody, Text: "x"}, Options{Charset: cs})
		if !errors.Is(err, ErrBadCharset) {
			t.Errorf("charset %s: err = %v, want ErrBadCharset", cs, err)
		}
	}
	if BadCharsetCode != "BADCHARSET (UTF-8 US-ASCII)" {
		t.Errorf("BadCharsetCode = %q", BadCharsetCode)
	}
}

// TestNeed checks the level each key needs and that Match loads no more.
func TestNeed(t *testing.T) {
	tests := []struct {
		program string
		need    Need
	}{
		{"ALL", NeedMeta},
		{"UNSEEN", NeedMeta},
		{"OR FLAGGED (UID 1:* NOT KEYWORD x)", NeedMeta},
		{"SINCE 1-Jan-2020 LARGER 5 MODSEQ 3 YOUNGER 5 SAVEDON 1-Jan-2020 EMAILID M1", NeedMeta},
		{"FROM x", NeedSummary},
		{"SENTON 1-Jan-2020", NeedSummary},
		{"NOT SUBJECT x", NeedSummary},
		{"HEADER X-A b", NeedHeader},
		{"OR HEADER X-A b FROM c", NeedHeader},
		{"BODY x", NeedBody},
		{"SEEN TEXT x", NeedBody},
	}
	for _, tc := range tests {
		prog, err := Compile(parseKey(t, tc.program).Key, Options{NumMessages: 5, MaxUID: 21})
		if err != nil {
			t.Fatal(err)
		}
		if prog.Need() != tc.need {
			t.Errorf("%s: Need() = %v, want %v", tc.program, prog.Need(), tc.need)
		}
		// A source that fails every load proves the level: programs
		// below NeedSummary never touch it.
		fx := fixtures(t)
		for _, f := range fx {
			f.src.fail = true
		}
		var m Message
		for i, f := range fx {
			m = Message{Seq: uint32(i + 1), Meta: &f.meta, Source: f.src}
			_, err := prog.Match(context.Background(), &m)
			if tc.need == NeedMeta && (err != nil || f.src.summaryCalls+f.src.bodyCalls > 0) {
				t.Errorf("%s: meta-only program loaded data (err %v)", tc.program, err)
			}
			if tc.need > NeedMeta && err == nil && f.src.summaryCalls == 0 && f.meta.Flags.Has(`\Seen`) {
				t.Errorf("%s: expected a load error", tc.program)
			}
		}
	}
}

// TestLazyLoading checks that AND and OR spare loads where cheaper keys
// decide, that the header search reads only the header, and that each
// datum is loaded at most once per message.
func TestLazyLoading(t *testing.T) {
	ctx := context.Background()
	count := func(program string) (sums, bodies []int) {
		fx := fixtures(t)
		prog, err := Compile(parseKey(t, program).Key, Options{NumMessages: 5, MaxUID: 21})
		if err != nil {
			t.Fatal(err)
		}
		var m Message
		for i, f := range fx {
			m = Message{Seq: uint32(i + 1), Meta: &f.meta, Source: f.src}
			if _, err := prog.Match(ctx, &m); err != nil {
				t.Fatal(err)
			}
			sums = append(sums, f.src.summaryCalls)
			bodies = append(bodies, f.src.bodyCalls)
		}
		return sums, bodies
	}
	// Only the seen messages (1, 3) get their bodies opened.
	_, bodies := count("BODY good SEEN")
	if !slices.Equal(bodies, []int{1, 0, 1, 0, 0}) {
		t.Errorf("BODY good SEEN: body loads %v", bodies)
	}
	// OR with a true flag key never looks further.
	sums, bodies := count("OR BODY x SEEN")
	if !slices.Equal(bodies, []int{0, 1, 0, 1, 1}) || !slices.Equal(sums, []int{0, 1, 0, 1, 1}) {
		t.Errorf("OR BODY x SEEN: summaries %v bodies %v", sums, bodies)
	}
	// Several content keys share one load per message.
	sums, bodies = count("FROM a SUBJECT b HEADER X-Custom c TEXT d BODY e HEADER To f")
	for i := range sums {
		if sums[i] > 1 || bodies[i] > 1 {
			t.Errorf("message %d loaded %d summaries, %d bodies", i+1, sums[i], bodies[i])
		}
	}
	// A summary carried in Meta is used without the Source.
	fx := fixtures(t)
	fx[0].meta.Summary = fx[0].src.sum
	prog, _ := Compile(parseKey(t, "FROM alice").Key, Options{})
	m := Message{Seq: 1, Meta: &fx[0].meta, Source: fx[0].src}
	if ok, err := prog.Match(ctx, &m); !ok || err != nil || fx[0].src.summaryCalls != 0 {
		t.Errorf("Meta.Summary: ok %v err %v calls %d", ok, err, fx[0].src.summaryCalls)
	}
	// HEADER reads the header section only.
	fx = fixtures(t)
	prog, _ = Compile(parseKey(t, "HEADER X-Nothing x").Key, Options{})
	m = Message{Seq: 3, Meta: &fx[2].meta, Source: fx[2].src}
	if _, err := prog.Match(ctx, &m); err != nil {
		t.Fatal(err)
	}
	if end, hdr := fx[2].src.body.maxEnd.Load(), fx[2].src.sum.Root.BodyStart; end > hdr {
		t.Errorf("HEADER read up to %d, header ends at %d", end, hdr)
	}
}

// TestStreamingStopsEarly checks that a body search streams and stops
// reading at the first match.
func TestStreamingStopsEarly(t *testing.T) {
	body := strings.Repeat("filler text line without the word\n", 150000) // ~5 MB
	raw := "From: a@b\nSubject: big\nContent-Type: text/plain\n\nneedle at the start\n" + body + "haystack end\n"
	src := newSource(t, raw)
	meta := store.Message{UID: 1, Size: src.body.Size()}
	for _, tc := range []struct {
		word     string
		want     bool
		maxBytes int64
	}{
		{"needle", true, 256 << 10},
		{"haystack", true, src.body.Size() + 1},
		{"absent", false, src.body.Size() + 1},
	} {
		src.body.read.Store(0)
		prog, err := Compile(imap.SearchKey{Op: imap.SearchBody, Text: tc.word}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		m := Message{Seq: 1, Meta: &meta, Source: src}
		ok, err := prog.Match(context.Background(), &m)
		if err != nil || ok != tc.want {
			t.Fatalf("BODY %s: %v %v", tc.word, ok, err)
		}
		if n := src.body.read.Load(); n > tc.maxBytes {
			t.Errorf("BODY %s read %d bytes, want at most %d", tc.word, n, tc.maxBytes)
		}
	}
}

func TestMatchErrors(t *testing.T) {
	fx := fixtures(t)
	ctx := context.Background()
	// A read error is reported, not taken for "no match".
	fx[0].src.body.failRead = true
	prog, _ := Compile(parseKey(t, "BODY good").Key, Options{})
	m := Message{Seq: 1, Meta: &fx[0].meta, Source: fx[0].src}
	if _, err := prog.Match(ctx, &m); err == nil {
		t.Error("read failure not reported")
	}
	// NOT of an error is an error too.
	prog, _ = Compile(parseKey(t, "NOT BODY good").Key, Options{})
	if ok, err := prog.Match(ctx, &m); err == nil || ok {
		t.Errorf("NOT BODY with read failure: %v %v", ok, err)
	}
	// No source at all.
	prog, _ = Compile(parseKey(t, "FROM x").Key, Options{})
	m = Message{Seq: 1, Meta: &fx[1].meta}
	if _, err := prog.Match(ctx, &m); err == nil {
		t.Error("missing source not reported")
	}
	// A cancelled context stops a body search.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	prog, _ = Compile(parseKey(t, "BODY x").Key, Options{})
	m = Message{Seq: 2, Meta: &fx[1].meta, Source: fx[1].src}
	if _, err := prog.Match(cctx, &m); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// Malformed trees from code (not the parser) are refused.
	for _, k := range []imap.SearchKey{{}, {Op: imap.SearchOr, Keys: []imap.SearchKey{{Op: imap.SearchAll}}}, {Op: imap.SearchNot}} {
		if _, err := Compile(k, Options{}); err == nil {
			t.Errorf("Compile(%+v) succeeded", k)
		}
	}
}

// TestFlagsOnlyNoAlloc checks that flag and metadata searches allocate
// nothing per message.
func TestFlagsOnlyNoAlloc(t *testing.T) {
	fx := fixtures(t)
	ctx := context.Background()
	for _, program := range []string{
		"UNSEEN",
		"OR FLAGGED KEYWORD $work NOT DELETED",
		"UID 1:15 SINCE 1-Jan-2020 LARGER 10 MODSEQ 2",
		"1:3,$ YOUNGER 1000 SAVEDBEFORE 1-Jan-2030 NEW",
	} {
		prog, err := Compile(parseKey(t, program).Key, Options{NumMessages: 5, MaxUID: 21, Saved: mail.NewUIDSet(3), Location: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		var m Message
		allocs := testing.AllocsPerRun(200, func() {
			for i, f := range fx {
				m = Message{Seq: uint32(i + 1), Meta: &f.meta, Recent: f.recent}
				if _, err := prog.Match(ctx, &m); err != nil {
					t.Fatal(err)
				}
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per run", program, allocs)
		}
	}
}

func TestHasModSeq(t *testing.T) {
	for program, want := range map[string]bool{"MODSEQ 5": true, "OR SEEN NOT MODSEQ 1": true, "SEEN": false} {
		prog, err := Compile(parseKey(t, program).Key, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if prog.HasModSeq() != want {
			t.Errorf("%s: HasModSeq = %v", program, !want)
		}
	}
}
