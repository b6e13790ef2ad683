package imapsearch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/encoding"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// Need says what a compiled program reads of a message, so the server
// loads no more from the store than that. The levels are ordered: each
// includes the ones before it.
type Need uint8

// Data needs, cheapest first.
const (
	// NeedMeta: the sequence number, \Recent and the store.Message
	// metadata (UID, flags, dates, size, MODSEQ, EMAILID); no Summary and
	// no body. Flag, UID, date, size and MODSEQ searches need only this.
	NeedMeta Need = iota
	// NeedSummary: the parse result as well (envelope and Date header
	// for FROM, TO, CC, BCC, SUBJECT, SENT*).
	NeedSummary
	// NeedHeader: the summary and the header section of the stored
	// message (HEADER): Source.Body is opened, and only the bytes before
	// Summary.Root.BodyStart are read.
	NeedHeader
	// NeedBody: the summary and the whole stored message (BODY, TEXT).
	NeedBody
)

// String returns the level's name, for logs.
func (n Need) String() string {
	switch n {
	case NeedMeta:
		return "meta"
	case NeedSummary:
		return "summary"
	case NeedHeader:
		return "header"
	case NeedBody:
		return "body"
	}
	return fmt.Sprintf("need(%d)", uint8(n))
}

// Source loads the parts of a message a program needs beyond its
// metadata. Match calls it only when the program reaches a key that needs
// the data, at most once per method and message.
type Source interface {
	// Summary returns the message's parse result.
	Summary() (*message.Summary, error)
	// Body returns the stored message. The caller of Match owns it and
	// closes it after Match returns; Match never closes it.
	Body() (imap.MessageSource, error)
}

// Message is one message as a search sees it. A server reuses one Message
// for a whole search, setting its fields for each message in turn, so a
// flags-only search allocates nothing per message.
type Message struct {
	// Seq is the message sequence number in the session's view.
	Seq uint32
	// Meta is the message's metadata. If Meta.Summary is set it is used
	// and Source.Summary is not called.
	Meta *store.Message
	// Recent reports the RFC 3501 \Recent flag for this session (always
	// false for IMAP4rev2 sessions, RFC 9051 removes it).
	Recent bool
	// EmailID is the EMAILID as FETCH reports it (RFC 8474 §5.1); ""
	// means Meta.EmailID.
	EmailID string
	// ThreadID is the THREADID as FETCH reports it (RFC 8474 §5.2); ""
	// means the server has none, and THREADID then matches nothing.
	ThreadID string
	// Source loads the summary and body on demand. It may be nil when
	// the program's Need is NeedMeta.
	Source Source
}

// Options are the per-command context of a search.
type Options struct {
	// Charset is the CHARSET of the command ("" for none). Compile
	// converts the search strings from it to UTF-8.
	Charset string
	// NumMessages is the number of messages in the session's view: the
	// value of "*" in a sequence set (RFC 9051 §9 seq-number).
	NumMessages uint32
	// MaxUID is the largest UID in the session's view: the value of "*"
	// in a UID set.
	MaxUID mail.UID
	// Saved is the saved search result "$" as UIDs (RFC 5182); empty if
	// nothing was saved.
	Saved mail.UIDSet
	// Location, when set, is the time zone whose calendar the INTERNALDATE
	// and save date keys use (BEFORE, ON, SINCE, SAVED*). When nil, each
	// timestamp's own zone is used: the offset the message was appended or
	// delivered with, which the store keeps, so a message delivered at
	// 23:30 +0200 is "on" that day for every client wherever the server
	// runs.
	Location *time.Location
	// Now is the time OLDER and YOUNGER count from (RFC 5032); zero means
	// time.Now() at Compile.
	Now time.Time
	// NoSaveDate reports that the mailbox does not record save dates:
	// SAVEDATESUPPORTED then matches nothing and the SAVED* keys use the
	// internal date (RFC 8514 §4.3). When it is false, messages whose
	// SaveDate is zero use their internal date too.
	NoSaveDate bool
}

// Program is a compiled search program. It is not safe for concurrent
// use: it keeps per-message state between the keys of one Match.
type Program struct {
	root   node
	need   Need
	modseq bool
	// positional: a sequence set, or "*" in a UID set; timed: OLDER or
	// YOUNGER (see DependsOnPositions, DependsOnTime).
	positional bool
	timed      bool
	loc        *time.Location
	now        time.Time
	saveDOK    bool
	st         evalState
	buf        []byte // body scan buffer, allocated on first use
}

