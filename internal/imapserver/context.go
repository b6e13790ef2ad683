package imapserver

import (
	"slices"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/imapsearch"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// Search contexts (RFC 5267 §4, CONTEXT=SEARCH and CONTEXT=SORT).
//
// SEARCH or SORT with RETURN (UPDATE) leaves a context behind: the session
// keeps the result and, as the view of the selected mailbox changes,
// tells the client what joined and left it with unsolicited ESEARCH
// responses carrying ADDTO and REMOVEFROM (RFC 5267 §4.3), at the points
// where the view reports changes (view.go), so in IDLE and with NOTIFY as
// soon as it happens:
//
//   - new messages: after their EXISTS (§4.3.3), so their sequence
//     numbers are valid;
//   - flag changes, the session's own included: with the other
//     unsolicited responses;
//   - expunges: REMOVEFROM before the EXPUNGE or VANISHED (§4.3.4), while
//     the sequence numbers still hold.
//
// A SEARCH context keeps a UID set and reports position 0 (allowed for
// SEARCH, §4.3.3) with the numbers in mailbox order; a SORT context keeps
// the members in sort order with their sort keys
// (imapsearch.OrderedResult) and reports the positions of what was added
// and removed. Numbers are UIDs for UID SEARCH and UID SORT, sequence
// numbers otherwise. The RETURN options of the command shape only its own
// response: updates cover every matching message (§4.3: no interaction
// with MIN, MAX, COUNT or PARTIAL). CONTEXT is accepted as the hint it is
// (§4.2) and changes nothing.
//
// Cost. A context evaluates its program on the messages that changed
// only, from what store.Changes returned (flags, dates, sizes), loading
// parse results and bodies for those messages alone when the program or
// the sort needs them. A program with sequence numbers or "*" (whose
// matches move when messages arrive or go) is compiled again and re-run
// over the mailbox after new messages or expunges, and the difference
// reported. Sessions without contexts do none of this.
//
// Limits. At most Options.SearchContexts per session (5); a context's
// result may take Options.SearchContextBytes (1 MiB: a UID range is 8
// bytes, a sorted member 24 bytes plus its sort key) when it is made, and
// twice that later. A search over the limits, or with OLDER or YOUNGER (RFC
// 5032, whose result changes with the clock alone), gets its results and
// "* NO [NOUPDATE "tag"]" (§4.3.1) and no updates; a context that
// outgrows its limit, or whose update fails to read the store, ends with
// the same response. (§4.3.1 asks for at least one context per client:
// every session gets five, but a result over the size limit is refused
// even as the first, so that memory stays bounded; and RFC 5267 names no
// way to end a context later, which the untagged NOUPDATE does.)
//
// Choices where the RFCs leave room: "$" in a context's program is the
// saved result as it was when the context was made; a program with a
// MODSEQ key (RFC 7162 §3.1.5) adds "MODSEQ n" to updates that add
// messages, n being the highest MODSEQ among them (as RFC 4731 §3.2 has
// for the messages a response returns); with NOTIFY, contexts follow the
// view: at once with the selected filter, at the next command with
// selected-delayed, and without either only as far as the session's own
// changes bring the view. SELECT, EXAMINE, CLOSE, UNSELECT and
// UNAUTHENTICATE end every context (the view they belong to goes).

// Default limits of search contexts.
const (
	defaultContextMax      = 5
	defaultContextMaxBytes = 1 << 20
)

// searchContext is a SEARCH or SORT whose result is kept up to date.
type searchContext struct {
	tag string
	uid bool // numbers are UIDs
	// prog is the compiled program; key, charset and saved compile it
	// again when it depends on positions.
	prog    *imapsearch.Program
	key     imap.SearchKey
	charset string
	saved   mail.UIDSet
	// need is what evaluating a message reads: the program's need, and
	// the summary when the sort criteria need it.
	need   imapsearch.Need
	modseq bool // updates carry MODSEQ (a MODSEQ search key)
	// set is the result of a SEARCH context, sorted that of a SORT
	// context (nil for SEARCH).
	set    mail.UIDSet
	sorted *imapsearch.OrderedResult
}

func (c *searchContext) contains(uid mail.UID) bool {
	if c.sorted != nil {
		return c.sorted.Contains(uid)
	}
	return c.set.Contains(uid)
}

func (c *searchContext) members() mail.UIDSet {
	if c.sorted != nil {
		return c.sorted.Members()
	}
	return c.set
}

// size is about the memory the result takes.
func (c *searchContext) size() int {
	if c.sorted != nil {
		return c.sorted.Size()
	}
	return len(c.set) * 8
}

// contextFor returns the context made by the command with tag, or nil.
func (v *selected) contextFor(tag string) *searchContext {
	for _, c := range v.contexts {
		if c.tag == tag {
			return c
		}
	}
	return nil
}

// checkContextTag refuses UPDATE with the tag of a living context: RFC
// 5267 §4.3 says BAD, since updates name their context by tag.
func (s *session) checkContextTag(ret imap.SearchReturn, tag string) error {
	if ret.Update && s.sel.contextFor(tag) != nil {
		return bad("CLIENTBUG", "Tag is in use by a search context")
	}
	return nil
}

// noUpdate tells the client that the command with tag gets no updates
// (RFC 5267 §4.3.1).
func (s *session) noUpdate(tag, text string) {
	s.enc.Untagged().Atom(imap.NO).Code("NOUPDATE " + imap.QuoteString(tag, false)).Text(text).End()
}

// startContext keeps the result of a SEARCH (sorted nil) or SORT that
// asked for UPDATE, after its response was written; or says NOUPDATE.
// savedBefore is "$" as the program was compiled with it.
func (s *session) startContext(b *imap.CommandBase, key imap.SearchKey, charset string, savedBefore mail.UIDSet,
	prog *imapsearch.Program, results []imapsearch.Result, criteria []imap.SortCriterion, items []imapsearch.Item) {
	v := s.sel
	limit := s.srv.contextMaxBytes
	switch {
	case len(v.contexts) >= s.srv.contextMax:
		s.noUpdate(b.Tag, "Too many search contexts, cancel one with CANCELUPDATE")
		return
	case prog.DependsOnTime():
		s.noUpdate(b.Tag, "A search with OLDER or YOUNGER is not kept up to date")
		return
	case criteria != nil && len(items)*24 > limit:
		s.noUpdate(b.Tag, "Result too large to keep up to date")
		return
	}
	prog.ReleaseBuffers()
	c := &searchContext{tag: b.Tag, uid: b.UID, prog: prog, key: key, charset: charset,
		need: prog.Need(), modseq: prog.HasModSeq()}
	if prog.DependsOnPositions() {
		c.saved = savedBefore.Intersect(v.uids)
	}
	if criteria != nil {
		if imapsearch.SortNeedsSummary(criteria) {
			c.need = max(c.need, imapsearch.NeedSummary)
		}
		c.sorted = imapsearch.NewOrderedResult(criteria, items)
	} else {
		for _, r := range results {
			c.set = c.set.Append(r.UID)
		}
	}
	if c.size() > limit {
		s.noUpdate(b.Tag, "Result too large to keep up to date")
		return
	}
	v.contexts = append(v.contexts, c)
}

// cmdCancelUpdate: CANCELUPDATE (RFC 5267 §4.3.5). Tags that name no
// context are answered with NO, after the others were cancelled.
func (s *session) cmdCancelUpdate(cmd imap.Command) error {
	c := cmd.(*imap.CancelUpdate)
	v := s.sel
	unknown := false
	for _, tag := range c.Tags {
		i := slices.IndexFunc(v.contexts, func(x *searchContext) bool { return x.tag == tag })
		if i < 0 {
			unknown = true
			continue
		}
		v.contexts = slices.Delete(v.contexts, i, i+1)
	}
	if len(v.contexts) == 0 {
		v.contexts = nil
	}
	if unknown {
		return no("", "No search context has that tag")
	}
	s.okText = "Updates cancelled"
	return nil
}

// dropContext ends a context with NOUPDATE.
func (s *session) dropContext(c *searchContext, text string) {
	v := s.sel
	if i := slices.Index(v.contexts, c); i >= 0 {
		v.contexts = slices.Delete(v.contexts, i, i+1)
	}
	if len(v.contexts) == 0 {
		v.contexts = nil
	}
	s.noUpdate(c.tag, text)
}

// contextFailed ends a context whose update could not be computed: its
// result would be wrong from now on.
func (s *session) contextFailed(c *searchContext, err error) {
	s.log.Warn("search context update failed", "err", err)
	s.dropContext(c, "Search context ended: the update failed")
}

// numbers returns how the client knows a context's messages: nil for
// UIDs, else a function that maps UIDs to sequence numbers of the view,
// fast for ascending runs.
func (s *session) numbers(c *searchContext) func(mail.UID) uint32 {
	if c.uid {
		return nil
	}
	v := s.sel
	cur := seqCursor{v: v}
	var last mail.UID
	return func(u mail.UID) uint32 {
		if u < last {
			cur = seqCursor{v: v}
		}
		last = u
		return cur.seq(u)
	}
}

// sendUpdate writes a context's update, and ends the context if its
// result outgrew the limit.
func (s *session) sendUpdate(c *searchContext, u *imapsearch.Update) {
	if u.Empty() {
		return
	}
	_ = u.Write(s.enc, c.tag, s.numbers(c))
	if c.size() > 2*s.srv.contextMaxBytes {
		s.dropContext(c, "Search context ended: result too large to keep up to date")
	}
}

// contextChange collects what one context gains and loses in a batch.
type contextChange struct {
	remove mail.UIDSet
	add    mail.UIDSet       // SEARCH
	items  []imapsearch.Item // SORT
	modseq mail.ModSeq
}

// updateContexts brings the contexts up to date with the messages whose
// flags changed (changed: messages the client knows, not expunged) and
// the new ones (added, already announced with EXISTS). Both come from
// store.Changes, in UID order, and must not be modified. Contexts whose
// program depends on positions are re-run instead when messages were
// added. Updates go out in the order the contexts were made.
func (s *session) updateContexts(changed, added []*store.Message) {
	v := s.sel
	if len(v.contexts) == 0 || len(changed)+len(added) == 0 {
		return
	}
	// Contexts that read only metadata are evaluated on what Changes
	// returned; the others share one read of the messages' summaries.
	var meta, load []*searchContext
	all := slices.Clone(v.contexts)
	rerun := func(c *searchContext) bool { return len(added) > 0 && c.prog.DependsOnPositions() }
	for _, c := range all {
		switch {
		case rerun(c):
		case c.need < imapsearch.NeedSummary:
			meta = append(meta, c)
		default:
			load = append(load, c)
		}
	}
	// Every added UID is above every changed one.
	msgs := append(slices.Clip(changed), added...)
	outcome := make(map[*searchContext]contextOutcome, len(all))
	s.evalContexts(meta, msgs, imapsearch.NeedMeta, outcome)
	s.evalContexts(load, msgs, imapsearch.NeedSummary, outcome)
	for _, c := range all {
		if rerun(c) {
			s.rerunContext(c)
			continue
		}
		o := outcome[c]
		if o.err != nil {
			s.contextFailed(c, o.err)
			continue
		}
		s.applyChange(c, o.change)
	}
}

// contextOutcome is what evaluating a batch gave for one context.
type contextOutcome struct {
	change *contextChange
	err    error
}

// evalContexts evaluates the contexts' programs on msgs and records what
// each context gains and loses, or the error, in outcome.
func (s *session) evalContexts(cs []*searchContext, msgs []*store.Message, need imapsearch.Need, outcome map[*searchContext]contextOutcome) {
	if len(cs) == 0 {
		return
	}
	changes := make([]contextChange, len(cs))
	err := s.forMessages(msgs, need, func(m *store.Message, sm *imapsearch.Message) error {
		for i, c := range cs {
			ok, err := damagedNoMatch(c.prog.Match(s.ctx, sm))
			if err != nil {
				return err
			}
			ch := &changes[i]
			switch member := c.contains(m.UID); {
			case member && !ok:
				ch.remove = ch.remove.Append(m.UID)
			case !member && ok && c.sorted != nil:
				ch.items = append(ch.items, imapsearch.Item{Seq: sm.Seq, UID: m.UID, ModSeq: m.ModSeq,
					InternalDate: m.InternalDate, Size: m.Size, Summary: m.Summary, Keys: s.keysOf(m)})
				ch.modseq = max(ch.modseq, m.ModSeq)
			case !member && ok:
				ch.add = ch.add.Append(m.UID)
				ch.modseq = max(ch.modseq, m.ModSeq)
			}
		}
		return nil
	})
	for i, c := range cs {
		c.prog.ReleaseBuffers()
		outcome[c] = contextOutcome{change: &changes[i], err: err}
	}
}

// applyChange applies what a context gains and loses and tells the
// client.
func (s *session) applyChange(c *searchContext, ch *contextChange) {
	u := &imapsearch.Update{}
	if c.sorted != nil {
		u.Remove = c.sorted.Remove(ch.remove)
		u.Add = c.sorted.Insert(ch.items)
	} else {
		u.Remove = imapsearch.SearchRuns(ch.remove)
		u.Add = imapsearch.SearchRuns(ch.add)
		c.set = c.set.Diff(ch.remove).Union(ch.add)
	}
	if c.modseq && len(u.Add) > 0 {
		u.ModSeq = ch.modseq
	}
	s.sendUpdate(c, u)
}

// forMessages calls fn for each of msgs (ascending UIDs) that is in the
// view and not expunged, with the search view of it. When need asks for
// more than metadata, the messages are read again with their summaries
// (their flags may then be newer than msgs say; a later change is
// evaluated again when it is reported).
func (s *session) forMessages(msgs []*store.Message, need imapsearch.Need, fn func(*store.Message, *imapsearch.Message) error) error {
	v := s.sel
	cur := seqCursor{v: v}
	src := &searchSource{s: s}
	var sm imapsearch.Message
	visit := func(m *store.Message) error {
		seq := cur.seq(m.UID)
		if seq == 0 || v.expunged.Contains(m.UID) {
			return nil
		}
		src.m = m
		sm = imapsearch.Message{Seq: seq, Meta: m, Recent: v.recent(m.UID), Source: src}
		err := fn(m, &sm)
		src.close()
		return err
	}
	if need < imapsearch.NeedSummary {
		for _, m := range msgs {
			if err := visit(m); err != nil {
				return err
			}
		}
		return nil
	}
	var set mail.UIDSet
	for _, m := range msgs {
		set = set.Append(m.UID)
	}
	for m, err := range s.messages(set, store.ListOptions{Summary: true}) {
		if err != nil {
			return err
		}
		if err := visit(m); err != nil {
			return err
		}
	}
	return nil
}

// rerunContext compiles a context's program for the view as it is now
// and runs it over the whole view (a program with sequence numbers or
// "*", after messages arrived or went), then reports the difference.
func (s *session) rerunContext(c *searchContext) {
	v := s.sel
	prog, err := imapsearch.Compile(c.key, imapsearch.Options{
		Charset:     c.charset,
		NumMessages: uint32(v.n),
		MaxUID:      v.uids.Max(),
		Saved:       c.saved.Intersect(v.uids),
	})
	if err != nil {
		s.contextFailed(c, err)
		return
	}
	c.prog = prog
	defer prog.ReleaseBuffers()
	old := c.members()
	var now mail.UIDSet
	ch := &contextChange{}
	err = s.runSearch(prog, c.need >= imapsearch.NeedSummary, func(seq uint32, m *store.Message) {
		now = now.Append(m.UID)
		if old.Contains(m.UID) {
			return
		}
		ch.modseq = max(ch.modseq, m.ModSeq)
		if c.sorted != nil {
			ch.items = append(ch.items, imapsearch.Item{Seq: seq, UID: m.UID, ModSeq: m.ModSeq,
				InternalDate: m.InternalDate, Size: m.Size, Summary: m.Summary, Keys: s.keysOf(m)})
		} else {
			ch.add = ch.add.Append(m.UID)
		}
	})
	if err != nil {
		s.contextFailed(c, err)
		return
	}
	ch.remove = old.Diff(now)
	s.applyChange(c, ch)
}

// contextsExpunge removes the expunged messages from every context,
// before the EXPUNGE or VANISHED responses (RFC 5267 §4.3.4: the
// REMOVEFROM comes first, while its sequence numbers are valid).
func (s *session) contextsExpunge(gone mail.UIDSet) {
	for _, c := range slices.Clone(s.sel.contexts) {
		if rm := c.members().Intersect(gone); !rm.IsEmpty() {
			s.applyChange(c, &contextChange{remove: rm})
		}
	}
}

// contextsAfterExpunge re-runs the contexts whose program depends on
// positions, once the expunges were reported.
func (s *session) contextsAfterExpunge() {
	for _, c := range slices.Clone(s.sel.contexts) {
		if c.prog.DependsOnPositions() {
			s.rerunContext(c)
		}
	}
}
