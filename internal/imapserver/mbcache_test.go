package imapserver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/postfach/postfach/internal/imapsearch"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// TestMsgListApply checks the chunked message list against a plain map
// over random updates, and that an update shares the chunks it does not
// touch.
func TestMsgListApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[mail.UID]mail.ModSeq{}
	l := newMsgList(nil)
	next := mail.UID(1)
	for round := 0; round < 400; round++ {
		var changed []store.Message
		var gone mail.UIDSet
		modseq := mail.ModSeq(round + 1)
		// New messages at the end, flag changes and expunges anywhere.
		for range rng.IntN(40) {
			changed = append(changed, store.Message{UID: next, ModSeq: modseq})
			next++
		}
		for u := range want {
			switch rng.IntN(20) {
			case 0:
				changed = append(changed, store.Message{UID: u, ModSeq: modseq})
			case 1:
				gone = gone.Append(u)
			}
		}
		slices.SortFunc(changed, func(a, b store.Message) int { return int(a.UID) - int(b.UID) })
		// gone was built from map order: normalise.
		gone = gone.Normalize()
		old := l
		l = l.apply(changed, gone)
		for _, m := range changed {
			want[m.UID] = m.ModSeq
		}
		for _, r := range gone {
			for u := r.Lo; u <= r.Hi; u++ {
				delete(want, u)
			}
		}
		if l.len() != len(want) {
			t.Fatalf("round %d: %d messages, want %d", round, l.len(), len(want))
		}
		var prev mail.UID
		l.each(nil, func(m *store.Message) bool {
			if m.UID <= prev || want[m.UID] != m.ModSeq {
				t.Fatalf("round %d: UID %d (after %d) MODSEQ %d, want %d", round, m.UID, prev, m.ModSeq, want[m.UID])
			}
			prev = m.UID
			return true
		})
		for u, ms := range want {
			if m := l.find(u); m == nil || m.ModSeq != ms {
				t.Fatalf("round %d: find(%d) = %v", round, u, m)
			}
		}
		if l.find(next) != nil || l.find(0) != nil {
			t.Fatalf("round %d: found a UID that is not there", round)
		}
		// A window of UIDs gives exactly the messages in it.
		lo := mail.UID(rng.IntN(int(next) + 1))
		win := mail.UIDSet{{Lo: lo, Hi: lo + mail.UID(rng.IntN(50))}, {Lo: lo + 60, Hi: lo + 70}}
		n := 0
		l.each(win, func(m *store.Message) bool {
			if !win.Contains(m.UID) {
				t.Fatalf("each(%v) gave UID %d", win, m.UID)
			}
			n++
			return true
		})
		for u := range want {
			if win.Contains(u) {
				n--
			}
		}
		if n != 0 {
			t.Fatalf("round %d: each(%v) count off by %d", round, win, n)
		}
		if len(changed) == 0 && gone.IsEmpty() && len(old.chunks) > 0 && &old.chunks[0][0] != &l.chunks[0][0] {
			t.Fatalf("round %d: an empty update copied a chunk", round)
		}
	}
	// A change of one message copies one chunk only.
	if len(l.chunks) < 3 {
		t.Fatalf("only %d chunks", len(l.chunks))
	}
	m := *l.chunks[1][0]
	m.ModSeq++
	l2 := l.apply([]store.Message{m}, nil)
	if l.chunks[1][0].ModSeq == m.ModSeq || l2.find(m.UID).ModSeq != m.ModSeq {
		t.Fatal("the change reached the old list, or not the new one")
	}
	if &l2.chunks[0][0] != &l.chunks[0][0] || &l2.chunks[2][0] != &l.chunks[2][0] || &l2.chunks[1][0] == &l.chunks[1][0] {
		t.Fatal("a change to chunk 1 did not share chunks 0 and 2 (or did not copy chunk 1)")
	}
}