// node is one compiled search key.
type node struct {
	op   imap.SearchOp
	kids []node
	need Need
	// flag keys
	flag   string
	recent bool // SearchFlag/SearchNoFlag of `\Recent`
	// string keys
	pat   *pattern
	field string
	// date keys
	day day
	// numeric keys
	num uint64
	// set keys: set of sequence numbers or UIDs, plus "$"
	set   mail.UIDSet
	saved mail.UIDSet
	// EMAILID / THREADID
	id string
}

// evalState caches what one Match has loaded.
type evalState struct {
	m          *Message
	sum        *message.Summary
	sumDone    bool
	body       imap.MessageSource
	bodyDone   bool
	hdr        message.Header
	hdrDone    bool
	htext      *HeaderText
	htextDone  bool
	sent       day
	sentDone   bool
	summaryErr error
}

// Compile prepares a search program for evaluation. Search strings are
// converted from opt.Charset; an unknown charset gives an error wrapping
// ErrBadCharset.
func Compile(key imap.SearchKey, opt Options) (*Program, error) {
	dec, err := charsetDecoder(opt.Charset)
	if err != nil {
		return nil, err
	}
	p := &Program{loc: opt.Location, now: opt.Now, saveDOK: !opt.NoSaveDate}
	if p.now.IsZero() {
		p.now = time.Now()
	}
	c := compiler{opt: opt, dec: dec, p: p}
	p.root, err = c.compile(key, 0)
	if err != nil {
		return nil, err
	}
	p.need = p.root.need
	return p, nil
}

// maxDepth bounds the nesting of a program; the parser bounds it too.
const maxDepth = 200

type compiler struct {
	opt Options
	dec *encoding.Decoder
	p   *Program
}

func (c *compiler) text(s string) (*pattern, error) {
	var t string
	var err error
	if c.dec == nil {
		t = toValidUTF8(s)
	} else {
		t, err = c.dec.String(s)
		if err != nil {
			return nil, fmt.Errorf("convert search string from %s: %w", c.opt.Charset, ErrBadCharset)
		}
		t = toValidUTF8(t)
	}
	return newPattern(t), nil
}

func (c *compiler) compile(k imap.SearchKey, depth int) (node, error) {
	if depth > maxDepth {
		return node{}, errors.New("search program nested too deeply")
	}
	n := node{op: k.Op, need: NeedMeta}
	switch k.Op {
	case imap.SearchAll, imap.SearchRecent, imap.SearchNew, imap.SearchOld,
		imap.SearchSaveDateSupported:
	case imap.SearchAnd, imap.SearchOr, imap.SearchNot:
		if k.Op == imap.SearchOr && len(k.Keys) != 2 || k.Op == imap.SearchNot && len(k.Keys) != 1 {
			return node{}, fmt.Errorf("search key %d: wrong number of operands", k.Op)
		}
		n.kids = make([]node, len(k.Keys))
		for i, sub := range k.Keys {
			kid, err := c.compile(sub, depth+1)
			if err != nil {
				return node{}, err
			}
			n.kids[i] = kid
			n.need = max(n.need, kid.need)
		}
		// Evaluate cheap operands first: AND and OR short-circuit, so a
		// flag test can spare a body scan. The keys have no side effects,
		// so the order does not change the result.
		slices.SortStableFunc(n.kids, func(a, b node) int { return cmp.Compare(a.need, b.need) })
	case imap.SearchSeq, imap.SearchUID:
		star := c.opt.NumMessages
		if k.Op == imap.SearchUID {
			star = uint32(c.opt.MaxUID)
		}
		n.set = imap.SeqSet{Ranges: k.Set.Ranges}.Resolve(star, nil)
		if k.Op == imap.SearchSeq && len(k.Set.Ranges) > 0 || k.Set.HasStar() {
			c.p.positional = true
		}
		if k.Set.Saved {
			// RFC 5182 §2.1: "$" is the saved set of messages, whether
			// it appears where sequence numbers or UIDs are expected.
			n.saved = c.opt.Saved
			if n.saved == nil {
				n.saved = mail.UIDSet{}
			}
		}
	case imap.SearchFlag, imap.SearchNoFlag:
		n.flag = mail.CanonicalFlag(k.Text)
		n.recent = strings.EqualFold(k.Text, `\Recent`)
	case imap.SearchBcc, imap.SearchCc, imap.SearchFrom, imap.SearchTo, imap.SearchSubject:
		p, err := c.text(k.Text)
		if err != nil {
			return node{}, err
		}
		n.pat, n.need = p, NeedSummary
	case imap.SearchHeader:
		p, err := c.text(k.Text)
		if err != nil {
			return node{}, err
		}
		n.pat, n.field, n.need = p, k.Field, NeedHeader
	case imap.SearchBody, imap.SearchText:
		p, err := c.text(k.Text)
		if err != nil {
			return node{}, err
		}
		n.pat, n.need = p, NeedBody
	case imap.SearchBefore, imap.SearchOn, imap.SearchSince,
		imap.SearchSavedBefore, imap.SearchSavedOn, imap.SearchSavedSince:
		n.day = keyDay(k.Date)
	case imap.SearchSentBefore, imap.SearchSentOn, imap.SearchSentSince:
		n.day, n.need = keyDay(k.Date), NeedSummary
	case imap.SearchLarger, imap.SearchSmaller:
		n.num = k.Number
	case imap.SearchOlder, imap.SearchYounger:
		n.num = k.Number
		c.p.timed = true
	case imap.SearchModSeq:
		// RFC 7162 §3.1.5: postfach keeps one MODSEQ per message, not one
		// per flag, so the entry name and type are ignored, as the RFC
		// allows.
		n.num = k.Number
		c.p.modseq = true
	case imap.SearchEmailID, imap.SearchThreadID:
		n.id = k.Text
	default:
		return node{}, fmt.Errorf("unknown search key %d", k.Op)
	}
	return n, nil
}

