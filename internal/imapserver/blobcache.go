package imapserver

import (
	"sync"
	"unsafe"

	"github.com/postfach/postfach/internal/message"
)

// blobCache keeps what SEARCH, SORT, THREAD and FETCH read of message
// bodies again and again, keyed by store.Message.BlobID: the decoded
// parse results (message.Summary) and the parsed top-level header
// section (for SEARCH HEADER and TEXT). A body is never changed once
// stored (DESIGN.md §3, invariant 5), so an entry never goes stale. It
// is shared by every session of the server, and bounded by a byte budget
// (estimated sizes): entries live in two generations, new ones and those
// used since the last turnover in cur, the rest in old; when cur holds
// half the budget, old is dropped and cur becomes old. Values must not be
// modified by their users.
type blobCache struct {
	mu       sync.Mutex
	cur, old map[blobKey]blobValue // guarded by mu
	curBytes int64                 // guarded by mu
	max      int64
}

type blobKey struct {
	blob string
	kind blobKind
}

type blobKind uint8

const (
	blobSummary blobKind = iota
	blobHeader
)

type blobValue struct {
	sum  *message.Summary
	hdr  *message.Header
	size int64
}

func newBlobCache(max int64) *blobCache {
	return &blobCache{max: max, cur: map[blobKey]blobValue{}, old: map[blobKey]blobValue{}}
}

func (c *blobCache) get(k blobKey) (blobValue, bool) {
	if c == nil || k.blob == "" {
		return blobValue{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.old[k]
	if ok {
		delete(c.old, k)
		c.putLocked(k, v)
	}
	return v, ok
}

func (c *blobCache) put(k blobKey, v blobValue) {
	if c == nil || k.blob == "" || v.size > c.max/8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cur[k]; ok {
		return
	}
	delete(c.old, k)
	c.putLocked(k, v)
}

func (c *blobCache) putLocked(k blobKey, v blobValue) {
	c.cur[k] = v
	c.curBytes += v.size
	if c.curBytes > c.max/2 {
		c.old, c.cur = c.cur, make(map[blobKey]blobValue, len(c.cur))
		c.curBytes = 0
	}
}

// summary returns the cached parse results of a body.
func (c *blobCache) summary(blob string) *message.Summary {
	v, _ := c.get(blobKey{blob, blobSummary})
	return v.sum
}

// putSummary caches the parse results of a body.
func (c *blobCache) putSummary(blob string, sum *message.Summary) {
	if sum != nil {
		c.put(blobKey{blob, blobSummary}, blobValue{sum: sum, size: summarySize(sum) + entryOverhead + int64(len(blob))})
	}
}

// header returns the cached top-level header of a body.
func (c *blobCache) header(blob string) *message.Header {
	v, _ := c.get(blobKey{blob, blobHeader})
	return v.hdr
}

// putHeader caches the top-level header of a body; raw is the size of
// its bytes.
func (c *blobCache) putHeader(blob string, h *message.Header) {
	size := int64(unsafe.Sizeof(*h)) + entryOverhead + int64(len(blob))
	for _, f := range h.Fields {
		size += int64(unsafe.Sizeof(f)) + int64(len(f.Name)) + int64(len(f.Raw))
	}
	c.put(blobKey{blob, blobHeader}, blobValue{hdr: h, size: size})
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