// TestBlobCacheBudget: the cache of summaries and prepared text stays
// within its budget, parts added later included, and keeps what is used
// (CLOCK spares an entry used since the hand passed).
func TestBlobCacheBudget(t *testing.T) {
	c := newBlobCache(64 << 10)
	sum := &message.Summary{Preview: strings.Repeat("x", 500)}
	hot := c.putSummary("hot", sum)
	for i := range 1000 {
		e := c.putSummary(strconv.Itoa(i), sum)
		if e == nil {
			t.Fatal("no entry")
		}
		c.setKeys(e, imapsearch.NewKeys(sum))
		if c.summary("hot") == nil {
			t.Fatalf("after %d puts the entry in use was dropped", i)
		}
		c.mu.Lock()
		n, count := int64(0), 0
		for _, e := range c.entries {
			n += e.size
			count++
		}
		bytes := c.bytes
		c.mu.Unlock()
		if n != bytes || bytes > c.max || count != len(c.ring)-c.holes {
			t.Fatalf("after %d puts: %d bytes counted, %d in the entries, budget %d; %d entries, %d in the ring", i, bytes, n, c.max, count, len(c.ring))
		}
	}
	if c.summary("0") != nil {
		t.Fatal("the oldest unused entry is still there")
	}
	if !hot.used.Load() && c.lookup("hot") == nil {
		t.Fatal("hot entry gone")
	}
	// A part added to an evicted entry is not counted.
	gone := c.putSummary("gone", sum)
	for i := range 200 {
		c.putSummary("x"+strconv.Itoa(i), sum)
	}
	if c.lookup("gone") != nil {
		t.Fatal("entry not evicted")
	}
	before := c.bytes
	c.setKeys(gone, imapsearch.NewKeys(sum))
	if c.bytes != before {
		t.Fatal("an evicted entry's part was counted")
	}
	var nilCache *blobCache
	if nilCache.putSummary("x", sum) != nil || nilCache.summary("x") != nil {
		t.Fatal("a nil cache holds something")
	}
}

// sharedModel is what a test knows of the messages of one mailbox, to
// check the server's answers against the store.
type sharedModel struct {
	t       *testing.T
	ts      *testServer
	acct    store.AccountID
	mb      store.MailboxID
	subject map[mail.UID]string
	body    map[mail.UID]string
}

// storeState reads the mailbox from the store: UID to message.
func (m *sharedModel) storeState() map[mail.UID]store.Message {
	m.t.Helper()
	out := map[mail.UID]store.Message{}
	for msg, err := range m.ts.st.Messages(context.Background(), m.acct, m.mb, mail.UIDSet{{Lo: 1, Hi: mail.MaxUID}}, store.ListOptions{}) {
		if err != nil {
			m.t.Fatal(err)
		}
		out[msg.UID] = *msg
	}
	return out
}

var (
	fetchUIDRE    = regexp.MustCompile(`UID (\d+)`)
	fetchFlagsRE  = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
	fetchModSeqRE = regexp.MustCompile(`MODSEQ \((\d+)\)`)
	copyUIDRE     = regexp.MustCompile(`COPYUID \d+ (\d+) (\d+)`)
	appendUIDRE   = regexp.MustCompile(`APPENDUID \d+ (\d+)`)
	seqUIDRE      = regexp.MustCompile(`^\* \d+ FETCH \(UID \d+\)$`)
)

// flagsOf returns the flags of a FETCH FLAGS list without \Recent, sorted.
func flagsOf(list string) string {
	var out []string
	for _, f := range strings.Fields(list) {
		if f != `\Recent` {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func storeFlagsText(fl mail.Flags) string {
	out := slices.Clone([]string(fl))
	slices.Sort(out)
	return strings.Join(out, " ")
}

// searchResult parses the UIDs of a SEARCH or ESEARCH (ALL) response.
func searchResult(t *testing.T, lines []string) mail.UIDSet {
	var out mail.UIDSet
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "* SEARCH"):
			for _, f := range strings.Fields(l)[2:] {
				n, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("bad SEARCH line %q", l)
				}
				out = out.Append(mail.UID(n))
			}
		case strings.HasPrefix(l, "* ESEARCH"):
			_, all, ok := strings.Cut(l, " ALL ")
			if !ok {
				continue
			}
			for _, r := range strings.Split(all, ",") {
				lo, hi, _ := strings.Cut(r, ":")
				a, _ := strconv.Atoi(lo)
				b := a
				if hi != "" {
					b, _ = strconv.Atoi(hi)
				}
				for u := a; u <= b; u++ {
					out = out.Append(mail.UID(u))
				}
			}
		}
	}
	return out
}

