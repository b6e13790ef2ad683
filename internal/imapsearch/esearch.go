package imapsearch

import (
	"errors"
	"strconv"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
)

// Result is one message of a search result.
type Result struct {
	Seq    uint32
	UID    mail.UID
	ModSeq mail.ModSeq
}

// ESearch is the data of an ESEARCH response (RFC 4731, RFC 5267 ESORT,
// RFC 9394 PARTIAL, RFC 7162 MODSEQ) and the set SAVE stores (RFC 5182).
// Numbers are UIDs for UID SEARCH/SORT and sequence numbers otherwise.
type ESearch struct {
	// Send reports whether an ESEARCH response is due: false for RETURN
	// (SAVE) alone (RFC 5182 §1: SAVE without other options suppresses
	// the response), true with UPDATE even without result data.
	Send bool
	// UID reports that the numbers are UIDs (the "UID" indicator).
	UID bool

	HasMin, HasMax bool
	Min, Max       uint32
	// All holds the result for ALL, in result order (ascending for
	// SEARCH, sort order for SORT); nil when not requested or empty.
	All []uint32
	// HasCount reports COUNT, which is always sent when requested.
	HasCount bool
	Count    uint32
	// Partial is the PARTIAL data (RFC 9394 §3.1), or nil.
	Partial *PartialResult
	// ModSeq is the MODSEQ result option (RFC 4731 §3.2); 0 means none.
	ModSeq mail.ModSeq

	// Save reports RETURN (SAVE); Saved is then the new value of "$".
	Save  bool
	Saved mail.UIDSet
}

// PartialResult is the PARTIAL return data: the range as requested and
// the results within it, in result order (nil: "NIL").
type PartialResult struct {
	Range imap.PartialRange
	Nums  []uint32
}

// ErrPartialWithAll is returned by Shape for RETURN (ALL PARTIAL ...),
// which RFC 9394 §3.1 forbids; the server answers BAD.
var ErrPartialWithAll = errors.New("PARTIAL and ALL in one command")

// Shape computes the ESEARCH data for ret from the matching messages in
// result order: ascending for SEARCH, the sort order for SORT (sorted
// set, RFC 5267 §3.1 gives MIN and MAX as the first and last in sort
// order). withModSeq is Program.HasModSeq.
func Shape(ret imap.SearchReturn, results []Result, uid, sorted, withModSeq bool) (*ESearch, error) {
	all := ret.All
	if !ret.HasResultOption() {
		// RFC 4731 §3.1: "RETURN ()" means ALL; so does RETURN
		// (CONTEXT), a hint (RFC 5267 §4.2).
		all = true
	}
	if all && ret.Partial != nil {
		return nil, ErrPartialWithAll
	}
	es := &ESearch{
		UID: uid,
		// UPDATE alone: an ESEARCH response without result data, which
		// names the tag the updates will carry (RFC 5267 §4.3).
		Send:     ret.Min || ret.Max || all || ret.Count || ret.Partial != nil || ret.Update,
		HasCount: ret.Count,
		Count:    uint32(len(results)),
		Save:     ret.Save,
	}
	num := func(r Result) uint32 {
		if uid {
			return uint32(r.UID)
		}
		return r.Seq
	}
	// The messages "returned": what MODSEQ covers (RFC 4731 §3.2) and
	// what SAVE keeps (RFC 5182 §2.4, RFC 9394 §3.2). With ALL or COUNT
	// that is everything; otherwise MIN, MAX and the PARTIAL range.
	var minI, maxI = -1, -1
	if len(results) > 0 {
		minI, maxI = 0, len(results)-1
		if !sorted {
			for i, r := range results {
				if num(r) < num(results[minI]) {
					minI = i
				}
				if num(r) > num(results[maxI]) {
					maxI = i
				}
			}
		}
		if ret.Min {
			es.HasMin, es.Min = true, num(results[minI])
		}
		if ret.Max {
			es.HasMax, es.Max = true, num(results[maxI])
		}
		if all {
			es.All = make([]uint32, len(results))
			for i, r := range results {
				es.All[i] = num(r)
			}
		}
	}
	var plo, phi int // PARTIAL window [plo, phi) of results
	if p := ret.Partial; p != nil {
		es.Partial = &PartialResult{Range: *p}
		plo, phi = partialWindow(*p, len(results))
		for _, r := range results[plo:phi] {
			es.Partial.Nums = append(es.Partial.Nums, num(r))
		}
	}
	everything := all || ret.Count || !ret.Min && !ret.Max && ret.Partial == nil
	var hi mail.ModSeq
	var saved []mail.UID
	add := func(r Result) {
		hi = max(hi, r.ModSeq)
		if ret.Save {
			saved = append(saved, r.UID)
		}
	}
	switch {
	case len(results) == 0:
	case everything:
		for _, r := range results {
			add(r)
		}
	default:
		if ret.Min {
			add(results[minI])
		}
		if ret.Max {
			add(results[maxI])
		}
		for _, r := range results[plo:phi] {
			add(r)
		}
	}
	if withModSeq && es.Send && (ret.Min || ret.Max || all || ret.Count || ret.Partial != nil) {
		es.ModSeq = hi
	}
	if ret.Save {
		es.Saved = mail.NewUIDSet(saved...)
	}
	return es, nil
}