// Need returns what the program reads of each message.
func (p *Program) Need() Need { return p.need }

// HasModSeq reports whether the program contains a MODSEQ key: the SEARCH
// or ESEARCH response then carries the highest MODSEQ of the messages it
// returns (RFC 7162 §3.1.5, RFC 4731 §3.2).
func (p *Program) HasModSeq() bool { return p.modseq }

// DependsOnPositions reports whether a message's match can change when
// other messages arrive or are expunged: the program has message
// sequence numbers, or "*" in a sequence or UID set, resolved for the
// mailbox as it was at Compile. "$" alone is a set of UIDs and does not
// count. A search context (RFC 5267 §4.3) compiles such a program again
// and re-runs it after such changes; every other program is evaluated on
// the changed messages only.
func (p *Program) DependsOnPositions() bool { return p.positional }

// DependsOnTime reports whether the program has OLDER or YOUNGER (RFC
// 5032), whose result changes as time passes without any change to the
// mailbox.
func (p *Program) DependsOnTime() bool { return p.timed }

// ReleaseBuffers drops the buffer body searches scan through (32 KiB),
// for a program that is kept between uses (a search context); the next
// body search allocates it again.
func (p *Program) ReleaseBuffers() { p.buf = nil }

// Match reports whether m matches the program. It loads the summary and
// body through m.Source only when a key needs them, after the cheaper keys
// of an AND or OR have been evaluated. An error means a load or read
// failed; the message's match is then unknown.
func (p *Program) Match(ctx context.Context, m *Message) (bool, error) {
	p.st = evalState{m: m}
	ok, err := p.eval(ctx, &p.root)
	p.st = evalState{}
	return ok, err
}

