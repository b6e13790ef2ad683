package imapsearch

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
)

// sortedBy returns the UIDs of items in the order of (SortKey, UID).
func sortedBy(items []Item, criteria []imap.SortCriterion) []mail.UID {
	type kv struct {
		key string
		uid mail.UID
	}
	kvs := make([]kv, len(items))
	for i := range items {
		kvs[i] = kv{SortKey(&items[i], criteria), items[i].UID}
	}
	slices.SortFunc(kvs, func(a, b kv) int {
		return compareEntries(orderedEntry(a), orderedEntry(b))
	})
	out := make([]mail.UID, len(kvs))
	for i, x := range kvs {
		out[i] = x.uid
	}
	return out
}

func uidsOf(items []Item) []mail.UID {
	out := make([]mail.UID, len(items))
	for i, it := range items {
		out[i] = it.UID
	}
	return out
}

// TestSortKeyOrder checks that ordering by SortKey (then UID) is the
// order of Sort, for every criterion, reversed or not, on the fixtures.
func TestSortKeyOrder(t *testing.T) {
	items := append(sortFixtures(t),
		// Equal on most keys; a subject with NUL and one that is a
		// prefix of another.
		item(t, 6, "2024-01-04T10:00:00Z", 200, "Subject: apple", "From: bea@example.org"),
		item(t, 7, "2024-01-04T10:00:00Z", 200, "Subject: apple"),
		item(t, 8, "", 0),
	)
	items[7].Summary.Root.Envelope.Subject = "app\x00le"
	for _, spec := range []string{
		"ARRIVAL", "REVERSE ARRIVAL", "SIZE", "REVERSE SIZE", "DATE", "REVERSE DATE",
		"SUBJECT", "REVERSE SUBJECT", "FROM", "REVERSE FROM", "TO", "CC", "REVERSE CC",
		"DISPLAYFROM", "REVERSE DISPLAYTO", "SIZE SUBJECT", "REVERSE SIZE REVERSE SUBJECT",
		"SUBJECT REVERSE DATE", "FROM REVERSE ARRIVAL SIZE",
	} {
		c := crit(spec)
		want := slices.Clone(items)
		Sort(want, c)
		if got := sortedBy(items, c); !slices.Equal(got, uidsOf(want)) {
			t.Errorf("%s: by key %v, Sort %v", spec, got, uidsOf(want))
		}
	}
}

// randomItems returns n items with values from small domains, so that
// ties, prefixes and NUL bytes are common.
func randomItems(rng *rand.Rand, n int, firstUID mail.UID) []Item {
	words := []string{"", "a", "ab", "a\x00", "a\x00b", "B", "b", "ÄPFEL", "äpfel", "zz", "\x00"}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]Item, n)
	for i := range out {
		env := &message.Envelope{Subject: words[rng.IntN(len(words))]}
		if rng.IntN(3) > 0 {
			env.From = []message.Address{{Name: words[rng.IntN(len(words))], Mailbox: words[rng.IntN(len(words))], Host: "x"}}
		}
		sum := &message.Summary{}
		sum.Root.Envelope = env
		if rng.IntN(2) == 0 {
			sum.Date = base.Add(time.Duration(rng.IntN(4)-2) * time.Hour)
		}
		uid := firstUID + mail.UID(i)
		out[i] = Item{Seq: uint32(uid), UID: uid, InternalDate: base.Add(time.Duration(rng.IntN(3)) * time.Hour),
			Size: int64(rng.IntN(3) - 1), Summary: sum}
	}
	return out
}

var randomCriteria = []string{
	"SUBJECT", "REVERSE SUBJECT", "SIZE REVERSE SUBJECT", "REVERSE DATE FROM", "DISPLAYFROM ARRIVAL",
	"REVERSE ARRIVAL REVERSE SIZE REVERSE FROM", "FROM SUBJECT SIZE DATE",
}

func TestSortKeyOrderRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		items := randomItems(rng, 1+rng.IntN(30), 1)
		c := crit(randomCriteria[round%len(randomCriteria)])
		want := slices.Clone(items)
		Sort(want, c)
		if got := sortedBy(items, c); !slices.Equal(got, uidsOf(want)) {
			t.Fatalf("round %d %v: by key %v, Sort %v", round, c, got, uidsOf(want))
		}
	}
}

