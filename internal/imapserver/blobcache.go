package imapserver

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/postfach/postfach/internal/imapsearch"
	"github.com/postfach/postfach/internal/message"
)

// blobCache keeps what SEARCH, SORT, THREAD and FETCH read of message
// bodies again and again, keyed by store.Message.BlobID: the decoded
// parse results (message.Summary), and what is derived from them on
// first use: the keys SORT and THREAD compare (imapsearch.Keys) and the
// header and body text prepared for SEARCH HEADER, TEXT and BODY
// (imapsearch.HeaderText, BodyText). A body is never changed once stored
// (DESIGN.md §3, invariant 5), so an entry never goes stale. It is shared
// by every session of the server and bounded by a byte budget (estimated
// sizes); eviction is CLOCK (an entry used since the hand last passed is
// spared once), so a lookup takes a read lock and sets a bit, and
// sessions on other mailboxes do not contend. Commands that read more
// messages than a cache could hold do not add to it (see admits), so a
// search of a huge mailbox does not push out what the others use. Values
// must not be modified by their users.
type blobCache struct {
	max int64
	mu  sync.RWMutex
	// entries by BlobID, and the same in ring, in the order they came,
	// which the hand goes around; evicted ones leave a nil until the ring
	// is compacted (holes counts them). All guarded by mu.
	entries map[string]*blobEntry
	ring    []*blobEntry
	holes   int
	hand    int
	bytes   int64
}

// blobEntry is what the cache holds of one body. The summary is set when
// it is made; the rest is added on first use (each at most once, by
// whichever session gets there first).
type blobEntry struct {
	blob  string
	sum   *message.Summary
	keys  atomic.Pointer[imapsearch.Keys]
	htext atomic.Pointer[imapsearch.HeaderText]
	btext atomic.Pointer[imapsearch.BodyText] // noBodyText: too large to keep
	used  atomic.Bool                         // since the hand passed
	// size and gone are guarded by blobCache.mu: the bytes counted for
	// the entry, and that it was evicted.
	size int64
	gone bool
}

// noBodyText marks a body whose text is too large to keep: searches
// stream it.
var noBodyText = new(imapsearch.BodyText)

func newBlobCache(max int64) *blobCache {
	return &blobCache{max: max, entries: map[string]*blobEntry{}}
}

// lookup returns the entry of a body, or nil.
func (c *blobCache) lookup(blob string) *blobEntry {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.entries[blob]
	c.mu.RUnlock()
	if e != nil && !e.used.Load() {
		e.used.Store(true)
	}
	return e
}

// summary returns the cached parse results of a body.
func (c *blobCache) summary(blob string) *message.Summary {
	if e := c.lookup(blob); e != nil {
		return e.sum
	}
	return nil
}

// putSummary caches the parse results of a body and returns its entry
// (nil when the cache is off or the summary too large).
func (c *blobCache) putSummary(blob string, sum *message.Summary) *blobEntry {
	if c == nil || sum == nil || blob == "" {
		return nil
	}
	size := summarySize(sum) + entryOverhead + int64(len(blob))
	if size > c.max/8 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[blob]; e != nil {
		return e
	}
	e := &blobEntry{blob: blob, sum: sum, size: size}
	c.entries[blob] = e
	c.ring = append(c.ring, e)
	c.bytes += size
	c.evictLocked(e)
	return e
}

// grow counts what was added to an entry (unless it was evicted).
func (c *blobCache) grow(e *blobEntry, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.gone {
		return
	}
	e.size += n
	c.bytes += n
	c.evictLocked(e)
}

// evictLocked drops entries until the cache is within its budget,
// sparing keep unless it is the only one; c.mu must be held.
func (c *blobCache) evictLocked(keep *blobEntry) {
	for c.bytes > c.max && len(c.entries) > 0 {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		e := c.ring[c.hand]
		switch {
		case e == nil:
		case e == keep && len(c.entries) > 1, e.used.Load():
			e.used.Store(false)
		default:
			c.ring[c.hand] = nil
			c.holes++
			delete(c.entries, e.blob)
			e.gone = true
			c.bytes -= e.size
		}
		c.hand++
	}
	if c.holes > 64 && c.holes*2 > len(c.ring) {
		// Compact, keeping the order and where the hand is.
		out := c.ring[:0]
		hand := 0
		for i, e := range c.ring {
			if i == c.hand {
				hand = len(out)
			}
			if e != nil {
				out = append(out, e)
			}
		}
		clear(c.ring[len(out):])
		c.ring, c.hand, c.holes = out, hand, 0
	}
}

// setKeys, setHeaderText and setBodyText add a part to an entry.
func (c *blobCache) setKeys(e *blobEntry, k *imapsearch.Keys) {
	if e.keys.CompareAndSwap(nil, k) {
		c.grow(e, int64(k.Size()))
	}
}

func (c *blobCache) setHeaderText(e *blobEntry, t *imapsearch.HeaderText) {
	if e.htext.CompareAndSwap(nil, t) {
		c.grow(e, int64(t.Size()))
	}
}

func (c *blobCache) setBodyText(e *blobEntry, t *imapsearch.BodyText) {
	if e.btext.CompareAndSwap(nil, t) && t != noBodyText {
		c.grow(e, int64(t.Size()))
	}
}

// perMessage is about what the cache holds for a message that SEARCH
// (summary, header and body text), SORT and THREAD (keys) use: 10 KB
// (2.2, 1.6, 5.7 and 0.3 KB for the messages of postfach-bench's
// corpus).
const perMessage = 10 << 10

// admits reports whether a command that reads n messages adds what it
// reads to the cache: only when they take at most a quarter of it, so
// one scan of a large mailbox does not push out what all the other
// sessions use.
func (c *blobCache) admits(n int) bool {
	return c != nil && int64(n)*perMessage <= c.max/4
}

// entryOverhead is about what a map entry costs besides its value.
const entryOverhead = 96

// summarySize estimates the memory a decoded summary takes.
func summarySize(s *message.Summary) int64 {
	n := int64(unsafe.Sizeof(*s)) + int64(len(s.Preview))
	for _, r := range s.References {
		n += 16 + int64(len(r))
	}
	return n + partSize(&s.Root) - int64(unsafe.Sizeof(s.Root))
}

func partSize(p *message.Part) int64 {
	n := int64(unsafe.Sizeof(*p)) + int64(len(p.Type)+len(p.Subtype)+len(p.ID)+len(p.Description)+
		len(p.Encoding)+len(p.MD5)+len(p.Disposition)+len(p.Location))
	for _, ps := range [][]message.Param{p.Params, p.DispositionParams} {
		for _, x := range ps {
			n += int64(unsafe.Sizeof(x)) + int64(len(x.Name)+len(x.Value))
		}
	}
	for _, l := range p.Language {
		n += 16 + int64(len(l))
	}
	if e := p.Envelope; e != nil {
		n += int64(unsafe.Sizeof(*e)) + int64(len(e.Date)+len(e.Subject)+len(e.InReplyTo)+len(e.MessageID))
		for _, as := range [][]message.Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
			for _, a := range as {
				n += int64(unsafe.Sizeof(a)) + int64(len(a.Name)+len(a.Adl)+len(a.Mailbox)+len(a.Host))
			}
		}
	}
	for i := range p.Parts {
		n += partSize(&p.Parts[i])
	}
	return n
}
