package imapsearch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
)

// tmsg describes a message for threading tests.
type tmsg struct {
	id, subject, date string
	refs, inReplyTo   string
}

func threadItems(t testing.TB, msgs []tmsg) []Item {
	t.Helper()
	items := make([]Item, len(msgs))
	for i, m := range msgs {
		var h []string
		if m.id != "" {
			h = append(h, "Message-ID: "+m.id)
		}
		if m.subject != "" {
			h = append(h, "Subject: "+m.subject)
		}
		if m.date != "" {
			h = append(h, "Date: "+m.date)
		}
		if m.refs != "" {
			h = append(h, "References: "+m.refs)
		}
		if m.inReplyTo != "" {
			h = append(h, "In-Reply-To: "+m.inReplyTo)
		}
		h = append(h, "From: x@example.org")
		items[i] = item(t, uint32(i+1), fmt.Sprintf("2024-01-01T00:%02d:00Z", i%60), 10, h...)
	}
	return items
}

func threadString(t testing.TB, items []Item, alg string, uid bool) string {
	t.Helper()
	threads, err := BuildThreads(items, alg)
	if err != nil {
		t.Fatal(err)
	}
	out := string(AppendThreads(nil, threads, uid))
	if err := checkThreadSyntax(out, len(items), uid, items); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	// The same with the keys kept by the caller (Item.Keys).
	withKeys := withKeys(items)
	threads, err = BuildThreads(withKeys, alg)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(AppendThreads(nil, threads, uid)); got != out {
		t.Errorf("with Item.Keys: %s, without: %s", got, out)
	}
	return out
}

// withKeys returns a copy of items with their Keys set.
func withKeys(items []Item) []Item {
	out := slices.Clone(items)
	for i := range out {
		out[i].Keys = NewKeys(out[i].Summary)
	}
	return out
}

// checkThreadSyntax parses thread-data (RFC 5256 §5) and checks that every
// item appears exactly once.
func checkThreadSyntax(s string, n int, uid bool, items []Item) error {
	seen := map[uint64]int{}
	p := 0
	var list func() error
	var members func() error
	lists := func(min int) error {
		k := 0
		for p < len(s) && s[p] == '(' {
			if err := list(); err != nil {
				return err
			}
			k++
		}
		if k < min {
			return fmt.Errorf("at %d: %d thread-lists, want at least %d", p, k, min)
		}
		return nil
	}
	list = func() error {
		if p >= len(s) || s[p] != '(' {
			return fmt.Errorf("at %d: want (", p)
		}
		p++
		if p < len(s) && s[p] == '(' {
			if err := lists(2); err != nil {
				return err
			}
		} else if err := members(); err != nil {
			return err
		}
		if p >= len(s) || s[p] != ')' {
			return fmt.Errorf("at %d: want )", p)
		}
		p++
		return nil
	}
	members = func() error {
		for {
			q := p
			for p < len(s) && s[p] >= '0' && s[p] <= '9' {
				p++
			}
			v, err := strconv.ParseUint(s[q:p], 10, 32)
			if err != nil || v == 0 || s[q] == '0' {
				return fmt.Errorf("at %d: bad number %q", q, s[q:p])
			}
			seen[v]++
			if p < len(s) && s[p] == ' ' {
				p++
				if p < len(s) && s[p] == '(' {
					return lists(2)
				}
				continue
			}
			return nil
		}
	}
	if err := lists(0); err != nil {
		return err
	}
	if p != len(s) {
		return fmt.Errorf("trailing data at %d", p)
	}
	for _, it := range items {
		v := uint64(it.Seq)
		if uid {
			v = uint64(it.UID)
		}
		if seen[v] != 1 {
			return fmt.Errorf("message %d appears %d times", v, seen[v])
		}
		delete(seen, v)
	}
	if len(seen) > 0 {
		return fmt.Errorf("unknown numbers %v", seen)
	}
	_ = n
	return nil
}

