package mail

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// UID is a message's unique identifier within one mailbox and one
// UIDVALIDITY (RFC 9051 §2.3.1.1). UIDs are strictly ascending and never
// reused; 0 is never a valid UID.
type UID uint32

// ModSeq is a per-mailbox modification sequence (RFC 7162 §3). Every change
// to a message or to a mailbox's set of messages gets a new, strictly larger
// ModSeq.
type ModSeq uint64

// MaxUID is the largest UID a mailbox can hand out.
const MaxUID = UID(^uint32(0))

// UIDRange is the closed interval [Lo, Hi]; Lo <= Hi.
type UIDRange struct {
	Lo, Hi UID
}

// UIDSet is a set of UIDs stored as sorted, non-overlapping, non-adjacent
// ranges. The zero value is the empty set. Methods that change the set keep
// it normalised; a UIDSet built by hand must be passed through Normalize.
type UIDSet []UIDRange

// NewUIDSet returns the set holding exactly uids (in any order, duplicates
// allowed).
func NewUIDSet(uids ...UID) UIDSet {
	if len(uids) == 0 {
		return nil
	}
	s := slices.Clone(uids)
	slices.Sort(s)
	var set UIDSet
	for _, u := range s {
		set = set.appendUID(u)
	}
	return set
}

// appendUID adds u, which must be >= every UID already in s.
func (s UIDSet) appendUID(u UID) UIDSet {
	if n := len(s); n > 0 {
		last := &s[n-1]
		if u <= last.Hi {
			return s
		}
		if u == last.Hi+1 {
			last.Hi = u
			return s
		}
	}
	return append(s, UIDRange{u, u})
}

// Append adds u to the set. It is O(1) when u is larger than every UID in
// the set, which is the common case when building a set in UID order.
func (s UIDSet) Append(u UID) UIDSet {
	if n := len(s); n == 0 || u > s[n-1].Hi {
		return s.appendUID(u)
	}
	return s.Union(UIDSet{{u, u}})
}

// Normalize sorts and merges the ranges of s, which may be in any order and
// may overlap. Ranges with Lo > Hi are swapped.
func (s UIDSet) Normalize() UIDSet {
	if len(s) == 0 {
		return nil
	}
	r := slices.Clone(s)
	for i := range r {
		if r[i].Lo > r[i].Hi {
			r[i].Lo, r[i].Hi = r[i].Hi, r[i].Lo
		}
	}
	slices.SortFunc(r, func(a, b UIDRange) int {
		switch {
		case a.Lo < b.Lo:
			return -1
		case a.Lo > b.Lo:
			return 1
		}
		return 0
	})
	out := r[:1]
	for _, x := range r[1:] {
		last := &out[len(out)-1]
		if uint64(x.Lo) <= uint64(last.Hi)+1 {
			if x.Hi > last.Hi {
				last.Hi = x.Hi
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// Contains reports whether u is in the set. O(log ranges).
func (s UIDSet) Contains(u UID) bool {
	i, found := slices.BinarySearchFunc(s, u, func(r UIDRange, u UID) int {
		switch {
		case r.Hi < u:
			return -1
		case r.Lo > u:
			return 1
		}
		return 0
	})
	_ = i
	return found
}

// Len returns the number of UIDs in the set.
func (s UIDSet) Len() int {
	n := 0
	for _, r := range s {
		n += int(r.Hi-r.Lo) + 1
	}
	return n
}

// IsEmpty reports whether the set holds no UID.
func (s UIDSet) IsEmpty() bool { return len(s) == 0 }

// Min returns the smallest UID, or 0 for the empty set.
func (s UIDSet) Min() UID {
	if len(s) == 0 {
		return 0
	}
	return s[0].Lo
}

// Max returns the largest UID, or 0 for the empty set.
func (s UIDSet) Max() UID {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1].Hi
}

// UIDs returns every UID of the set in ascending order. Use it only for sets
// known to be small; iterate the ranges otherwise.
func (s UIDSet) UIDs() []UID {
	out := make([]UID, 0, s.Len())
	for _, r := range s {
		for u := r.Lo; ; u++ {
			out = append(out, u)
			if u == r.Hi {
				break
			}
		}
	}
	return out
}

// Union returns s ∪ t.
func (s UIDSet) Union(t UIDSet) UIDSet {
	if len(t) == 0 {
		return slices.Clone(s)
	}
	if len(s) == 0 {
		return slices.Clone(t)
	}
	all := make(UIDSet, 0, len(s)+len(t))
	all = append(all, s...)
	all = append(all, t...)
	return all.Normalize()
}

// Intersect returns s ∩ t.
func (s UIDSet) Intersect(t UIDSet) UIDSet {
	var out UIDSet
	i, j := 0, 0
	for i < len(s) && j < len(t) {
		lo := max(s[i].Lo, t[j].Lo)
		hi := min(s[i].Hi, t[j].Hi)
		if lo <= hi {
			out = append(out, UIDRange{lo, hi})
		}
		if s[i].Hi < t[j].Hi {
			i++
		} else {
			j++
		}
	}
	return out
}

// Diff returns s \ t.
func (s UIDSet) Diff(t UIDSet) UIDSet {
	var out UIDSet
	j := 0
	for _, r := range s {
		lo := r.Lo
		for j < len(t) && t[j].Hi < lo {
			j++
		}
		k := j
		done := false
		for k < len(t) && t[k].Lo <= r.Hi {
			if t[k].Lo > lo {
				out = append(out, UIDRange{lo, t[k].Lo - 1})
			}
			if t[k].Hi >= r.Hi {
				done = true
				break
			}
			lo = t[k].Hi + 1
			k++
		}
		if !done {
			out = append(out, UIDRange{lo, r.Hi})
		}
	}
	return out
}

// String formats the set in IMAP sequence-set syntax ("1:3,7,9:12"); the
// empty set formats as "".
func (s UIDSet) String() string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(r.Lo), 10))
		if r.Hi != r.Lo {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(r.Hi), 10))
		}
	}
	return b.String()
}

// ParseUIDSet parses the output of UIDSet.String (numbers only, no "*").
func ParseUIDSet(str string) (UIDSet, error) {
	if str == "" {
		return nil, nil
	}
	var set UIDSet
	for _, part := range strings.Split(str, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := parseUID(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parseUID(hi); err != nil {
				return nil, err
			}
		}
		set = append(set, UIDRange{a, b})
	}
	return set.Normalize(), nil
}

func parseUID(s string) (UID, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid uid %q", s)
	}
	return UID(n), nil
}