// clientList applies an update to the result list a client keeps, as RFC
// 5267 §4.3.3 and §4.3.4 describe: the runs in order, positions 1-based;
// position 0 inserts in UID order and removes wherever found.
func clientList(t testing.TB, list []mail.UID, u *Update) []mail.UID {
	t.Helper()
	for _, r := range u.Remove {
		if r.Pos == 0 {
			list = slices.DeleteFunc(list, func(x mail.UID) bool { return slices.Contains(r.UIDs, x) })
			continue
		}
		i := int(r.Pos) - 1
		if i+len(r.UIDs) > len(list) || !slices.Equal(list[i:i+len(r.UIDs)], r.UIDs) {
			t.Fatalf("REMOVEFROM (%d %v) does not match the list %v", r.Pos, r.UIDs, list)
		}
		list = slices.Delete(list, i, i+len(r.UIDs))
	}
	for _, r := range u.Add {
		if r.Pos == 0 {
			list = append(list, r.UIDs...)
			slices.Sort(list)
			continue
		}
		i := int(r.Pos) - 1
		if i > len(list) {
			t.Fatalf("ADDTO (%d %v) beyond the list %v", r.Pos, r.UIDs, list)
		}
		list = slices.Insert(list, i, r.UIDs...)
	}
	return list
}

// TestOrderedResult changes a SORT result at random and checks that a
// client applying the runs ends with the result in sort order, and that
// the result is what sorting its members again gives.
func TestOrderedResult(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 60; round++ {
		c := crit(randomCriteria[round%len(randomCriteria)])
		pool := randomItems(rng, 60, 1) // the mailbox
		var start []Item
		for _, it := range pool {
			if rng.IntN(2) == 0 {
				start = append(start, it)
			}
		}
		r := NewOrderedResult(c, start)
		client := sortedBy(start, c)
		if !slices.Equal(r.UIDs(), client) {
			t.Fatalf("initial: %v, want %v", r.UIDs(), client)
		}
		for step := 0; step < 20; step++ {
			// Remove a random subset (members or not), then add a
			// random subset of the non-members: small and large
			// batches, so both ways of inserting run.
			var rm mail.UIDSet
			for range rng.IntN(6) {
				rm = rm.Append(mail.UID(1 + rng.IntN(len(pool))))
			}
			var add []Item
			limit := 1 + rng.IntN(3)
			if step%4 == 0 {
				limit = 30
			}
			for _, it := range pool {
				if !r.Contains(it.UID) && !rm.Contains(it.UID) && len(add) < limit && rng.IntN(3) == 0 {
					add = append(add, it)
				}
			}
			u := &Update{Remove: r.Remove(rm)}
			u.Add = r.Insert(add)
			client = clientList(t, client, u)
			if !slices.Equal(r.UIDs(), client) {
				t.Fatalf("round %d step %d: result %v, client %v (update %+v)", round, step, r.UIDs(), client, u)
			}
			var members []Item
			for _, it := range pool {
				if r.Contains(it.UID) {
					members = append(members, it)
				}
			}
			if want := sortedBy(members, c); !slices.Equal(r.UIDs(), want) {
				t.Fatalf("round %d step %d: result %v, sorted members %v", round, step, r.UIDs(), want)
			}
			if r.Len() != len(members) || r.Members().Len() != len(members) {
				t.Fatalf("len %d, members %d, want %d", r.Len(), r.Members().Len(), len(members))
			}
		}
	}
}

// TestOrderedResultRuns checks the positions of the RFC 5267 §4.3.3
// example: results 2734:2735, then 2731:2733 sort first; one run at 1.
func TestOrderedResultRuns(t *testing.T) {
	mk := func(uids ...mail.UID) []Item {
		var out []Item
		for _, u := range uids {
			out = append(out, Item{UID: u, Seq: uint32(u), Size: int64(u)})
		}
		return out
	}
	c := crit("SIZE")
	r := NewOrderedResult(c, mk(2734, 2735))
	if got := r.Insert(mk(2733, 2731, 2732)); !equalRuns(got, []Run{{1, []mail.UID{2731, 2732, 2733}}}) {
		t.Fatalf("insert: %+v", got)
	}
	if got := r.Insert(mk(2740, 2736)); !equalRuns(got, []Run{{6, []mail.UID{2736, 2740}}}) {
		t.Fatalf("insert at the end: %+v", got)
	}
	// Removing 2732:2733 and 2736: positions after the runs before.
	if got := r.Remove(mail.NewUIDSet(2732, 2733, 2736, 9999)); !equalRuns(got, []Run{{2, []mail.UID{2732, 2733}}, {4, []mail.UID{2736}}}) {
		t.Fatalf("remove: %+v", got)
	}
	if got := r.UIDs(); !slices.Equal(got, []mail.UID{2731, 2734, 2735, 2740}) {
		t.Fatalf("left %v", got)
	}
	if r.Remove(mail.NewUIDSet(1)) != nil || r.Insert(nil) != nil {
		t.Fatal("no-op changes returned runs")
	}
	// Reverse order: ranges in the sequence set only where ascending.
	r = NewOrderedResult(crit("REVERSE SIZE"), mk(10))
	if got := r.Insert(mk(11, 12, 13, 5)); !equalRuns(got, []Run{{1, []mail.UID{13, 12, 11}}, {5, []mail.UID{5}}}) {
		t.Fatalf("reverse insert: %+v", got)
	}
}

