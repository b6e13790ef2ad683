package imapsearch

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
)

// Threading algorithms (RFC 5256 §3), as THREAD names them and the
// capabilities THREAD=ORDEREDSUBJECT and THREAD=REFERENCES announce them.
const (
	ThreadOrderedSubject = "ORDEREDSUBJECT"
	ThreadReferences     = "REFERENCES"
)

// ErrUnknownAlgorithm is returned by BuildThreads for an algorithm it does
// not implement; the server answers BAD (RFC 5256 §3).
var ErrUnknownAlgorithm = errors.New("unknown threading algorithm")

// Thread is one node of a thread tree. A node with Seq 0 is a dummy: it
// stands for a message that the threads refer to but that is not among
// the threaded messages, and it has at least two children (RFC 5256 §4:
// "* THREAD ((3)(5))").
type Thread struct {
	Seq      uint32
	UID      mail.UID
	Children []*Thread
}

// Dummy reports whether t stands for a missing parent.
func (t *Thread) Dummy() bool { return t.Seq == 0 }

// BuildThreads threads items with the named algorithm (RFC 5256 §3) and
// returns the top-level threads in order. Every item appears exactly once
// in the result. Items need their Summary.
func BuildThreads(items []Item, algorithm string) ([]*Thread, error) {
	switch strings.ToUpper(algorithm) {
	case ThreadOrderedSubject:
		return orderedSubject(items), nil
	case ThreadReferences:
		return references(items), nil
	}
	return nil, fmt.Errorf("%q: %w", algorithm, ErrUnknownAlgorithm)
}

// threadInfo is what threading needs of one item, computed once.
type threadInfo struct {
	date    int64  // sent date, Unix seconds (RFC 5256 §2.2)
	seq     uint32 // tie breaker
	subject string // collation key of the base subject
	reply   bool   // subject marks a reply or forward
}

func infoOf(it *Item) threadInfo {
	inf := threadInfo{date: sentTime(it).Unix(), seq: it.Seq}
	if it.Keys != nil {
		inf.subject, inf.reply = it.Keys.threadSubject, it.Keys.reply
	} else {
		inf.subject, inf.reply = threadSubject(it)
	}
	return inf
}

// threadSubject returns the collation key of the base subject THREAD
// compares, and whether the subject marks a reply or forward.
func threadSubject(it *Item) (string, bool) {
	if it.Summary == nil || it.Summary.Root.Envelope == nil {
		return "", false
	}
	base, reply := message.SubjectBase(message.DecodeHeaderValue(it.Summary.Root.Envelope.Subject))
	return collationKey(base), reply
}

// cmpDate orders by sent date, then by sequence number (RFC 5256 §2.2).
func cmpDate(a, b *threadInfo) int {
	if r := cmp.Compare(a.date, b.date); r != 0 {
		return r
	}
	return cmp.Compare(a.seq, b.seq)
}

// orderedSubject is THREAD=ORDEREDSUBJECT (RFC 5256 §3): messages sorted
// by base subject and sent date, split into threads of equal base
// subject; the first message of each thread is its root and every later
// one a child of the root; threads are ordered by the sent date of their
// first message.
func orderedSubject(items []Item) []*Thread {
	infos := make([]threadInfo, len(items))
	idx := make([]int, len(items))
	for i := range items {
		infos[i] = infoOf(&items[i])
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if r := strings.Compare(infos[a].subject, infos[b].subject); r != 0 {
			return r
		}
		return cmpDate(&infos[a], &infos[b])
	})
	var out []*Thread
	var firsts []int
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && infos[idx[j]].subject == infos[idx[i]].subject {
			j++
		}
		root := &Thread{Seq: items[idx[i]].Seq, UID: items[idx[i]].UID}
		for _, k := range idx[i+1 : j] {
			root.Children = append(root.Children, &Thread{Seq: items[k].Seq, UID: items[k].UID})
		}
		out = append(out, root)
		firsts = append(firsts, idx[i])
		i = j
	}
	order := make([]int, len(out))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmpDate(&infos[firsts[a]], &infos[firsts[b]]) })
	sorted := make([]*Thread, len(out))
	for i, k := range order {
		sorted[i] = out[k]
	}
	return sorted
}