// TestMailboxCacheAgainstStore runs four sessions on one mailbox (IMAP4rev2
// with QRESYNC, IMAP4rev2, CONDSTORE, plain IMAP4rev1) and a delivery
// path, in a random sequence of STORE of flags and keywords, EXPUNGE,
// APPEND, COPY and MOVE into the mailbox, deliveries, and checks:
// after each, a session runs UID SEARCH or UID FETCH, and its answer
// must be exactly what the store holds now for the messages the session
// knows (every change before was acknowledged, so none may be missing:
// the session's own writes and the others'). Each session's view is the
// store's UIDs after its last command (UID commands, NOOP and APPEND
// report expunges). Then the sessions must have been answered from the
// mailbox cache, and catch-ups from its log.
func TestMailboxCacheAgainstStore(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			testMailboxCacheAgainstStore(t, seed, 150, true)
		})
	}
	// The same answers with the caches turned off (imap.cache_messages
	// and imap.cache_size 0).
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		testMailboxCacheAgainstStore(t, 4, 100, false)
	})
}

var (
	cacheSubjects = []string{"alpha report", "bravo budget", "charlie review", "delta release", "echo invoice"}
	cacheBodies   = []string{"kilo lima", "mike november", "oscar papa", "quebec romeo", "sierra tango"}
	cacheFlags    = []string{`\Seen`, `\Flagged`, `\Answered`, `$Label1`, `$Label2`, `$Forwarded`, `\Deleted`}
)

