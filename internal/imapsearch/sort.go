package imapsearch

import (
	"cmp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
)

// Item is one message for SORT and THREAD.
type Item struct {
	Seq          uint32
	UID          mail.UID
	InternalDate time.Time
	// Size is RFC822.SIZE.
	Size int64
	// ModSeq is carried along for the caller (ESORT's MODSEQ result, RFC
	// 4731 §3.2); sorting and threading do not use it.
	ModSeq mail.ModSeq
	// Summary is the parse result; it may be nil only when the criteria
	// need none (see SortNeedsSummary). A nil Summary sorts as a message
	// without any header.
	Summary *message.Summary
	// Keys, when set, are NewKeys(Summary), kept by the caller so that
	// they are not computed again (see Keys).
	Keys *Keys
}

// SortNeedsSummary reports whether sorting by criteria reads the
// messages' summaries: only ARRIVAL and SIZE do not.
func SortNeedsSummary(criteria []imap.SortCriterion) bool {
	for _, c := range criteria {
		if c.Key != imap.SortArrival && c.Key != imap.SortSize {
			return true
		}
	}
	return false
}

// sortKey is the precomputed key of one item for one criterion: strings
// compare as collation keys, numbers as numbers.
type sortKey struct {
	s string
	n int64
}

// Sort orders items by the criteria (RFC 5256 §3 SORT, RFC 5957
// DISPLAYFROM/DISPLAYTO), in place. Each criterion's key is computed
// once per item, so the sort costs O(n log n) comparisons of precomputed
// keys. Items that compare equal on every criterion keep sequence number
// order (the implicit last criterion, which REVERSE does not affect).
func Sort(items []Item, criteria []imap.SortCriterion) {
	nc := len(criteria)
	if len(items) < 2 {
		return
	}
	keys := make([]sortKey, len(items)*nc)
	for i := range items {
		for j, c := range criteria {
			keys[i*nc+j] = itemKey(&items[i], c.Key)
		}
	}
	idx := make([]int32, len(items))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int {
		ka, kb := keys[int(a)*nc:int(a)*nc+nc], keys[int(b)*nc:int(b)*nc+nc]
		for j, c := range criteria {
			r := cmp.Compare(ka[j].n, kb[j].n)
			if r == 0 {
				r = strings.Compare(ka[j].s, kb[j].s)
			}
			if c.Reverse {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return cmp.Compare(items[a].Seq, items[b].Seq)
	})
	sorted := make([]Item, len(items))
	for i, k := range idx {
		sorted[i] = items[k]
	}
	copy(items, sorted)
}

// itemKey computes the key of it for one SORT key (RFC 5256 §3, RFC 5957
// §3 and §4): FROM, TO and CC the addr-mailbox of the field's first
// address structure, DISPLAYFROM and DISPLAYTO its display value (a name
// given as a comment included), SUBJECT the base subject, all under
// i;unicode-casemap; DATE the Date header in UTC or else the internal
// date. Absent headers sort as the empty string, before every other
// string.
func itemKey(it *Item, k imap.SortKey) sortKey {
	switch k {
	case imap.SortArrival:
		return sortKey{n: it.InternalDate.Unix()}
	case imap.SortSize:
		return sortKey{n: it.Size}
	case imap.SortDate:
		return sortKey{n: sentTime(it).Unix()}
	}
	if it.Keys != nil && int(k) < len(it.Keys.sort) {
		return sortKey{s: it.Keys.sort[k]}
	}
	return sortKey{s: stringKey(it, k)}
}

// stringKey computes the key of a SORT key that compares strings.
func stringKey(it *Item, k imap.SortKey) string {
	var env *message.Envelope
	if it.Summary != nil {
		env = it.Summary.Root.Envelope
	}
	if env == nil {
		env = &message.Envelope{}
	}
	switch k {
	case imap.SortSubject:
		return collationKey(message.BaseSubject(env.Subject))
	case imap.SortFrom:
		return collationKey(message.SortMailbox(env.From))
	case imap.SortTo:
		return collationKey(message.SortMailbox(env.To))
	case imap.SortCc:
		return collationKey(message.SortMailbox(env.Cc))
	case imap.SortDisplayFrom:
		return collationKey(message.SortDisplay(env.From))
	case imap.SortDisplayTo:
		return collationKey(message.SortDisplay(env.To))
	}
	return ""
}

// sentTime is the sent date of RFC 5256 §2.2: the Date header in UTC,
// or the internal date when the header is missing or unparseable.
func sentTime(it *Item) time.Time {
	if it.Summary != nil && !it.Summary.Date.IsZero() {
		return it.Summary.Date
	}
	return it.InternalDate
}

// collationKey returns the i;unicode-casemap key of s (RFC 5051 §2): each
// character is replaced by its titlecase mapping, the result is
// decomposed to NFKD, and keys compare as octet strings. RFC 5256 §7
// requires this collation (I18NLEVEL=1) for SORT and THREAD; for ASCII it
// is i;ascii-casemap, letters compared as upper case. Invalid UTF-8
// (which the decoders in package message never produce) is compared as
// U+FFFD.
func collationKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		for i := 0; i < len(s); i++ {
			if 'a' <= s[i] && s[i] <= 'z' {
				return strings.ToUpper(s)
			}
		}
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(unicode.ToTitle(r))
	}
	return norm.NFKD.String(b.String())
}
