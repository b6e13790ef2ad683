package imapserver

import (
	"errors"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/imapsearch"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// searchCapabilities lists the capabilities the search evaluator
// (internal/imapsearch) and the search contexts (context.go) provide.
const searchCapabilities = " ESEARCH SEARCHRES SORT SORT=DISPLAY ESORT CONTEXT=SEARCH CONTEXT=SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES SAVEDATE WITHIN"

// compileSearch compiles a search program for the selected mailbox.
func (s *session) compileSearch(key imap.SearchKey, charset string) (*imapsearch.Program, error) {
	if err := s.rev2SearchKeys(&key); err != nil {
		return nil, err
	}
	v := s.sel
	prog, err := imapsearch.Compile(key, imapsearch.Options{
		Charset:     charset,
		NumMessages: uint32(v.n),
		MaxUID:      v.uids.Max(),
		Saved:       s.saved.Intersect(v.uids),
	})
	if errors.Is(err, imapsearch.ErrBadCharset) {
		// RFC 9051 §6.4.4: NO [BADCHARSET] lists what is supported.
		return nil, no(imapsearch.BadCharsetCode, "Unsupported charset")
	}
	if err != nil {
		return nil, bad("", "Invalid search")
	}
	if prog.HasModSeq() {
		s.condstore = true // RFC 7162 §3.1: CONDSTORE-enabling
	}
	return prog, nil
}

// runSearch evaluates prog over the view and calls found for every
// matching message, in UID order. withSummary loads parse results even
// when the program does not need them (SORT, THREAD).
func (s *session) runSearch(prog *imapsearch.Program, withSummary bool, found func(seq uint32, m *store.Message)) error {
	v := s.sel
	opt := store.ListOptions{Summary: withSummary || prog.Need() >= imapsearch.NeedSummary}
	cur := seqCursor{v: v}
	var sm imapsearch.Message
	src := &searchSource{s: s}
	for m, err := range s.messages(v.uids, opt) {
		if err != nil {
			return err
		}
		seq := cur.seq(m.UID)
		if seq == 0 || v.expunged.Contains(m.UID) {
			continue
		}
		src.m = m
		sm = imapsearch.Message{Seq: seq, Meta: m, Recent: v.recent(m.UID), Source: src}
		ok, err := damagedNoMatch(prog.Match(s.ctx, &sm))
		src.close()
		if err != nil {
			return err
		}
		if ok {
			found(seq, m)
		}
	}
	return nil
}

// damagedNoMatch makes a message whose stored body is damaged match no
// search that needs its body, instead of failing the search of the whole
// mailbox: the store has logged the damage (once per body), and FETCH
// answers for the message itself.
func damagedNoMatch(ok bool, err error) (bool, error) {
	if errors.Is(err, store.ErrDamaged) {
		return false, nil
	}
	return ok, err
}

// cmdSearch: SEARCH and UID SEARCH (RFC 9051 §6.4.4), with ESEARCH (RFC
// 4731), SEARCHRES (RFC 5182), MODSEQ (RFC 7162 §3.1.5) and the CONTEXT
// and UPDATE return options (RFC 5267 §4, context.go). IMAP4rev2
// sessions always get ESEARCH (RFC 9051 §7.3.4).
func (s *session) cmdSearch(cmd imap.Command) error {
	c := cmd.(*imap.Search)
	if err := s.checkContextTag(c.Return, c.Tag); err != nil {
		return err
	}
	savedBefore := s.saved
	prog, err := s.compileSearch(c.Key, c.Charset)
	if err != nil {
		return err
	}
	var results []imapsearch.Result
	err = s.runSearch(prog, false, func(seq uint32, m *store.Message) {
		results = append(results, imapsearch.Result{Seq: seq, UID: m.UID, ModSeq: m.ModSeq})
	})
	if err != nil {
		return err
	}
	if err := s.writeSearchResults(c.Base(), "SEARCH", c.Return, results, false, prog.HasModSeq()); err != nil {
		return err
	}
	if c.Return.Update {
		s.startContext(c.Base(), c.Key, c.Charset, savedBefore, prog, results, nil, nil)
	}
	return nil
}

// writeSearchResults writes an ESEARCH response (RETURN given, or
// IMAP4rev2) or a SEARCH/SORT response, and saves the result for "$".
func (s *session) writeSearchResults(b *imap.CommandBase, name string, ret imap.SearchReturn, results []imapsearch.Result, sorted, withModSeq bool) error {
	if ret.Given || s.rev2 && name == "SEARCH" {
		es, err := imapsearch.Shape(ret, results, b.UID, sorted, withModSeq)
		if err != nil {
			return bad("", "PARTIAL cannot be combined with ALL")
		}
		if es.Save {
			s.saved = es.Saved
		}
		return es.Write(s.enc, b.Tag)
	}
	nums := make([]uint32, len(results))
	for i, r := range results {
		if b.UID {
			nums[i] = uint32(r.UID)
		} else {
			nums[i] = r.Seq
		}
	}
	var modseq mail.ModSeq
	if withModSeq {
		modseq = imapsearch.HighestModSeq(results)
	}
	return imapsearch.WriteSearch(s.enc, name, nums, modseq)
}

// sortItems searches and returns the matching messages as SORT/THREAD
// items.
func (s *session) sortItems(key imap.SearchKey, charset string, withSummary bool) ([]imapsearch.Item, *imapsearch.Program, error) {
	prog, err := s.compileSearch(key, charset)
	if err != nil {
		return nil, nil, err
	}
	var items []imapsearch.Item
	err = s.runSearch(prog, withSummary, func(seq uint32, m *store.Message) {
		items = append(items, imapsearch.Item{Seq: seq, UID: m.UID, ModSeq: m.ModSeq, InternalDate: m.InternalDate, Size: m.Size, Summary: m.Summary, Keys: s.keysOf(m)})
	})
	return items, prog, err
}

// cmdSort: SORT and UID SORT (RFC 5256 §3, RFC 5957 SORT=DISPLAY), with
// the RETURN options of ESORT (RFC 5267 §3) and CONTEXT=SORT (RFC 5267
// §4, context.go).
func (s *session) cmdSort(cmd imap.Command) error {
	c := cmd.(*imap.Sort)
	if err := s.checkContextTag(c.Return, c.Tag); err != nil {
		return err
	}
	savedBefore := s.saved
	items, prog, err := s.sortItems(c.Key, c.Charset, imapsearch.SortNeedsSummary(c.Criteria))
	if err != nil {
		return err
	}
	imapsearch.Sort(items, c.Criteria)
	results := make([]imapsearch.Result, len(items))
	for i, it := range items {
		results[i] = imapsearch.Result{Seq: it.Seq, UID: it.UID, ModSeq: it.ModSeq}
	}
	if err := s.writeSearchResults(c.Base(), "SORT", c.Return, results, true, prog.HasModSeq()); err != nil {
		return err
	}
	if c.Return.Update {
		s.startContext(c.Base(), c.Key, c.Charset, savedBefore, prog, nil, c.Criteria, items)
	}
	return nil
}

// cmdThread: THREAD and UID THREAD (RFC 5256 §3).
func (s *session) cmdThread(cmd imap.Command) error {
	c := cmd.(*imap.Thread)
	if c.Algorithm != imapsearch.ThreadOrderedSubject && c.Algorithm != imapsearch.ThreadReferences {
		return bad("", "Unsupported threading algorithm")
	}
	items, _, err := s.sortItems(c.Key, c.Charset, true)
	if err != nil {
		return err
	}
	threads, err := imapsearch.BuildThreads(items, c.Algorithm)
	if err != nil {
		return bad("", "Unsupported threading algorithm")
	}
	return imapsearch.WriteThread(s.enc, threads, c.UID)
}
