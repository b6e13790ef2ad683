package imapsearch

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strings"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
)

// Search contexts (RFC 5267 §4.3) keep a SEARCH or SORT result up to date
// while the mailbox changes: the server evaluates the program on the
// messages that changed, adds and removes them here, and tells the
// client with ESEARCH ADDTO and REMOVEFROM. A SEARCH result is a UID set
// in mailbox order (the server keeps it as a mail.UIDSet and reports
// position 0); a SORT result is an OrderedResult, which knows each
// member's sort key so a new member's position follows without sorting
// again.

// Run is one pair of an ADDTO or REMOVEFROM return data item (RFC 5267
// §4.3.3, §4.3.4): UIDs in result order that occupy consecutive positions
// starting at Pos (1 is the first result). Pos 0 is for SEARCH contexts,
// whose results are in mailbox order: the client places the UIDs itself.
type Run struct {
	Pos  uint32
	UIDs []mail.UID
}

// Update is one ESEARCH update of a context: REMOVEFROM runs, processed
// first and in order, then ADDTO runs (RFC 5267 §4.3.2: the client
// processes the data items in the order they appear).
type Update struct {
	Remove, Add []Run
	// ModSeq, when not 0, is sent as the MODSEQ return data (RFC 4731
	// §3.2, RFC 7162 §3.1.5): the highest MODSEQ of the added messages,
	// for contexts whose program has a MODSEQ key.
	ModSeq mail.ModSeq
}

// Empty reports whether the update changes nothing.
func (u *Update) Empty() bool { return len(u.Remove) == 0 && len(u.Add) == 0 }

// Write writes the update as an unsolicited ESEARCH response (RFC 5267
// §4.3): `* ESEARCH (TAG "B01") UID REMOVEFROM (0 32768) ADDTO (0
// 32769:32770)`. num maps a UID to the number the client knows it by (its
// sequence number, for a context made by SEARCH or SORT without UID); nil
// writes UIDs. Runs of consecutive ascending numbers are written as
// ranges (RFC 5267 §3.2). Nothing is written for an empty update.
func (u *Update) Write(enc *imap.Encoder, tag string, num func(mail.UID) uint32) error {
	if u.Empty() {
		return enc.Err()
	}
	enc.Untagged().Atom("ESEARCH").BeginList().Atom("TAG").String(tag).EndList()
	if num == nil {
		enc.Atom("UID")
	}
	var b, nums []byte
	var scratch []uint32
	item := func(name string, runs []Run) {
		if len(runs) == 0 {
			return
		}
		b = append(b[:0], '(')
		for i, r := range runs {
			if i > 0 {
				b = append(b, ' ')
			}
			scratch = scratch[:0]
			for _, uid := range r.UIDs {
				if num != nil {
					scratch = append(scratch, num(uid))
				} else {
					scratch = append(scratch, uint32(uid))
				}
			}
			b = appendUint(b, r.Pos)
			b = append(b, ' ')
			nums = AppendNumSet(nums[:0], scratch)
			b = append(b, nums...)
		}
		b = append(b, ')')
		enc.Atom(name).AtomBytes(b)
	}
	item("REMOVEFROM", u.Remove)
	item("ADDTO", u.Add)
	if u.ModSeq != 0 {
		enc.Atom("MODSEQ").Number64(uint64(u.ModSeq))
	}
	return enc.End()
}

func appendUint(b []byte, n uint32) []byte {
	if n == 0 {
		return append(b, '0')
	}
	var d [10]byte
	i := len(d)
	for n > 0 {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[i:]...)
}

// SearchRuns returns the run of a SEARCH context for uids (ascending, in
// mailbox order): one run at position 0 (RFC 5267 §4.3.3: servers are
// RECOMMENDED to send zero-position updates in mailbox order, the
// shortest form in set syntax), or none for the empty set.
func SearchRuns(uids mail.UIDSet) []Run {
	if uids.IsEmpty() {
		return nil
	}
	return []Run{{Pos: 0, UIDs: uids.UIDs()}}
}

// OrderedResult is the result of a SORT context, in sort order: each
// member with its sort key (an order-preserving encoding of its values
// for the criteria), so results stay ordered as members come and go, at
// a cost that grows with the result, not with the mailbox. Members that
// compare equal on every criterion are in UID order, which is sequence
// number order, as in Sort. An OrderedResult is not safe for concurrent
// use.
type OrderedResult struct {
	criteria []imap.SortCriterion
	entries  []orderedEntry // ascending by (key, uid)
	members  mail.UIDSet
	keyBytes int
}

type orderedEntry struct {
	key string
	uid mail.UID
}

// orderedEntryOverhead is the memory of one entry besides its key bytes:
// the string header and the UID, padded.
const orderedEntryOverhead = 24

// NewOrderedResult returns the result holding items (in any order),
// sorted by criteria as Sort sorts them. Items need Summary when
// SortNeedsSummary(criteria).
func NewOrderedResult(criteria []imap.SortCriterion, items []Item) *OrderedResult {
	r := &OrderedResult{criteria: slices.Clone(criteria)}
	r.entries = r.newEntries(items)
	uids := make([]mail.UID, len(r.entries))
	for i, e := range r.entries {
		uids[i] = e.uid
	}
	r.members = mail.NewUIDSet(uids...)
	return r
}

// newEntries returns the entries of items, sorted, and counts their key
// bytes.
func (r *OrderedResult) newEntries(items []Item) []orderedEntry {
	es := make([]orderedEntry, len(items))
	for i := range items {
		k := SortKey(&items[i], r.criteria)
		es[i] = orderedEntry{key: k, uid: items[i].UID}
		r.keyBytes += len(k)
	}
	slices.SortFunc(es, compareEntries)
	return es
}

