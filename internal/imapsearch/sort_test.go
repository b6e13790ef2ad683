package imapsearch

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
)

// item builds an Item from header lines ("Subject: x", ...).
func item(t testing.TB, seq uint32, internal string, size int64, headers ...string) Item {
	t.Helper()
	raw := strings.Join(headers, "\r\n") + "\r\n\r\nbody\r\n"
	sum, err := message.Parse(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	it := Item{Seq: seq, UID: mail.UID(100 + seq), Size: size, Summary: sum}
	if internal != "" {
		it.InternalDate = date(internal)
	}
	return it
}

func seqs(items []Item) []uint32 {
	out := make([]uint32, len(items))
	for i, it := range items {
		out[i] = it.Seq
	}
	return out
}

func crit(spec string) []imap.SortCriterion {
	names := map[string]imap.SortKey{
		"ARRIVAL": imap.SortArrival, "CC": imap.SortCc, "DATE": imap.SortDate, "FROM": imap.SortFrom,
		"SIZE": imap.SortSize, "SUBJECT": imap.SortSubject, "TO": imap.SortTo,
		"DISPLAYFROM": imap.SortDisplayFrom, "DISPLAYTO": imap.SortDisplayTo,
	}
	var out []imap.SortCriterion
	rev := false
	for _, w := range strings.Fields(spec) {
		if w == "REVERSE" {
			rev = true
			continue
		}
		out = append(out, imap.SortCriterion{Key: names[w], Reverse: rev})
		rev = false
	}
	return out
}

func sortFixtures(t testing.TB) []Item {
	return []Item{
		item(t, 1, "2024-01-05T10:00:00Z", 500,
			"Subject: Re: [list] Fwd: Budget (fwd)", "From: Zoe <zoe@example.org>", "To: bob@example.net",
			"Date: Tue, 02 Jan 2024 10:00:00 +0000"),
		item(t, 2, "2024-01-01T10:00:00Z", 100,
			"Subject: budget", "From: =?UTF-8?Q?=C3=89mile?= <emile@example.org>", "To: alice@example.net", "Cc: x@y",
			"Date: Mon, 01 Jan 2024 12:00:00 +0100"),
		item(t, 3, "2024-01-03T10:00:00Z", 300,
			"Subject: [fwd: BUDGET]", "From: adam@example.org", "To: Carl <carl@example.net>",
			"Date: Mon, 01 Jan 2024 11:00:00 +0000"),
		item(t, 4, "2023-12-30T10:00:00Z", 300,
			"Subject: Apples", "From: \"Bea\" <Bea@example.org>"),
		item(t, 5, "2024-01-04T10:00:00Z", 200,
			"Subject: Re: apples", "From: bea@example.org", "To: Alice <ALICE@example.net>",
			"Date: Mon, 01 Jan 2024 11:00:00 +0000"),
	}
}

func TestSort(t *testing.T) {
	tests := []struct {
		criteria string
		want     []uint32
	}{
		{"ARRIVAL", []uint32{4, 2, 3, 5, 1}},
		{"REVERSE ARRIVAL", []uint32{1, 5, 3, 2, 4}},
		{"SIZE", []uint32{2, 5, 3, 4, 1}},
		// Equal sizes (3, 4) keep sequence order even when reversed.
		{"REVERSE SIZE", []uint32{1, 3, 4, 5, 2}},
		// DATE: message 4 has no Date header and sorts by its internal
		// date; 3 and 5 have the same date and keep sequence order;
		// message 2's +0100 makes it 11:00 UTC as well.
		{"DATE", []uint32{4, 2, 3, 5, 1}},
		// Base subjects: APPLES (4, 5) before BUDGET (1, 2, 3), all
		// variants of "budget" equal.
		{"SUBJECT", []uint32{4, 5, 1, 2, 3}},
		{"SUBJECT DATE", []uint32{4, 5, 2, 3, 1}},
		// 2 and 3 have equal dates: REVERSE does not reverse their
		// sequence order (RFC 5256 §3).
		{"SUBJECT REVERSE DATE", []uint32{5, 4, 1, 2, 3}},
		{"REVERSE SUBJECT", []uint32{1, 2, 3, 4, 5}},
		// FROM: mailbox of the first address, case-insensitive; 4 and 5
		// are both "bea".
		{"FROM", []uint32{3, 4, 5, 2, 1}},
		// TO: message 4 has none and sorts first; ALICE equals alice.
		{"TO", []uint32{4, 2, 5, 1, 3}},
		{"CC", []uint32{1, 3, 4, 5, 2}},
		// DISPLAYFROM: decoded display names, or the address.
		{"DISPLAYFROM", []uint32{3, 4, 5, 2, 1}},
		{"DISPLAYTO", []uint32{4, 5, 2, 1, 3}},
		{"SIZE SUBJECT", []uint32{2, 5, 4, 3, 1}},
	}
	for _, tc := range tests {
		items := sortFixtures(t)
		keyed := withKeys(items)
		Sort(items, crit(tc.criteria))
		if got := seqs(items); !slices.Equal(got, tc.want) {
			t.Errorf("SORT (%s): got %v, want %v", tc.criteria, got, tc.want)
		}
		Sort(keyed, crit(tc.criteria))
		if got := seqs(keyed); !slices.Equal(got, tc.want) {
			t.Errorf("SORT (%s) with Item.Keys: got %v, want %v", tc.criteria, got, tc.want)
		}
	}
}

func TestSortNeedsSummary(t *testing.T) {
	if SortNeedsSummary(crit("ARRIVAL REVERSE SIZE")) {
		t.Error("ARRIVAL SIZE needs no summary")
	}
	if !SortNeedsSummary(crit("SIZE DATE")) {
		t.Error("DATE needs the summary")
	}
	// Without summaries, ARRIVAL and SIZE still work.
	items := []Item{{Seq: 1, Size: 9}, {Seq: 2, Size: 3}, {Seq: 3, Size: 9}}
	Sort(items, crit("REVERSE SIZE"))
	if got := seqs(items); !slices.Equal(got, []uint32{1, 3, 2}) {
		t.Errorf("got %v", got)
	}
	// A nil summary sorts as empty strings and by internal date.
	items = []Item{{Seq: 1, InternalDate: time.Unix(5, 0)}, {Seq: 2, InternalDate: time.Unix(1, 0)}}
	Sort(items, crit("SUBJECT DATE"))
	if got := seqs(items); !slices.Equal(got, []uint32{2, 1}) {
		t.Errorf("got %v", got)
	}
}

func TestCollationKey(t *testing.T) {
	eq := [][2]string{{"abc", "ABC"}, {"Émile", "émile"}, {"straße", "STRAßE"}, {"Ǆ", "ǆ"}, {"\u212B", "å"}}
	for _, p := range eq {
		if collationKey(p[0]) != collationKey(p[1]) {
			t.Errorf("%q and %q collate differently", p[0], p[1])
		}
	}
	less := [][2]string{{"", "a"}, {"a", "b"}, {"apple", "Banana"}, {"b", "é"}}
	for _, p := range less {
		if !(collationKey(p[0]) < collationKey(p[1])) {
			t.Errorf("%q should sort before %q", p[0], p[1])
		}
	}
}

func TestBaseSubject(t *testing.T) {
	tests := []struct {
		in    string
		base  string
		reply bool
	}{
		{"Re: [list] Fwd: subject (fwd)", "subject", true},
		{"subject", "subject", false},
		{"[list] subject", "subject", false},
		{"[list]", "[list]", false},
		{"[a][b] [c]", "[c]", false},
		{"Re: Re:  RE:   re:\ttopic", "topic", true},
		{"Fw: topic", "topic", true},
		{"FWD: topic", "topic", true},
		{"Re [x]: topic", "topic", true},
		{"Re[2]: topic", "topic", true},
		{"[fwd: wrapped]", "wrapped", true},
		{"[Fwd: Re: [list] inner (fwd)]", "inner", true},
		{"topic (fwd) (fwd)", "topic", true},
		{"topic(fwd)", "topic", true},
		{"  spaced   out  ", "spaced out", false},
		{"Reply: not a prefix", "Reply: not a prefix", false},
		{"Re:", "", true},
		{"", "", false},
		{"[fwd: ]", "", true},
		{"Ré: x", "Ré: x", false},
	}
	for _, tc := range tests {
		base, reply := message.SubjectBase(tc.in)
		if base != tc.base || reply != tc.reply {
			t.Errorf("SubjectBase(%q) = %q, %v; want %q, %v", tc.in, base, reply, tc.base, tc.reply)
		}
		if mb := message.BaseSubject(tc.in); mb != base {
			t.Errorf("%q: message.BaseSubject gives %q, SubjectBase %q", tc.in, mb, base)
		}
	}
}

// FuzzBaseSubject: the base subject is what is left of the subject with
// its whitespace collapsed, never has outer spaces, and extracting it
// again changes nothing unless a blob or "[fwd:" wrapper was exposed.
func FuzzBaseSubject(f *testing.F) {
	for _, s := range []string{"Re: [list] Fwd: subject (fwd)", "[fwd: [a] b]", "re [x] : y", "[[]]", "Fw:Fwd:Re:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		base, reply := message.SubjectBase(s)
		if base != strings.Trim(base, " ") {
			t.Errorf("%q: base %q has outer spaces", s, base)
		}
		// RFC 5256 §2.1 (1): tabs, line breaks and runs of spaces
		// become one space.
		collapsed := strings.Join(strings.FieldsFunc(s, func(r rune) bool {
			return r == ' ' || r == '\t' || r == '\r' || r == '\n'
		}), " ")
		if !strings.Contains(collapsed, base) {
			t.Errorf("%q: base %q is not part of the subject", s, base)
		}
		if base == collapsed && reply {
			t.Errorf("%q: nothing removed, yet marked as a reply", s)
		}
	})
}