// partialWindow returns the positions [lo, hi) of results that a PARTIAL
// range selects among n results (RFC 9394 §3.1: 1 is the first result,
// -1 the last).
func partialWindow(p imap.PartialRange, n int) (int, int) {
	first, last := p.First, p.Last
	if first > last {
		first, last = last, first
	}
	var lo, hi int64
	if first < 0 {
		lo, hi = int64(n)+first, int64(n)+last+1
	} else {
		lo, hi = first-1, last
	}
	lo = max(lo, 0)
	hi = min(hi, int64(n))
	if lo >= hi {
		return 0, 0
	}
	return int(lo), int(hi)
}

// AppendNumSet appends nums as a sequence-set in the given order,
// writing each run of consecutive ascending numbers as a range:
// 1 2 3 5 7 8 becomes "1:3,5,7:8" and, for a sorted result, 9 8 7 becomes
// "9,8,7" (RFC 5267 §3.2: ranges only from low to high).
func AppendNumSet(dst []byte, nums []uint32) []byte {
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 && nums[j] != ^uint32(0) {
			j++
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendUint(dst, uint64(nums[i]), 10)
		if j > i {
			dst = append(dst, ':')
			dst = strconv.AppendUint(dst, uint64(nums[j]), 10)
		}
		i = j + 1
	}
	return dst
}

// appendPartialRange writes a PARTIAL range as RFC 9394 §3.1 shows it:
// "1:500", and "-1:-100" for ranges counted from the end.
func appendPartialRange(dst []byte, p imap.PartialRange) []byte {
	first, last := p.First, p.Last
	if first > last {
		first, last = last, first
	}
	if first < 0 {
		first, last = last, first
	}
	dst = strconv.AppendInt(dst, first, 10)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, last, 10)
}

// Write writes the ESEARCH response (RFC 4731 §4, RFC 9051 §7.3.4):
// `* ESEARCH (TAG "a1") UID MIN 2 MAX 9 COUNT 5 ALL 2:4,7,9 MODSEQ 12`.
// It writes nothing when es.Send is false.
func (es *ESearch) Write(enc *imap.Encoder, tag string) error {
	if !es.Send {
		return nil
	}
	enc.Untagged().Atom("ESEARCH")
	if tag != "" {
		enc.BeginList().Atom("TAG").String(tag).EndList()
	}
	if es.UID {
		enc.Atom("UID")
	}
	if es.HasMin {
		enc.Atom("MIN").Number(es.Min)
	}
	if es.HasMax {
		enc.Atom("MAX").Number(es.Max)
	}
	if es.HasCount {
		enc.Atom("COUNT").Number(es.Count)
	}
	if len(es.All) > 0 {
		enc.Atom("ALL").AtomBytes(AppendNumSet(nil, es.All))
	}
	if p := es.Partial; p != nil {
		b := append([]byte("("), appendPartialRange(nil, p.Range)...)
		b = append(b, ' ')
		if len(p.Nums) == 0 {
			b = append(b, "NIL"...)
		} else {
			b = AppendNumSet(b, p.Nums)
		}
		enc.Atom("PARTIAL").AtomBytes(append(b, ')'))
	}
	if es.ModSeq != 0 {
		enc.Atom("MODSEQ").Number64(uint64(es.ModSeq))
	}
	return enc.End()
}

// WriteSearch writes a SEARCH or SORT response (RFC 9051 §7.3.5 for
// IMAP4rev1 clients, RFC 5256 §4): name ("SEARCH" or "SORT") and the
// numbers in order, with "(MODSEQ n)" when modseq is not 0 and there are
// results (RFC 7162 §3.1.5).
func WriteSearch(enc *imap.Encoder, name string, nums []uint32, modseq mail.ModSeq) error {
	enc.Untagged().Atom(name)
	for _, n := range nums {
		enc.Number(n)
	}
	if modseq != 0 && len(nums) > 0 {
		enc.BeginList().Atom("MODSEQ").Number64(uint64(modseq)).EndList()
	}
	return enc.End()
}

// HighestModSeq returns the highest MODSEQ among results, for the plain
// SEARCH response of a search with a MODSEQ key.
func HighestModSeq(results []Result) mail.ModSeq {
	var hi mail.ModSeq
	for _, r := range results {
		hi = max(hi, r.ModSeq)
	}
	return hi
}
