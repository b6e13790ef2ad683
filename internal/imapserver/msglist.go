package imapserver

import (
	"slices"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// msgList is an immutable list of a mailbox's messages in ascending UID
// order (the metadata of a mailbox cache, mbcache.go). It is kept in
// chunks of pointers, so that an update copies only the chunks it
// touches (and makes new messages for those that changed) and shares the
// rest with the list it was made from: readers use a list without a lock
// while a newer one is being made. Messages in a list carry no Summary
// and must not be modified.
type msgList struct {
	chunks [][]*store.Message
	n      int
}

// Chunk sizes: a chunk is split beyond chunkMax messages; lists are
// rebuilt when expunges leave too many small chunks.
const chunkMax = 128

// newMsgList builds a list from messages in ascending UID order.
func newMsgList(msgs []store.Message) *msgList {
	ptrs := make([]*store.Message, len(msgs))
	for i := range msgs {
		msgs[i].Summary = nil
		ptrs[i] = &msgs[i]
	}
	return newMsgListOf(ptrs)
}

func newMsgListOf(msgs []*store.Message) *msgList {
	l := &msgList{n: len(msgs)}
	for len(msgs) > 0 {
		k := min(len(msgs), chunkMax)
		l.chunks = append(l.chunks, slices.Clip(msgs[:k]))
		msgs = msgs[k:]
	}
	return l
}

// len returns the number of messages.
func (l *msgList) len() int { return l.n }

// seek returns the position of the first message whose UID is at least
// uid: a chunk index and an index within it (len(l.chunks) when there is
// none).
func (l *msgList) seek(uid mail.UID) (int, int) {
	c, _ := slices.BinarySearchFunc(l.chunks, uid, func(ch []*store.Message, u mail.UID) int {
		if ch[len(ch)-1].UID < u {
			return -1
		}
		return 1
	})
	if c == len(l.chunks) {
		return c, 0
	}
	ch := l.chunks[c]
	i, _ := slices.BinarySearchFunc(ch, uid, func(m *store.Message, u mail.UID) int {
		if m.UID < u {
			return -1
		}
		return 1
	})
	return c, i
}

// find returns the message with uid, or nil.
func (l *msgList) find(uid mail.UID) *store.Message {
	c, i := l.seek(uid)
	if c < len(l.chunks) && l.chunks[c][i].UID == uid {
		return l.chunks[c][i]
	}
	return nil
}

// each calls fn for every message whose UID is in set, in UID order,
// until fn returns false. A nil set means every message.
func (l *msgList) each(set mail.UIDSet, fn func(*store.Message) bool) {
	if set == nil {
		for _, ch := range l.chunks {
			for _, m := range ch {
				if !fn(m) {
					return
				}
			}
		}
		return
	}
ranges:
	for _, r := range set {
		c, i := l.seek(r.Lo)
		for ; c < len(l.chunks); c, i = c+1, 0 {
			ch := l.chunks[c]
			for ; i < len(ch); i++ {
				if ch[i].UID > r.Hi {
					continue ranges
				}
				if !fn(ch[i]) {
					return
				}
			}
		}
		return // past the last message: no later range has any
	}
}

// uids returns the UIDs of the list.
func (l *msgList) uids() mail.UIDSet {
	var out mail.UIDSet
	l.each(nil, func(m *store.Message) bool {
		out = out.Append(m.UID)
		return true
	})
	return out
}

// apply returns the list with the messages of changed (ascending UIDs)
// put in, replacing those with the same UID, and the UIDs of gone taken
// out. Chunks that neither touches are shared with l.
func (l *msgList) apply(changed []store.Message, gone mail.UIDSet) *msgList {
	out := &msgList{chunks: make([][]*store.Message, 0, len(l.chunks)+1)}
	j := 0 // next of changed
	small := 0
	for c, ch := range l.chunks {
		// This chunk takes the changed messages below the next chunk's
		// first UID (the last chunk takes the rest).
		end := len(changed)
		if c+1 < len(l.chunks) {
			next := l.chunks[c+1][0].UID
			end = j
			for end < len(changed) && changed[end].UID < next {
				end++
			}
		}
		mine := changed[j:end]
		j = end
		lo, hi := ch[0].UID, ch[len(ch)-1].UID
		if len(mine) == 0 && !intersects(gone, lo, hi) {
			out.chunks = append(out.chunks, ch)
			out.n += len(ch)
			continue
		}
		merged := mergeChunk(ch, mine, gone)
		for len(merged) > 0 {
			k := len(merged)
			if k > 2*chunkMax {
				k = chunkMax
			}
			if k < chunkMax/4 {
				small++
			}
			out.chunks = append(out.chunks, slices.Clip(merged[:k]))
			out.n += k
			merged = merged[k:]
		}
	}
	if len(l.chunks) == 0 && len(changed) > 0 {
		return newMsgListOf(mergeChunk(nil, changed, gone))
	}
	if small > 8 && small*4 > len(out.chunks) {
		// Expunges left many small chunks: pack them again.
		all := make([]*store.Message, 0, out.n)
		for _, ch := range out.chunks {
			all = append(all, ch...)
		}
		return newMsgListOf(all)
	}
	return out
}

// mergeChunk merges a chunk with changed messages (both ascending),
// without the UIDs in gone, into a new slice. The changed messages are
// taken as they are (their Summary dropped): the caller gives them up.
func mergeChunk(ch []*store.Message, changed []store.Message, gone mail.UIDSet) []*store.Message {
	out := make([]*store.Message, 0, len(ch)+len(changed))
	i, j := 0, 0
	for i < len(ch) || j < len(changed) {
		var m *store.Message
		switch {
		case j == len(changed) || i < len(ch) && ch[i].UID < changed[j].UID:
			m = ch[i]
			i++
		case i == len(ch) || changed[j].UID < ch[i].UID:
			m = &changed[j]
			m.Summary = nil
			j++
		default: // the same UID: the change replaces it
			m = &changed[j]
			m.Summary = nil
			i++
			j++
		}
		if gone.Contains(m.UID) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// intersects reports whether set holds a UID in [lo, hi].
func intersects(set mail.UIDSet, lo, hi mail.UID) bool {
	i, _ := slices.BinarySearchFunc(set, lo, func(r mail.UIDRange, u mail.UID) int {
		if r.Hi < u {
			return -1
		}
		return 1
	})
	return i < len(set) && set[i].Lo <= hi
}