func equalRuns(a, b []Run) bool {
	return slices.EqualFunc(a, b, func(x, y Run) bool { return x.Pos == y.Pos && slices.Equal(x.UIDs, y.UIDs) })
}

func TestUpdateWrite(t *testing.T) {
	seqOf := func(u mail.UID) uint32 { return uint32(u) - 100 }
	tests := []struct {
		u    Update
		num  func(mail.UID) uint32
		want string
	}{
		// RFC 5267 §4.3.3 and §4.3.4 examples.
		{Update{Add: []Run{{0, []mail.UID{32768, 32769}}}}, nil, `* ESEARCH (TAG "B01") UID ADDTO (0 32768:32769)`},
		{Update{Remove: []Run{{0, []mail.UID{32768}}}}, nil, `* ESEARCH (TAG "B01") UID REMOVEFROM (0 32768)`},
		{Update{Add: []Run{{1, []mail.UID{2731, 2732, 2733}}}}, nil, `* ESEARCH (TAG "B01") UID ADDTO (1 2731:2733)`},
		// Several runs, both items, sort order, sequence numbers, MODSEQ.
		{Update{Remove: []Run{{2, []mail.UID{105, 104}}, {4, []mail.UID{107}}}, Add: []Run{{1, []mail.UID{109, 110, 111}}}, ModSeq: 42}, seqOf,
			`* ESEARCH (TAG "B01") REMOVEFROM (2 5,4 4 7) ADDTO (1 9:11) MODSEQ 42`},
		{Update{}, nil, ``},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		enc := imap.NewEncoder(w)
		if err := tc.u.Write(enc, "B01", tc.num); err != nil {
			t.Fatal(err)
		}
		enc.Flush()
		if got := strings.TrimSuffix(b.String(), "\r\n"); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	if runs := SearchRuns(mail.NewUIDSet(3, 4, 9)); !equalRuns(runs, []Run{{0, []mail.UID{3, 4, 9}}}) || SearchRuns(nil) != nil {
		t.Fatalf("SearchRuns: %+v", runs)
	}
}

func TestProgramDependencies(t *testing.T) {
	tests := []struct {
		program          string
		positional, time bool
	}{
		{"ALL", false, false},
		{"UNSEEN FROM x BODY y", false, false},
		{"UID 1:5", false, false},
		{"UID 5:*", true, false},
		{"1:3", true, false},
		{"NOT 2", true, false},
		{"$", false, false},
		{"$ UNSEEN", false, false},
		{"OR SEEN 4:*", true, false},
		{"UID $", false, false},
		{"YOUNGER 60", false, true},
		{"NOT OLDER 60 1", true, true},
	}
	for _, tc := range tests {
		s := parseKey(t, tc.program)
		p, err := Compile(s.Key, Options{NumMessages: 5, MaxUID: 9})
		if err != nil {
			t.Fatal(err)
		}
		if p.DependsOnPositions() != tc.positional || p.DependsOnTime() != tc.time {
			t.Errorf("%s: positions %v, time %v", tc.program, p.DependsOnPositions(), p.DependsOnTime())
		}
	}
}

// TestReleaseBuffers: a kept program gives its body scan buffer back and
// still matches afterwards.
func TestReleaseBuffers(t *testing.T) {
	s := parseKey(t, "BODY e")
	p, err := Compile(s.Key, Options{NumMessages: 5, MaxUID: 21})
	if err != nil {
		t.Fatal(err)
	}
	first := run(t, p, fixtures(t))
	if p.buf == nil {
		t.Fatal("no scan buffer after a body search")
	}
	p.ReleaseBuffers()
	if p.buf != nil {
		t.Fatal("buffer kept")
	}
	if again := run(t, p, fixtures(t)); !slices.Equal(first, again) || len(first) == 0 {
		t.Fatalf("matches %v, then %v", first, again)
	}
}