func (p *Program) eval(ctx context.Context, n *node) (bool, error) {
	m := p.st.m
	meta := m.Meta
	switch n.op {
	case imap.SearchAll:
		return true, nil
	case imap.SearchAnd:
		for i := range n.kids {
			ok, err := p.eval(ctx, &n.kids[i])
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case imap.SearchOr:
		for i := range n.kids {
			ok, err := p.eval(ctx, &n.kids[i])
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case imap.SearchNot:
		ok, err := p.eval(ctx, &n.kids[0])
		return !ok && err == nil, err
	case imap.SearchSeq:
		return n.set.Contains(mail.UID(m.Seq)) || n.saved != nil && n.saved.Contains(meta.UID), nil
	case imap.SearchUID:
		return n.set.Contains(meta.UID) || n.saved != nil && n.saved.Contains(meta.UID), nil
	case imap.SearchFlag:
		if n.recent {
			return m.Recent, nil
		}
		return hasFlag(meta.Flags, n.flag), nil
	case imap.SearchNoFlag:
		if n.recent {
			return !m.Recent, nil
		}
		return !hasFlag(meta.Flags, n.flag), nil
	case imap.SearchRecent:
		return m.Recent, nil
	case imap.SearchNew:
		// RFC 3501 §6.4.4: NEW is RECENT UNSEEN.
		return m.Recent && !hasFlag(meta.Flags, mail.FlagSeen), nil
	case imap.SearchOld:
		return !m.Recent, nil
	case imap.SearchBefore:
		return dayOf(meta.InternalDate, p.loc) < n.day, nil
	case imap.SearchOn:
		return dayOf(meta.InternalDate, p.loc) == n.day, nil
	case imap.SearchSince:
		return dayOf(meta.InternalDate, p.loc) >= n.day, nil
	case imap.SearchSavedBefore:
		return p.saveDay(meta) < n.day, nil
	case imap.SearchSavedOn:
		return p.saveDay(meta) == n.day, nil
	case imap.SearchSavedSince:
		return p.saveDay(meta) >= n.day, nil
	case imap.SearchSaveDateSupported:
		return p.saveDOK, nil
	case imap.SearchLarger:
		return meta.Size >= 0 && uint64(meta.Size) > n.num, nil
	case imap.SearchSmaller:
		return meta.Size < 0 || uint64(meta.Size) < n.num, nil
	case imap.SearchOlder:
		// RFC 5032 §3: internal date older than the interval.
		return p.now.Sub(meta.InternalDate) > seconds(n.num), nil
	case imap.SearchYounger:
		// RFC 5032 §3: internal date within the interval.
		return p.now.Sub(meta.InternalDate) <= seconds(n.num), nil
	case imap.SearchModSeq:
		return uint64(meta.ModSeq) >= n.num, nil
	case imap.SearchEmailID:
		id := m.EmailID
		if id == "" {
			id = meta.EmailID
		}
		return id != "" && id == n.id, nil
	case imap.SearchThreadID:
		// RFC 8474 §5.2: without a THREADID nothing matches.
		return m.ThreadID != "" && m.ThreadID == n.id, nil
	case imap.SearchSentBefore, imap.SearchSentOn, imap.SearchSentSince:
		d, err := p.sentDay()
		if err != nil || d == 0 {
			// A message without a (parseable) Date header has no sent
			// date: it is neither before, on nor since any day.
			return false, err
		}
		switch n.op {
		case imap.SearchSentBefore:
			return d < n.day, nil
		case imap.SearchSentOn:
			return d == n.day, nil
		}
		return d >= n.day, nil
	case imap.SearchFrom, imap.SearchTo, imap.SearchCc, imap.SearchBcc, imap.SearchSubject:
		return p.matchEnvelope(n)
	case imap.SearchHeader:
		return p.matchHeader(ctx, n)
	case imap.SearchBody:
		return p.matchBody(ctx, n.pat)
	case imap.SearchText:
		ok, err := p.matchTopHeader(ctx, n.pat)
		if ok || err != nil {
			return ok, err
		}
		return p.matchBody(ctx, n.pat)
	}
	return false, fmt.Errorf("unknown search key %d", n.op)
}

// seconds converts an interval in seconds, saturating.
func seconds(n uint64) time.Duration {
	const maxSec = uint64(1<<63-1) / uint64(time.Second)
	if n > maxSec {
		n = maxSec
	}
	return time.Duration(n) * time.Second
}

// saveDay is the date of the save date, or of the internal date when the
// mailbox or message has none (RFC 8514 §4.3).
func (p *Program) saveDay(meta *store.Message) day {
	if !p.saveDOK || meta.SaveDate.IsZero() {
		return dayOf(meta.InternalDate, p.loc)
	}
	return dayOf(meta.SaveDate, p.loc)
}

// hasFlag reports whether fl holds f, comparing case-insensitively
// without allocating. System flags are stored in canonical spelling, so
// the exact comparison nearly always decides.
func hasFlag(fl mail.Flags, f string) bool {
	for _, x := range fl {
		if x == f || len(x) == len(f) && strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

// summary loads the message's summary once per Match.
func (p *Program) summary() (*message.Summary, error) {
	st := &p.st
	if st.sumDone {
		return st.sum, st.summaryErr
	}
	st.sumDone = true
	if s := st.m.Meta.Summary; s != nil {
		st.sum = s
		return s, nil
	}
	if st.m.Source == nil {
		st.summaryErr = errors.New("search needs the message summary but no source was given")
		return nil, st.summaryErr
	}
	s, err := st.m.Source.Summary()
	if err == nil && s == nil {
		err = errors.New("message source returned no summary")
	}
	if err != nil {
		st.summaryErr = fmt.Errorf("load summary of UID %d: %w", st.m.Meta.UID, err)
		return nil, st.summaryErr
	}
	st.sum = s
	return s, nil
}

// sentDay returns the cached sent date.
func (p *Program) sentDay() (day, error) {
	if !p.st.sentDone {
		sum, err := p.summary()
		if err != nil {
			return 0, err
		}
		p.st.sent, p.st.sentDone = sentDay(sum), true
	}
	return p.st.sent, nil
}