// container is a node of the REFERENCES algorithm: a message, or a dummy
// for a referenced message that is not there. During step 1 children are
// a doubly linked list, so re-parenting is O(1).
type container struct {
	item        int // index into items, -1 for a dummy
	parent      *container
	first, last *container // children
	prev, next  *container // siblings
	kids        []*container
	key         threadInfo // sort key: own, or the first child's for a dummy
	removed     bool
}

func (c *container) dummy() bool { return c.item < 0 }

// isAncestorOrSelf reports whether a is c or one of c's ancestors.
func isAncestorOrSelf(a, c *container) bool {
	for x := c; x != nil; x = x.parent {
		if x == a {
			return true
		}
	}
	return false
}

// link makes c the last child of p; c has no parent.
func link(p, c *container) {
	c.parent = p
	c.prev, c.next = p.last, nil
	if p.last != nil {
		p.last.next = c
	} else {
		p.first = c
	}
	p.last = c
}

// unlink detaches c from its parent.
func unlink(c *container) {
	p := c.parent
	if p == nil {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		p.first = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		p.last = c.prev
	}
	c.parent, c.prev, c.next = nil, nil, nil
}

// normalizeMsgID removes the quoting of a message ID's local part, so
// <"abc"@x> and <abc@x> are the same ID (RFC 5256 §3 REFERENCES).
func normalizeMsgID(id string) string {
	if !strings.ContainsAny(id, "\"\\") {
		return id
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		switch id[i] {
		case '"':
			continue
		case '\\':
			if i+1 < len(id) {
				i++
			}
		}
		b.WriteByte(id[i])
	}
	return b.String()
}

// refsOf returns the references of a message (RFC 5256 §3): the message
// IDs of References, or else the first of In-Reply-To.
func refsOf(sum *message.Summary) []string {
	if sum == nil {
		return nil
	}
	if len(sum.References) > 0 {
		return sum.References
	}
	if env := sum.Root.Envelope; env != nil {
		if id := message.ParseMessageID(env.InReplyTo); id != "" {
			return []string{id}
		}
	}
	return nil
}

// idsOf returns the normalised Message-ID and references of a message
// ("" when it has no Message-ID; empty references left out).
func idsOf(sum *message.Summary) (id string, refs []string) {
	if sum != nil && sum.Root.Envelope != nil {
		id = normalizeMsgID(message.ParseMessageID(sum.Root.Envelope.MessageID))
	}
	for _, ref := range refsOf(sum) {
		if ref = normalizeMsgID(ref); ref != "" {
			refs = append(refs, ref)
		}
	}
	return id, refs
}