func testMailboxCacheAgainstStore(t *testing.T, seed uint64, steps int, caches bool) {
	ts := newTestServer(t, func(o *Options) {
		if !caches {
			o.CacheMessages, o.CacheBytes = -1, -1
		}
	})
	acct := ts.addUser("alice@example.org")
	ctx := context.Background()
	mb, err := ts.st.Mailbox(ctx, acct, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	m := &sharedModel{t: t, ts: ts, acct: acct, mb: mb.ID, subject: map[mail.UID]string{}, body: map[mail.UID]string{}}
	rng := rand.New(rand.NewPCG(seed, 7))
	newContent := func() (string, string) {
		return cacheSubjects[rng.IntN(len(cacheSubjects))] + " " + strconv.Itoa(rng.IntN(1000)), cacheBodies[rng.IntN(len(cacheBodies))]
	}
	deliver := func() {
		subj, body := newContent()
		var flags []string
		if rng.IntN(3) == 0 {
			flags = append(flags, cacheFlags[rng.IntN(len(cacheFlags))])
		}
		u := ts.deliver(acct, "INBOX", msg(subj, body), flags...)
		m.subject[u], m.body[u] = subj, body
	}
	for range 25 {
		deliver()
	}
	type sess struct {
		c    *client
		view map[mail.UID]bool
		name string
	}
	var ss []*sess
	for i, setup := range []string{"ENABLE IMAP4rev2 QRESYNC", "ENABLE IMAP4rev2", "ENABLE CONDSTORE", ""} {
		c := ts.login("alice@example.org")
		if setup != "" {
			c.ok("E " + setup)
		}
		c.ok("S SELECT INBOX")
		ss = append(ss, &sess{c: c, name: fmt.Sprintf("session %d (%s)", i, setup)})
	}
	tagN := 0
	// run runs a command on a session; afterwards the session knows every
	// message in the store.
	run := func(s *sess, cmd string) []string {
		tagN++
		tag := "t" + strconv.Itoa(tagN)
		lines := s.c.do(tag + " " + cmd)
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, tag+" OK") {
			t.Fatalf("%s: %s: %s", s.name, cmd, strings.Join(lines, "\n"))
		}
		s.view = map[mail.UID]bool{}
		for u := range m.storeState() {
			s.view[u] = true
		}
		return lines
	}
	known := func(s *sess) []mail.UID {
		var out []mail.UID
		for u := range s.view {
			out = append(out, u)
		}
		slices.Sort(out)
		return out
	}
	for _, s := range ss {
		run(s, "NOOP")
	}
	pick := func(s *sess) mail.UID {
		k := known(s)
		if len(k) == 0 {
			return 0
		}
		return k[rng.IntN(len(k))]
	}
	check := func(s *sess, step int) {
		state := m.storeState()
		switch rng.IntN(5) {
		case 4: // sequence numbers: the view holds what it should
			before := known(s)
			lines := run(s, "FETCH 1:* (UID)")
			var got, want []string
			for _, l := range lines {
				if seqUIDRE.MatchString(l) {
					got = append(got, l)
				}
			}
			for i, u := range before {
				if _, ok := state[u]; ok {
					want = append(want, fmt.Sprintf("* %d FETCH (UID %d)", i+1, u))
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d, %s: FETCH 1:* (UID) gave\n%s\nwant\n%s", step, s.name, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// The FETCH held expunges back: report them.
			run(s, "NOOP")
		case 0: // FETCH of flags and MODSEQ of every message
			before := known(s)
			lines := run(s, "UID FETCH 1:* (FLAGS MODSEQ RFC822.SIZE)")
			got := map[mail.UID]string{}
			for _, l := range lines {
				if !strings.Contains(l, "RFC822.SIZE") {
					continue // an update, not the answer
				}
				u, _ := strconv.Atoi(fetchUIDRE.FindStringSubmatch(l)[1])
				ms := fetchModSeqRE.FindStringSubmatch(l)[1]
				got[mail.UID(u)] = flagsOf(fetchFlagsRE.FindStringSubmatch(l)[1]) + " / " + ms
			}
			want := map[mail.UID]string{}
			for _, u := range before {
				if sm, ok := state[u]; ok {
					want[u] = storeFlagsText(sm.Flags) + " / " + strconv.FormatUint(uint64(sm.ModSeq), 10)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("step %d, %s: FETCH returned %d messages, the store has %d of those it knows:\n%v\n%v", step, s.name, len(got), len(want), got, want)
			}
			for u, w := range want {
				if got[u] != w {
					t.Fatalf("step %d, %s: UID %d: FETCH says %q, the store %q", step, s.name, u, got[u], w)
				}
			}
		case 1: // FETCH of the envelope of one message
			u := pick(s)
			if u == 0 {
				return
			}
			lines := run(s, fmt.Sprintf("UID FETCH %d (ENVELOPE)", u))
			if _, ok := state[u]; !ok {
				return
			}
			found := false
			for _, l := range lines {
				if strings.Contains(l, "ENVELOPE") && strings.Contains(l, fmt.Sprintf("UID %d ", u)) {
					found = true
					if !strings.Contains(l, `"`+m.subject[u]+`"`) {
						t.Fatalf("step %d, %s: envelope of UID %d is %s, want subject %q", step, s.name, u, l, m.subject[u])
					}
				}
			}
			if !found {
				t.Fatalf("step %d, %s: no envelope of UID %d: %v", step, s.name, u, lines)
			}
		default: // a search
			before := known(s)
			var crit string
			var match func(u mail.UID, sm store.Message) bool
			switch rng.IntN(7) {
			case 0:
				crit, match = "ALL", func(mail.UID, store.Message) bool { return true }
			case 1:
				crit, match = "UNSEEN", func(_ mail.UID, sm store.Message) bool { return !sm.Flags.Has(mail.FlagSeen) }
			case 2:
				f := cacheFlags[rng.IntN(len(cacheFlags))]
				if f[0] == '\\' {
					crit = strings.ToUpper(f[1:])
				} else {
					crit = "KEYWORD " + f
				}
				match = func(_ mail.UID, sm store.Message) bool { return sm.Flags.Has(f) }
			case 3:
				w := strings.Fields(cacheSubjects[rng.IntN(len(cacheSubjects))])[0]
				crit, match = "SUBJECT "+w, func(u mail.UID, _ store.Message) bool { return strings.Contains(m.subject[u], w) }
			case 4:
				w := strings.Fields(cacheSubjects[rng.IntN(len(cacheSubjects))])[1]
				crit, match = "HEADER Subject "+w, func(u mail.UID, _ store.Message) bool { return strings.Contains(m.subject[u], w) }
			case 5:
				w := strings.Fields(cacheBodies[rng.IntN(len(cacheBodies))])[0]
				crit, match = "TEXT "+w, func(u mail.UID, _ store.Message) bool { return strings.Contains(m.body[u], w) }
			default:
				crit, match = "UNDELETED FLAGGED", func(_ mail.UID, sm store.Message) bool {
					return !sm.Flags.Has(mail.FlagDeleted) && sm.Flags.Has(mail.FlagFlagged)
				}
			}
			got := searchResult(t, run(s, "UID SEARCH "+crit))
			var want mail.UIDSet
			for _, u := range before {
				if sm, ok := state[u]; ok && match(u, sm) {
					want = want.Append(u)
				}
			}
			if got.String() != want.String() {
				t.Fatalf("step %d, %s: UID SEARCH %s gave %s, the store %s", step, s.name, crit, got, want)
			}
		}
	}
	for step := 0; step < steps; step++ {
		s := ss[rng.IntN(len(ss))]
		switch op := rng.IntN(11); op {
		case 0, 1, 2: // STORE
			if u := pick(s); u != 0 {
				sign := []string{"+", "-"}[rng.IntN(2)]
				silent := []string{"", ".SILENT"}[rng.IntN(2)]
				run(s, fmt.Sprintf("UID STORE %d %sFLAGS%s (%s)", u, sign, silent, cacheFlags[rng.IntN(len(cacheFlags))]))
			}
		case 3: // EXPUNGE of one message, or of all with \Deleted
			u := pick(s)
			if u == 0 {
				break
			}
			run(s, fmt.Sprintf(`UID STORE %d +FLAGS.SILENT (\Deleted)`, u))
			if rng.IntN(2) == 0 {
				run(s, fmt.Sprintf("UID EXPUNGE %d", u))
				break
			}
			// Others' \Deleted too, and a new message's the session
			// has not been told of.
			if rng.IntN(2) == 0 {
				subj, body := newContent()
				nu := ts.deliver(acct, "INBOX", msg(subj, body), `\Deleted`)
				m.subject[nu], m.body[nu] = subj, body
			}
			run(s, "EXPUNGE")
			for u, sm := range m.storeState() {
				if sm.Flags.Has(mail.FlagDeleted) {
					t.Fatalf("step %d, %s: UID %d has \\Deleted after EXPUNGE", step, s.name, u)
				}
			}
		case 4: // APPEND
			subj, body := newContent()
			data := strings.ReplaceAll(msg(subj, body), "\n", "\r\n")
			lines := run(s, fmt.Sprintf("APPEND INBOX (%s) {%d+}\r\n%s", cacheFlags[rng.IntN(len(cacheFlags))], len(data), data))
			mm := appendUIDRE.FindStringSubmatch(lines[len(lines)-1])
			if mm == nil {
				t.Fatalf("no APPENDUID: %v", lines)
			}
			u, _ := strconv.Atoi(mm[1])
			m.subject[mail.UID(u)], m.body[mail.UID(u)] = subj, body
		case 5: // COPY or MOVE into the mailbox itself
			if u := pick(s); u != 0 {
				cmd := []string{"COPY", "MOVE"}[rng.IntN(2)]
				lines := run(s, fmt.Sprintf("UID %s %d INBOX", cmd, u))
				for _, l := range lines {
					if mm := copyUIDRE.FindStringSubmatch(l); mm != nil {
						src, _ := strconv.Atoi(mm[1])
						dst, _ := strconv.Atoi(mm[2])
						m.subject[mail.UID(dst)], m.body[mail.UID(dst)] = m.subject[mail.UID(src)], m.body[mail.UID(src)]
					}
				}
			}
		case 6: // a delivery
			deliver()
		case 7: // a change outside IMAP (another server, POP3, an admin)
			if u := pick(s); u != 0 {
				set := mail.NewUIDSet(u)
				if rng.IntN(3) == 0 {
					if _, err := ts.st.Expunge(ctx, acct, mb.ID, set, false); err != nil {
						t.Fatal(err)
					}
				} else if _, err := ts.st.StoreFlags(ctx, acct, mb.ID, store.StoreFlagsRequest{UIDs: set, Op: store.FlagsAdd,
					Flags: mail.NewFlags(cacheFlags[rng.IntN(len(cacheFlags))])}); err != nil {
					t.Fatal(err)
				}
			}
		default:
			check(s, step)
			continue
		}
		// Another session looks at once, without a NOOP first (or
		// several changes come one after the other).
		if rng.IntN(2) == 0 {
			check(ss[rng.IntN(len(ss))], step)
		}
	}
	if !caches {
		if ts.srv.caches != nil || ts.srv.blobs != nil {
			t.Fatal("caches on")
		}
		return
	}
	cs := ts.srv.caches
	if cs.loads.Load() == 0 || cs.refreshes.Load() == 0 {
		t.Fatalf("the mailbox cache was not used: %d loads, %d updates", cs.loads.Load(), cs.refreshes.Load())
	}
	t.Logf("%d loads, %d updates, %d shared", cs.loads.Load(), cs.refreshes.Load(), cs.shared.Load())
}

// claimCountingStore counts the store's ClaimRecent calls.
type claimCountingStore struct {
	store.Store
	claims atomic.Int64
}

func (cs *claimCountingStore) ClaimRecent(ctx context.Context, acct store.AccountID, id store.MailboxID, upTo mail.UID) (mail.UID, error) {
	cs.claims.Add(1)
	return cs.Store.ClaimRecent(ctx, acct, id, upTo)
}

// TestClaimRecentOnce: of three IMAP4rev1 sessions on a mailbox (which
// has a cache: the sessions read it), the first to learn of a new
// message sees it \Recent and claims it; the others, which learn of it
// after, neither see it \Recent nor wait for a claim of their own (RFC
// 3501 §2.3.2). EXAMINE still sees the unclaimed messages as recent.
func TestClaimRecentOnce(t *testing.T) {
	var cs *claimCountingStore
	ts := newTestServerWith(t, nil, func(o *Options) {
		cs = &claimCountingStore{Store: o.Store}
		o.Store = cs
	})
	acct := ts.addUser("alice@example.org")
	ts.deliver(acct, "INBOX", msg("one", "x"))
	var cl []*client
	for i := range 3 {
		c := ts.login("alice@example.org")
		lines := c.ok("S SELECT INBOX")
		want := "* 0 RECENT"
		if i == 0 {
			want = "* 1 RECENT"
		}
		if !slices.Contains(lines, want) {
			t.Fatalf("session %d: no %q in %v", i, want, lines)
		}
		// A read gives the mailbox its cache, which keeps the claims.
		c.ok("F FETCH 1 (FLAGS)")
		cl = append(cl, c)
	}
	// The first SELECT came before the mailbox had a cache.
	if n := cs.claims.Load(); n != 2 {
		t.Fatalf("%d claims for three SELECTs, want 2", n)
	}
	ts.deliver(acct, "INBOX", msg("two", "y"))
	cl[1].expect("n1 NOOP", "* 2 EXISTS", "* 1 RECENT", "n1 OK NOOP completed")
	// (Session 0 keeps message 1 \Recent from its SELECT.)
	cl[0].expect("n2 NOOP", "* 2 EXISTS", "* 1 RECENT", "n2 OK NOOP completed")
	cl[2].expect("n3 NOOP", "* 2 EXISTS", "* 0 RECENT", "n3 OK NOOP completed")
	cl[2].expect("f1 FETCH 1:2 (FLAGS)", "* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())", "f1 OK FETCH completed")
	cl[1].expect("f2 FETCH 2 (FLAGS)", `* 2 FETCH (FLAGS (\Recent))`, "f2 OK FETCH completed")
	if n := cs.claims.Load(); n != 3 {
		t.Fatalf("%d claims, want 3", n)
	}
	// A delivery no session has seen yet is recent for EXAMINE, which
	// claims nothing.
	ts.deliver(acct, "INBOX", msg("three", "z"))
	e := ts.login("alice@example.org")
	if lines := e.ok("E EXAMINE INBOX"); !slices.Contains(lines, "* 1 RECENT") {
		t.Fatalf("EXAMINE: %v", lines)
	}
	cl[0].expect("n4 NOOP", "* 3 EXISTS", "* 2 RECENT", "n4 OK NOOP completed")
}

// refreshingStore is a store that is still parsing its messages again
// (store.SummaryRefresher).
type refreshingStore struct{ store.Store }

func (refreshingStore) SummariesCurrent() bool { return false }

// TestSummariesNotKeptWhileRefreshed: while the store says its summaries
// may still change (a newer postfach parsing stored messages again), the
// server keeps none of them, so no session sees an old parse result after
// the store has the new one.
func TestSummariesNotKeptWhileRefreshed(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.Store = refreshingStore{o.Store} })
	acct := ts.addUser("alice@example.org")
	for i := range 5 {
		ts.deliver(acct, "INBOX", msg(fmt.Sprintf("m%d", i), "body"))
	}
	c := ts.login("alice@example.org")
	c.ok("S SELECT INBOX")
	c.ok("F FETCH 1:* (ENVELOPE BODYSTRUCTURE)")
	c.ok("Q SEARCH TEXT body")
	c.ok("T THREAD REFERENCES UTF-8 ALL")
	ts.srv.blobs.mu.Lock()
	n := len(ts.srv.blobs.entries)
	ts.srv.blobs.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d bodies' summaries kept while the store refreshes them", n)
	}
}
