package mail

import (
	"slices"
	"testing"
)

// naive is a reference set for checking UIDSet operations.
type naive map[UID]bool

func (n naive) set() UIDSet {
	var uids []UID
	for u := range n {
		uids = append(uids, u)
	}
	return NewUIDSet(uids...)
}

func fromSet(s UIDSet) naive {
	n := naive{}
	for _, u := range s.UIDs() {
		n[u] = true
	}
	return n
}

func TestUIDSetOps(t *testing.T) {
	a := UIDSet{{1, 5}, {8, 8}, {10, 20}}
	b := UIDSet{{3, 9}, {15, 25}}
	if got := a.Union(b).String(); got != "1:25" {
		t.Errorf("union %s", got)
	}
	if got := a.Intersect(b).String(); got != "3:5,8,15:20" {
		t.Errorf("intersect %s", got)
	}
	if got := a.Diff(b).String(); got != "1:2,10:14" {
		t.Errorf("diff %s", got)
	}
	if got := b.Diff(a).String(); got != "6:7,9,21:25" {
		t.Errorf("diff %s", got)
	}
	if a.Len() != 17 || a.Min() != 1 || a.Max() != 20 {
		t.Errorf("len %d min %d max %d", a.Len(), a.Min(), a.Max())
	}
	for u, want := range map[UID]bool{1: true, 5: true, 6: false, 8: true, 9: false, 20: true, 21: false, 0: false} {
		if a.Contains(u) != want {
			t.Errorf("Contains(%d) = %v", u, !want)
		}
	}
	if got := (UIDSet{{5, 3}, {1, 1}, {2, 2}, {MaxUID, MaxUID}}).Normalize().String(); got != "1:5,4294967295" {
		t.Errorf("normalize %s", got)
	}
	if got := NewUIDSet(7, 3, 4, 3, 5, 9).String(); got != "3:5,7,9" {
		t.Errorf("NewUIDSet %s", got)
	}
	var s UIDSet
	for _, u := range []UID{1, 2, 3, 10, 5, 4} {
		s = s.Append(u)
	}
	if s.String() != "1:5,10" {
		t.Errorf("Append %s", s)
	}
	p, err := ParseUIDSet("3:1,7,9:12")
	if err != nil || p.String() != "1:3,7,9:12" {
		t.Errorf("parse %s %v", p, err)
	}
	for _, bad := range []string{"0", "a", "1:", ",", "4294967296", "1,,2"} {
		if _, err := ParseUIDSet(bad); err == nil {
			t.Errorf("ParseUIDSet(%q) accepted", bad)
		}
	}
	// The full range ends at MaxUID without overflowing.
	if n := (UIDSet{{MaxUID - 2, MaxUID}}).UIDs(); len(n) != 3 {
		t.Errorf("UIDs at the top: %v", n)
	}
}

func FuzzUIDSet(f *testing.F) {
	f.Add([]byte{1, 5, 3, 9, 200, 1}, []byte{2, 2, 7, 4})
	f.Fuzz(func(t *testing.T, xa, xb []byte) {
		mk := func(x []byte) UIDSet {
			var s UIDSet
			for i := 0; i+1 < len(x); i += 2 {
				lo := UID(x[i]) + 1
				s = append(s, UIDRange{lo, lo + UID(x[i+1]%8)})
			}
			return s.Normalize()
		}
		a, b := mk(xa), mk(xb)
		na, nb := fromSet(a), fromSet(b)
		union, inter, diff := naive{}, naive{}, naive{}
		for u := range na {
			union[u] = true
			if nb[u] {
				inter[u] = true
			} else {
				diff[u] = true
			}
		}
		for u := range nb {
			union[u] = true
		}
		for name, c := range map[string][2]UIDSet{
			"union": {a.Union(b), union.set()}, "intersect": {a.Intersect(b), inter.set()}, "diff": {a.Diff(b), diff.set()},
		} {
			if !slices.Equal(c[0], c[1]) {
				t.Fatalf("%s of %s and %s: %s, want %s", name, a, b, c[0], c[1])
			}
		}
		back, err := ParseUIDSet(a.String())
		if err != nil || !slices.Equal(back, a) {
			t.Fatalf("round trip of %s: %s %v", a, back, err)
		}
	})
}

func TestFlags(t *testing.T) {
	f := NewFlags(`\seen`, "$Label", `\SEEN`, "$label", `\Deleted`)
	if len(f) != 3 || !f.Has(`\Seen`) || !f.Has("$LABEL") || f[0] != "$Label" {
		t.Fatalf("flags %v", f)
	}
	bits, kw := f.Bits()
	if bits != Bit(FlagSeen)|Bit(FlagDeleted) || !slices.Equal(kw, []string{"$Label"}) {
		t.Fatalf("bits %b kw %v", bits, kw)
	}
	if back := FlagsFromBits(bits, kw); !back.Equal(f) {
		t.Fatalf("round trip %v", back)
	}
	g := f.Without(`\SEEN`).With(`\Flagged`)
	if g.Has(FlagSeen) || !g.Has(FlagFlagged) || !f.Has(FlagSeen) {
		t.Fatal("With/Without changed the receiver or did not apply")
	}
	if !f.Union(NewFlags("x")).Minus(NewFlags("X")).Equal(f) {
		t.Fatal("union/minus")
	}
	for kw, ok := range map[string]bool{"$Junk": true, "a]b": false, "": false, "a b": false, `\x`: false, "ü": false} {
		if ValidKeyword(kw) != ok {
			t.Errorf("ValidKeyword(%q) = %v", kw, !ok)
		}
	}
	if IsSystemFlag(`\Recent`) || !IsSystemFlag(`\draft`) {
		t.Error("IsSystemFlag")
	}
}

func TestAddress(t *testing.T) {
	a, err := ParseAddress("Alice+lists@Example.org")
	if err != nil || a.Local != "Alice+lists" || a.Domain != "Example.org" {
		t.Fatalf("%+v %v", a, err)
	}
	if a.Key() != "alice+lists@example.org" || a.WithoutDetail().String() != "Alice@Example.org" {
		t.Fatalf("key %q base %q", a.Key(), a.WithoutDetail())
	}
	b, _ := ParseAddress("alice+LISTS@example.ORG")
	if !a.Equal(b) {
		t.Fatal("Equal is case-sensitive")
	}
	for _, bad := range []string{"", "alice", "@example.org", "alice@", "a b@example.org", "a@exa mple.org", "a@.example.org", "a@example..org", "<a@b>"} {
		if _, err := ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) accepted", bad)
		}
	}
}