func TestThreadReferences(t *testing.T) {
	d := func(day, hour int) string { return fmt.Sprintf("%d Jan 2024 %02d:00:00 +0000", day, hour) }
	tests := []struct {
		name string
		msgs []tmsg
		want string
	}{
		{"chain", []tmsg{
			{id: "<a@x>", subject: "topic", date: d(1, 1)},
			{id: "<b@x>", subject: "Re: topic", date: d(1, 2), refs: "<a@x>"},
			{id: "<c@x>", subject: "Re: topic", date: d(1, 3), refs: "<a@x> <b@x>"},
		}, "(1 2 3)"},
		{"siblings by date", []tmsg{
			{id: "<a@x>", subject: "topic", date: d(1, 1)},
			{id: "<b@x>", subject: "Re: topic", date: d(1, 5), refs: "<a@x>"},
			{id: "<c@x>", subject: "Re: topic", date: d(1, 3), refs: "<a@x>"},
		}, "(1 (3)(2))"},
		{"in-reply-to when no references", []tmsg{
			{id: "<a@x>", subject: "one", date: d(1, 1)},
			{id: "<b@x>", subject: "two", date: d(1, 2), inReplyTo: "<a@x> (sent by x)"},
		}, "(1 2)"},
		{"missing parent with two children keeps a dummy", []tmsg{
			{id: "<b@x>", subject: "Re: lost", date: d(1, 2), refs: "<gone@x>"},
			{id: "<c@x>", subject: "Re: lost", date: d(1, 3), refs: "<gone@x>"},
			{id: "<z@x>", subject: "other", date: d(1, 1)},
		}, "(3)((1)(2))"},
		{"missing parent with one child is dropped", []tmsg{
			{id: "<b@x>", subject: "Re: lost", date: d(1, 2), refs: "<gone@x>"},
		}, "(1)"},
		{"dummy below the top is spliced", []tmsg{
			{id: "<a@x>", subject: "top", date: d(1, 1)},
			{id: "<c@x>", subject: "Re: top", date: d(1, 3), refs: "<a@x> <gone@x>"},
			{id: "<d@x>", subject: "Re: top", date: d(1, 4), refs: "<a@x> <gone@x>"},
		}, "(1 (2)(3))"},
		{"loop between two messages", []tmsg{
			{id: "<a@x>", subject: "x1", date: d(1, 1), refs: "<b@x>"},
			{id: "<b@x>", subject: "x2", date: d(1, 2), refs: "<a@x>"},
		}, "(2 1)"},
		{"self reference", []tmsg{
			{id: "<a@x>", subject: "me", date: d(1, 1), refs: "<a@x>"},
		}, "(1)"},
		{"duplicate message id: the first keeps it", []tmsg{
			{id: "<a@x>", subject: "first", date: d(1, 1)},
			{id: "<a@x>", subject: "second", date: d(1, 2)},
			{id: "<r@x>", subject: "Re: first", date: d(1, 3), refs: "<a@x>"},
		}, "(1 3)(2)"},
		{"quoted local part is the same id", []tmsg{
			{id: `<"01KF8JCEOCBS0045PS"@xxx.yyy.com>`, subject: "q", date: d(1, 1)},
			{id: "<b@x>", subject: "Re: q", date: d(1, 2), refs: "<01KF8JCEOCBS0045PS@xxx.yyy.com>"},
		}, "(1 2)"},
		{"truncated references are corrected", []tmsg{
			// 3 says b is its parent via a truncated list; 2 then says
			// b's parent is a.
			{id: "<a@x>", subject: "s", date: d(1, 1)},
			{id: "<c@x>", subject: "Re: s", date: d(1, 3), refs: "<b@x> <c-parent@x>"},
			{id: "<b@x>", subject: "Re: s", date: d(1, 2), refs: "<a@x>"},
		}, "(1 3 2)"},
		{"subject merge: reply under original", []tmsg{
			{id: "<a@x>", subject: "Party", date: d(1, 1)},
			{id: "<b@x>", subject: "Re: party", date: d(1, 2)},
		}, "(1 2)"},
		{"subject merge: two originals under a dummy", []tmsg{
			{id: "<a@x>", subject: "Party", date: d(1, 1)},
			{id: "<b@x>", subject: "party", date: d(1, 2)},
		}, "((1)(2))"},
		{"subject merge: original replaces reply in table", []tmsg{
			{id: "<b@x>", subject: "Re: party", date: d(1, 1)},
			{id: "<a@x>", subject: "Party", date: d(1, 2)},
		}, "(2 1)"},
		{"subject merge: into an existing dummy", []tmsg{
			{id: "<b@x>", subject: "Re: news", date: d(1, 2), refs: "<gone@x>"},
			{id: "<c@x>", subject: "Re: news", date: d(1, 3), refs: "<gone@x>"},
			{id: "<e@x>", subject: "news", date: d(1, 4)},
		}, "((1)(2)(3))"},
		{"empty subjects are not merged", []tmsg{
			{id: "<a@x>", date: d(1, 1)},
			{id: "<b@x>", date: d(1, 2)},
		}, "(1)(2)"},
		{"no message ids at all", []tmsg{
			{subject: "a", date: d(1, 2)},
			{subject: "b", date: d(1, 1)},
		}, "(2)(1)"},
		{"missing date sorts by internal date", []tmsg{
			{id: "<a@x>", subject: "late", date: d(9, 1)},
			{id: "<b@x>", subject: "undated"},
		}, "(2)(1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := threadString(t, threadItems(t, tc.msgs), ThreadReferences, false)
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestThreadOrderedSubject(t *testing.T) {
	d := func(h int) string { return fmt.Sprintf("1 Jan 2024 %02d:00:00 +0000", h) }
	msgs := []tmsg{
		{subject: "beta", date: d(5)},
		{subject: "Re: alpha", date: d(3)},
		{subject: "alpha", date: d(2)},
		{subject: "[list] Re: ALPHA", date: d(4)},
		{subject: "gamma", date: d(1)},
		{subject: "Re: beta", date: d(6)},
		{subject: "alpha", date: d(7)},
	}
	got := threadString(t, threadItems(t, msgs), ThreadOrderedSubject, false)
	// gamma (1h) first; alpha thread rooted at 3 (2h) with 2, 4, 7 below
	// it by date; beta rooted at 1 with one child, written in line.
	if want := "(5)(3 (2)(4)(7))(1 6)"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// UIDs instead of sequence numbers.
	if got := threadString(t, threadItems(t, msgs[:2]), "orderedsubject", true); got != "(102)(101)" {
		t.Errorf("UID: got %s", got)
	}
}

func TestThreadErrorsAndEdges(t *testing.T) {
	if _, err := BuildThreads(nil, "X-UNKNOWN"); !errors.Is(err, ErrUnknownAlgorithm) {
		t.Errorf("err = %v", err)
	}
	for _, alg := range []string{ThreadReferences, ThreadOrderedSubject} {
		threads, err := BuildThreads(nil, alg)
		if err != nil || len(threads) != 0 {
			t.Errorf("%s of nothing: %v %v", alg, threads, err)
		}
	}
	// Items without summaries still each appear once.
	items := []Item{{Seq: 1, UID: 5}, {Seq: 2, UID: 6}}
	for _, alg := range []string{ThreadReferences, ThreadOrderedSubject} {
		threadString(t, items, alg, true)
	}
}

func TestAppendThreadsNormalizes(t *testing.T) {
	m := func(n uint32, kids ...*Thread) *Thread {
		return &Thread{Seq: n, UID: mail.UID(100 + n), Children: kids}
	}
	dummy := func(kids ...*Thread) *Thread { return &Thread{Children: kids} }
	tests := []struct {
		in   []*Thread
		want string
	}{
		{[]*Thread{m(2), m(3, m(6, m(4, m(23)), m(44, m(7, m(96)))))}, "(2)(3 6 (4 23)(44 7 96))"},
		{[]*Thread{dummy(m(3), m(5))}, "((3)(5))"},
		{[]*Thread{dummy(m(3))}, "(3)"},
		{[]*Thread{dummy()}, ""},
		{[]*Thread{m(1, dummy(m(2), m(3)))}, "(1 (2)(3))"},
		{[]*Thread{m(1, dummy(m(2)))}, "(1 2)"},
		{[]*Thread{m(1, dummy(dummy(m(2), m(3)), m(4)))}, "(1 (2)(3)(4))"},
		{nil, ""},
	}
	for _, tc := range tests {
		if got := string(AppendThreads(nil, tc.in, false)); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestWriteThread(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	enc := imap.NewEncoder(w)
	if err := WriteThread(enc, nil, false); err != nil {
		t.Fatal(err)
	}
	m := &Thread{Seq: 3, UID: 30, Children: []*Thread{{Seq: 6, UID: 60}, {Seq: 4, UID: 40}}}
	if err := WriteThread(enc, []*Thread{{Seq: 2, UID: 20}, m}, true); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "* THREAD\r\n* THREAD (20)(30 (60)(40))\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// FuzzThread builds random reference graphs (ids from a small pool, so
// there are duplicates, cycles and missing parents) and checks that
// threading terminates, never panics, and lists every message once in
// valid THREAD syntax.
func FuzzThread(f *testing.F) {
	f.Add([]byte{3, 1, 2, 0, 1, 2, 2, 1, 0, 0})
	f.Add([]byte{8, 0, 1, 1, 1, 0, 2, 2, 0, 1, 3, 3, 3, 2, 1, 0, 4, 4, 4, 4, 1, 5, 0, 5})
	f.Add([]byte("a loop of references: aabbccaabbcc"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		n := int(data[0])%40 + 1
		data = data[1:]
		next := func() int {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return int(b)
		}
		subjects := []string{"", "a", "Re: a", "b", "Fwd: b", "[x] a", "re: re: b (fwd)"}
		msgs := make([]tmsg, n)
		for i := range msgs {
			var m tmsg
			if v := next(); v%8 != 0 {
				m.id = fmt.Sprintf("<%d@x>", v%12)
			}
			m.subject = subjects[next()%len(subjects)]
			if v := next(); v%5 != 0 {
				m.date = fmt.Sprintf("%d Jan 2024 %02d:00:00 +0000", v%3+1, v%24)
			}
			var refs []string
			for k := next() % 6; k > 0; k-- {
				refs = append(refs, fmt.Sprintf("<%d@x>", next()%14))
			}
			m.refs = strings.Join(refs, " ")
			if v := next(); v%3 == 0 {
				m.inReplyTo = fmt.Sprintf("<%d@x>", v%14)
			}
			msgs[i] = m
		}
		items := threadItems(t, msgs)
		for _, alg := range []string{ThreadReferences, ThreadOrderedSubject} {
			threads, err := BuildThreads(items, alg)
			if err != nil {
				t.Fatal(err)
			}
			out := string(AppendThreads(nil, threads, false))
			if err := checkThreadSyntax(out, n, false, items); err != nil {
				t.Fatalf("%s: %s: %v", alg, out, err)
			}
		}
	})
}

// TestThreadRFCExample rebuilds the tree of the THREAD response example
// in RFC 5256 §4, "(2)(3 6 (4 23)(44 7 96))", from reference headers, with
// later messages (by sequence number) as parents of earlier ones.
func TestThreadRFCExample(t *testing.T) {
	type spec struct {
		seq  uint32
		id   string
		refs string
		hour int
	}
	specs := []spec{
		{2, "<two@x>", "", 1},
		{3, "<three@x>", "", 2},
		{4, "<four@x>", "<three@x> <six@x>", 4},
		{6, "<six@x>", "<three@x>", 3},
		{7, "<seven@x>", "<three@x> <six@x> <fortyfour@x>", 6},
		{23, "<twentythree@x>", "<three@x> <six@x> <four@x>", 7},
		{44, "<fortyfour@x>", "<three@x> <six@x>", 5},
		{96, "<ninetysix@x>", "<three@x> <six@x> <fortyfour@x> <seven@x>", 8},
	}
	var items []Item
	for _, s := range specs {
		h := []string{"Message-ID: " + s.id, "Subject: Re: example", fmt.Sprintf("Date: 1 Jan 2024 %02d:00:00 +0000", s.hour)}
		if s.refs != "" {
			h = append(h, "References: "+s.refs)
		} else {
			h[1] = "Subject: example " + s.id
		}
		items = append(items, item(t, s.seq, "2024-01-01T00:00:00Z", 1, h...))
	}
	if got := threadString(t, items, ThreadReferences, false); got != "(2)(3 6 (4 23)(44 7 96))" {
		t.Errorf("got %s", got)
	}
}