// references is THREAD=REFERENCES (RFC 5256 §3), steps (1) to (6).
func references(items []Item) []*Thread {
	infos := make([]threadInfo, len(items))
	for i := range items {
		infos[i] = infoOf(&items[i])
	}
	bySeq := make([]int, len(items))
	for i := range bySeq {
		bySeq[i] = i
	}
	slices.SortFunc(bySeq, func(a, b int) int { return cmp.Compare(items[a].Seq, items[b].Seq) })

	var all []*container
	ids := make(map[string]*container, len(items))
	newContainer := func(item int) *container {
		c := &container{item: item}
		all = append(all, c)
		return c
	}
	lookup := func(id string) *container {
		c := ids[id]
		if c == nil {
			c = newContainer(-1)
			ids[id] = c
		}
		return c
	}

	// (1) Link messages along their references. Messages are taken in
	// sequence order, so of several messages with one Message-ID the
	// first keeps it and the others get unique (unnamed) IDs.
	for _, i := range bySeq {
		var id string
		var refs []string
		if k := items[i].Keys; k != nil {
			id, refs = k.msgID, k.refs
		} else {
			id, refs = idsOf(items[i].Summary)
		}
		var c *container
		if id != "" {
			if d := ids[id]; d != nil && d.dummy() {
				c = d
				c.item = i
			} else if d == nil {
				c = newContainer(i)
				ids[id] = c
			}
		}
		if c == nil {
			c = newContainer(i)
		}
		// (1)(A) Each reference is the parent of the next one, unless
		// the child already has a parent or the link would make a loop.
		var prev *container
		for _, ref := range refs {
			rc := lookup(ref)
			if prev != nil && rc.parent == nil && !isAncestorOrSelf(rc, prev) {
				link(prev, rc)
			}
			prev = rc
		}
		// (1)(B) The last reference is the message's parent, replacing
		// any parent from a truncated References of another message.
		unlink(c)
		if prev != nil && !isAncestorOrSelf(c, prev) {
			link(prev, c)
		}
	}

	// Move to child slices, now that linking is done.
	for _, c := range all {
		for k := c.first; k != nil; k = k.next {
			c.kids = append(c.kids, k)
		}
		if !c.dummy() {
			c.key = infos[c.item]
		}
	}
	for _, c := range all {
		c.first, c.last, c.prev, c.next = nil, nil, nil, nil
	}

	// (2) The messages without parent are the children of the root.
	var roots []*container
	for _, c := range all {
		if c.parent == nil {
			roots = append(roots, c)
		}
	}

	// (3) Prune dummies. Below the root, a dummy is replaced by its
	// children (deleted when it has none); a dummy at the top is deleted
	// when empty and replaced by its child when it has exactly one.
	// Children are done before their parents, so each child list is final
	// when its parent looks at it.
	for _, c := range postOrder(roots) {
		var kids []*container
		for _, k := range c.kids {
			if k.dummy() {
				for _, g := range k.kids {
					g.parent = c
				}
				kids = append(kids, k.kids...)
				continue
			}
			kids = append(kids, k)
		}
		c.kids = kids
	}
	top := roots[:0:0]
	for _, c := range roots {
		switch {
		case !c.dummy():
			top = append(top, c)
		case len(c.kids) == 1:
			c.kids[0].parent = nil
			top = append(top, c.kids[0])
		case len(c.kids) > 1:
			top = append(top, c)
		}
	}

	// (4) Sort the top level by sent date; a dummy sorts by its first
	// child, after its children are sorted.
	for _, c := range top {
		if c.dummy() {
			sortKids(c)
		}
	}
	sortSiblings(top)

	// (5) Gather threads with the same base subject.
	subjectOf := func(c *container) (string, bool) {
		if c.dummy() {
			if len(c.kids) == 0 {
				return "", false
			}
			return c.kids[0].key.subject, false
		}
		return c.key.subject, c.key.reply
	}
	table := make(map[string]*container)
	for _, c := range top {
		subj, reply := subjectOf(c)
		if subj == "" {
			continue
		}
		old := table[subj]
		if old == nil {
			table[subj] = c
			continue
		}
		if !old.dummy() && (c.dummy() || old.key.reply && !reply) {
			table[subj] = c
		}
	}
	for _, c := range top {
		subj, reply := subjectOf(c)
		if subj == "" {
			continue
		}
		t := table[subj]
		if t == c || t == nil {
			continue
		}
		c.removed = true
		switch {
		case t.dummy() && c.dummy():
			for _, k := range c.kids {
				k.parent = t
			}
			t.kids = append(t.kids, c.kids...)
		case t.dummy():
			c.parent = t
			t.kids = append(t.kids, c)
		case reply && !t.key.reply:
			c.parent = t
			t.kids = append(t.kids, c)
		default:
			// A new dummy takes t's place, with t and c below it.
			moved := &container{item: t.item, kids: t.kids, key: t.key}
			for _, k := range moved.kids {
				k.parent = moved
			}
			moved.parent, c.parent = t, t
			t.item, t.kids = -1, []*container{moved, c}
		}
	}
	kept := top[:0]
	for _, c := range top {
		if !c.removed {
			kept = append(kept, c)
		}
	}
	top = kept

	// (6) Sort every set of siblings by sent date, the deepest first, so a
	// dummy's first child is known when the dummy is sorted.
	for _, c := range postOrder(top) {
		sortKids(c)
	}
	sortSiblings(top)

	return toThreads(top, items)
}