func compareEntries(a, b orderedEntry) int {
	if c := strings.Compare(a.key, b.key); c != 0 {
		return c
	}
	return cmp.Compare(a.uid, b.uid)
}

// Len returns the number of results.
func (r *OrderedResult) Len() int { return len(r.entries) }

// Contains reports whether uid is a result.
func (r *OrderedResult) Contains(uid mail.UID) bool { return r.members.Contains(uid) }

// Members returns the results as a set. The caller must not modify it.
func (r *OrderedResult) Members() mail.UIDSet { return r.members }

// UIDs returns the results in sort order.
func (r *OrderedResult) UIDs() []mail.UID {
	out := make([]mail.UID, len(r.entries))
	for i, e := range r.entries {
		out[i] = e.uid
	}
	return out
}

// Size returns about how many bytes the result holds.
func (r *OrderedResult) Size() int {
	return len(r.entries)*orderedEntryOverhead + r.keyBytes + len(r.members)*8
}

// Remove removes the members among uids and returns the REMOVEFROM runs:
// in ascending order of position, each position as it is after the runs
// before it were removed (RFC 5267 §4.3.4), so the client can apply them
// in order.
func (r *OrderedResult) Remove(uids mail.UIDSet) []Run {
	gone := r.members.Intersect(uids)
	if gone.IsEmpty() {
		return nil
	}
	var runs []Run
	removed, last := 0, -2 // last: index of the previous removed entry
	out := r.entries[:0]
	for i, e := range r.entries {
		if !gone.Contains(e.uid) {
			out = append(out, e)
			continue
		}
		r.keyBytes -= len(e.key)
		if last == i-1 {
			runs[len(runs)-1].UIDs = append(runs[len(runs)-1].UIDs, e.uid)
		} else {
			// Position i+1 before any removal, less the entries the
			// runs before this one removed ahead of it.
			runs = append(runs, Run{Pos: uint32(i + 1 - removed), UIDs: []mail.UID{e.uid}})
		}
		last = i
		removed++
	}
	clear(r.entries[len(out):])
	r.entries = out
	r.members = r.members.Diff(gone)
	return runs
}

// Insert adds items, which must not be members, and returns the ADDTO
// runs: in ascending order of position, each position as it is once the
// runs before it were inserted, which is its final position (RFC 5267
// §4.3.3).
func (r *OrderedResult) Insert(items []Item) []Run {
	if len(items) == 0 {
		return nil
	}
	add := r.newEntries(items)
	uids := make([]mail.UID, len(add))
	for i, e := range add {
		uids[i] = e.uid
	}
	r.members = r.members.Union(mail.NewUIDSet(uids...))
	var positions []int // final index of each entry of add
	if len(add) <= 8 {
		// In place: each search starts after the previous insertion,
		// which is smaller; earlier insertions do not move.
		lo := 0
		positions = make([]int, len(add))
		for j, e := range add {
			i, _ := slices.BinarySearchFunc(r.entries[lo:], e, compareEntries)
			i += lo
			r.entries = slices.Insert(r.entries, i, e)
			positions[j] = i
			lo = i + 1
		}
	} else {
		merged := make([]orderedEntry, 0, len(r.entries)+len(add))
		positions = make([]int, 0, len(add))
		i, j := 0, 0
		for i < len(r.entries) || j < len(add) {
			if j < len(add) && (i == len(r.entries) || compareEntries(add[j], r.entries[i]) < 0) {
				positions = append(positions, len(merged))
				merged = append(merged, add[j])
				j++
				continue
			}
			merged = append(merged, r.entries[i])
			i++
		}
		r.entries = merged
	}
	var runs []Run
	for j, p := range positions {
		if n := len(runs); n > 0 && j > 0 && positions[j-1] == p-1 {
			runs[n-1].UIDs = append(runs[n-1].UIDs, add[j].uid)
			continue
		}
		runs = append(runs, Run{Pos: uint32(p + 1), UIDs: []mail.UID{add[j].uid}})
	}
	return runs
}

// SortKey returns it's sort key for criteria: an order-preserving
// encoding of the values Sort compares, so that comparing the keys as
// byte strings (and then the UIDs) orders items as Sort does. Numbers
// (ARRIVAL, DATE, SIZE) take 8 bytes; strings (the collation keys of
// SUBJECT, FROM, ...) their length plus 2 and the number of NUL bytes. A
// REVERSE criterion inverts its bytes, which reverses the order because
// every part of the encoding is prefix-free.
func SortKey(it *Item, criteria []imap.SortCriterion) string {
	var b []byte
	for _, c := range criteria {
		start := len(b)
		k := itemKey(it, c.Key)
		switch c.Key {
		case imap.SortArrival, imap.SortSize, imap.SortDate:
			b = binary.BigEndian.AppendUint64(b, uint64(k.n)^(1<<63))
		default:
			// Strings: NUL as 00 FF, the end as 00 00, so that no
			// encoding is a prefix of another and a shorter string
			// sorts first.
			for i := 0; i < len(k.s); i++ {
				if k.s[i] == 0 {
					b = append(b, 0, 0xff)
				} else {
					b = append(b, k.s[i])
				}
			}
			b = append(b, 0, 0)
		}
		if c.Reverse {
			for i := start; i < len(b); i++ {
				b[i] = ^b[i]
			}
		}
	}
	return string(b)
}