// postOrder lists the containers under roots (roots included), every
// child before its parent, without recursion.
func postOrder(roots []*container) []*container {
	type frame struct {
		c *container
		i int
	}
	var out []*container
	var stack []frame
	for _, r := range roots {
		stack = append(stack, frame{r, 0})
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.i < len(f.c.kids) {
				k := f.c.kids[f.i]
				f.i++
				stack = append(stack, frame{k, 0})
				continue
			}
			out = append(out, f.c)
			stack = stack[:len(stack)-1]
		}
	}
	return out
}

// sortKids sorts c's children by sent date and, for a dummy, takes the
// first child's key as its own.
func sortKids(c *container) {
	sortSiblings(c.kids)
	if c.dummy() && len(c.kids) > 0 {
		c.key = c.kids[0].key
	}
}

func sortSiblings(cs []*container) {
	slices.SortStableFunc(cs, func(a, b *container) int { return cmpDate(&a.key, &b.key) })
}

// toThreads converts the container forest into Threads.
func toThreads(top []*container, items []Item) []*Thread {
	conv := func(c *container) *Thread {
		if c.dummy() {
			return &Thread{}
		}
		return &Thread{Seq: items[c.item].Seq, UID: items[c.item].UID}
	}
	out := make([]*Thread, len(top))
	type pair struct {
		c *container
		t *Thread
	}
	var stack []pair
	for i, c := range top {
		out[i] = conv(c)
		stack = append(stack, pair{c, out[i]})
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(p.c.kids) == 0 {
				continue
			}
			p.t.Children = make([]*Thread, len(p.c.kids))
			for j, k := range p.c.kids {
				p.t.Children[j] = conv(k)
				stack = append(stack, pair{k, p.t.Children[j]})
			}
		}
	}
	return out
}

// AppendThreads appends the thread lists of a THREAD response (RFC 5256
// §4: thread-data = "THREAD" [SP 1*thread-list]) to dst: "(2)(3 6 (4
// 23)(44 7 96))". Numbers are UIDs for UID THREAD and sequence numbers
// otherwise. A dummy below the top level is replaced by its children, and
// a dummy with a single child by that child, so the output always follows
// the grammar (thread-nested needs two or more lists).
func AppendThreads(dst []byte, threads []*Thread, uid bool) []byte {
	for _, t := range threads {
		kids := effective([]*Thread{t}, nil)
		if len(kids) == 0 {
			continue
		}
		if len(kids) == 1 {
			dst = appendThreadList(dst, kids[0], uid)
			continue
		}
		dst = append(dst, '(')
		for _, k := range kids {
			dst = appendThreadList(dst, k, uid)
		}
		dst = append(dst, ')')
	}
	return dst
}

// effective appends to dst the threads of ts with every dummy replaced by
// its (effective) children.
func effective(ts []*Thread, dst []*Thread) []*Thread {
	for _, t := range ts {
		if t.Dummy() {
			dst = effective(t.Children, dst)
			continue
		}
		dst = append(dst, t)
	}
	return dst
}

// appendThreadList appends "(" thread-members ")" for t, a message.
func appendThreadList(dst []byte, t *Thread, uid bool) []byte {
	dst = append(dst, '(')
	for first := true; ; first = false {
		if !first {
			dst = append(dst, ' ')
		}
		n := uint64(t.Seq)
		if uid {
			n = uint64(t.UID)
		}
		dst = strconv.AppendUint(dst, n, 10)
		kids := effective(t.Children, nil)
		if len(kids) == 0 {
			break
		}
		if len(kids) == 1 {
			t = kids[0]
			continue
		}
		dst = append(dst, ' ')
		for _, k := range kids {
			dst = appendThreadList(dst, k, uid)
		}
		break
	}
	return append(dst, ')')
}

// WriteThread writes the untagged THREAD response for threads.
func WriteThread(enc *imap.Encoder, threads []*Thread, uid bool) error {
	enc.Untagged().Atom("THREAD")
	if b := AppendThreads(nil, threads, uid); len(b) > 0 {
		enc.AtomBytes(b)
	}
	return enc.End()
}
