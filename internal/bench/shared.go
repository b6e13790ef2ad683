package bench

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SharedOptions configure the shared-mailbox IMAP workload (issue 13):
// several sessions on one INBOX at once, as a user's devices are, each
// changing what the others see.
type SharedOptions struct {
	Common
	Users Users
	// Sessions is the number of sessions, each on an account drawn at
	// random (seeded) from Users, so that some accounts get several.
	// Ignored when PerAccount is set.
	Sessions int
	// PerAccount, when > 0, opens that many sessions on every account:
	// PerAccount × Users.Count sessions.
	PerAccount int
	// Duration is the measured time; Warmup runs before it unmeasured.
	Duration, Warmup time.Duration
	// Ops, when > 0, ends each session after that many operations of
	// the mix (a bounded run for tests); Duration then bounds the run and
	// the rates are over the time the sessions took.
	Ops int
	// Keywords are the keywords STORE and APPEND set besides \Seen,
	// \Flagged, \Answered and \Deleted; none when empty.
	Keywords []string
	// Messages is the INBOX size the sessions hold: a session APPENDs
	// while its view has fewer messages and EXPUNGEs otherwise. 0 takes
	// the size at the session's first SELECT (at least 10).
	Messages int
	// Window is the number of messages a range FETCH covers (default 20).
	Window int
	// IdleWait bounds each IDLE: the session leaves it at the first
	// untagged response or after IdleWait (default 10 ms).
	IdleWait time.Duration
	// Corpus provides the APPENDed messages (those up to AppendMax
	// bytes).
	Corpus    *Corpus
	AppendMax int
	Seed      uint64
	// Examples is the number of example transcripts kept per kind of
	// violation or refusal (default 3).
	Examples int
}

// Operation names of the shared workload, besides those of the mixed one.
const (
	opResync       = "resync"
	opFetchStruct  = "fetch-bodystructure"
	opFetchSection = "fetch-section"
	opSearch       = "search"
	opSort         = "sort"
	opThread       = "thread"
	opCopy         = "copy"
	opIdle         = "idle"
	copyMailbox    = "Archive"
)

// sharedMix is the weighted mix of a session's loop; the weights are
// percentages. opAppend stands for APPEND or EXPUNGE, whichever keeps the
// mailbox at its size.
var sharedMix = []struct {
	op     string
	weight int
}{
	{opStore, 24},
	{opFetchFlags, 8},
	{opFetchEnv, 10},
	{opFetchStruct, 6},
	{opFetchSection, 10},
	{opSearch, 7},
	{opSort, 4},
	{opThread, 3},
	{opAppend, 14},
	{opCopy, 4},
	{opNoop, 6},
	{opIdle, 4},
}

// Words that occur in the corpus's subjects, bodies and addresses.
var (
	sharedSubjectWords = []string{"meeting", "report", "budget", "project", "review", "invoice", "release"}
	sharedFromWords    = []string{"alice", "smith", "example.com", "grace", "jones", "newsletter"}
	sharedTextWords    = []string{"invoice", "deadline", "quarterly", "migration", "Rechnung", "berlin"}
)

// RunIMAPShared runs the shared-mailbox workload: each session logs in,
// selects INBOX, learns its UIDs, and loops over a weighted mix of STORE
// of flags and keywords, FETCH (flags, envelopes, BODYSTRUCTURE, body
// sections), UID SEARCH, SORT and THREAD, APPEND and EXPUNGE (keeping the
// mailbox at its size), COPY, NOOP and a brief IDLE, as fast as the server
// answers. Every response goes through a Checker; the result carries the
// commands/s and what the checkers found.
func RunIMAPShared(ctx context.Context, o SharedOptions) (*Result, error) {
	if err := o.Users.Validate(); err != nil {
		return nil, err
	}
	if o.PerAccount > 0 {
		o.Sessions = o.PerAccount * o.Users.Count
	}
	if o.Sessions < 1 || o.Duration <= 0 {
		return nil, fmt.Errorf("need sessions >= 1 and a duration")
	}
	if o.Window <= 0 {
		o.Window = 20
	}
	if o.IdleWait <= 0 {
		o.IdleWait = 10 * time.Millisecond
	}
	if o.Examples <= 0 {
		o.Examples = 3
	}
	for _, k := range o.Keywords {
		if k == "" || strings.ContainsAny(k, ` ()\{}"%*]`) {
			return nil, fmt.Errorf("keyword %q is not an atom", k)
		}
	}
	var appendable [][]byte
	if o.Corpus != nil {
		for _, m := range o.Corpus.Msgs {
			if o.AppendMax <= 0 || len(m) <= o.AppendMax {
				appendable = append(appendable, m)
			}
		}
	}
	if len(appendable) == 0 {
		return nil, fmt.Errorf("no corpus message fits for APPEND")
	}
	// Which account each session uses.
	accounts := make([]int, o.Sessions)
	pick := rand.New(rand.NewPCG(o.Seed, 0x5a))
	for i := range accounts {
		if o.PerAccount > 0 {
			accounts[i] = i / o.PerAccount
		} else {
			accounts[i] = pick.IntN(o.Users.Count)
		}
	}
	perAccount := map[int]int{}
	for _, a := range accounts {
		perAccount[a]++
	}
	shared, most := 0, 0
	for _, n := range perAccount {
		if n > 1 {
			shared++
		}
		most = max(most, n)
	}

	defCase := fmt.Sprintf("imap-shared-s%d-a%d", o.Sessions, o.Users.Count)
	if o.PerAccount > 0 {
		defCase = fmt.Sprintf("imap-shared-a%dx%d", o.Users.Count, o.PerAccount)
	}
	res := o.newResult("imap-shared", defCase)
	res.Params["sessions"] = o.Sessions
	res.Params["accounts"] = o.Users.Count
	res.Params["accounts_used"] = len(perAccount)
	res.Params["accounts_shared"] = shared
	res.Params["max_sessions_per_account"] = most
	res.Params["keywords"] = strings.Join(o.Keywords, " ")
	res.Params["window"] = o.Window
	if o.PerAccount > 0 {
		res.Params["per_account"] = o.PerAccount
	}
	if o.Ops > 0 {
		res.Params["ops_per_session"] = o.Ops
	}

	o.progressf("imap-shared %s: %d sessions on %d accounts (%d shared, up to %d sessions each), %s warmup + %s",
		o.Label, o.Sessions, len(perAccount), shared, most, o.Warmup, o.Duration)
	// Every session logs in and selects before the clock starts: the
	// logins (argon2id on both servers, one at a time in Dovecot's auth
	// process) are imap-login's measure, not this one's.
	sessions := make([]*sharedSession, o.Sessions)
	var mu sync.Mutex
	var firstErr error
	setFirst := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	connStart := time.Now()
	var wg sync.WaitGroup
	for i := range sessions {
		s := &sharedSession{o: &o, rec: NewRecorder(time.Time{}, time.Time{}), user: o.Users.Name(accounts[i]),
			appendable: appendable, rng: rand.New(rand.NewPCG(o.Seed, uint64(i)+1))}
		s.chk.Session = fmt.Sprintf("session %d, %s", i, s.user)
		s.onUntagged = s.chk.Untagged
		sessions[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.connect(ctx); err != nil {
				// run connects again.
				setFirst(fmt.Errorf("%s: %w", s.user, err))
				if s.c != nil {
					s.c.Close()
					s.c = nil
				}
			}
		}()
	}
	wg.Wait()
	o.progressf("imap-shared %s: %d sessions logged in and selected in %.1f s", o.Label, o.Sessions, time.Since(connStart).Seconds())
	res.Params["setup_s"] = math.Round(time.Since(connStart).Seconds()*10) / 10

	start := time.Now()
	from, until := start.Add(o.Warmup), start.Add(o.Warmup+o.Duration)
	wctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	clock := startCPU(o.Procs)
	rec := runWorkers(o.Sessions, from, until, func(i int, rec *Recorder) {
		s := sessions[i]
		s.rec, s.until = rec, until
		if err := s.run(wctx); err != nil {
			setFirst(err)
		}
	})
	clock.stop(res)
	measured := o.Duration
	if el := time.Since(from); el < measured {
		measured = max(el, time.Millisecond) // every session ended early (Ops)
	}
	checks := &CheckReport{}
	for _, s := range sessions {
		checks.Merge(s.chk.Report(), o.Examples)
	}
	res.Checks = checks
	res.Seconds = measured.Seconds()
	res.Ops = rec.Summaries(measured)
	n, errs, h := totals(rec, opConnect)
	res.AddMetric("commands_per_s", float64(n)/measured.Seconds(), "cmd/s", Higher)
	res.AddMetric("command_p50", ms(h.Quantile(0.5)), "ms", Lower)
	res.AddMetric("command_p99", ms(h.Quantile(0.99)), "ms", Lower)
	res.AddMetric("violations", float64(checks.ViolationCount()), "", Lower)
	res.AddMetric("refused", float64(checks.RefusalCount()), "", Lower)
	res.AddMetric("errors", float64(errs), "", Info)
	for _, k := range sortedKeys(checks.Violations) {
		res.Notef("violation %s: %d", k, checks.Violations[k])
	}
	for _, k := range sortedKeys(checks.Refusals) {
		res.Notef("refused %s: %d", k, checks.Refusals[k])
	}
	if firstErr != nil {
		res.Notef("first session error: %v", firstErr)
	}
	if n == 0 {
		return res, fmt.Errorf("no command completed: %v", firstErr)
	}
	return res, nil
}

func sortedKeys(m map[string]int64) []string { return slices.Sorted(maps.Keys(m)) }

// sharedSession is one session of the shared workload.
type sharedSession struct {
	o          *SharedOptions
	rec        *Recorder
	user       string
	appendable [][]byte
	rng        *rand.Rand
	until      time.Time
	c          *IMAPClient
	chk        Checker
	onUntagged func([]byte)
	// target is the INBOX size the session holds.
	target  int
	created bool
	lastErr error
	buf     []byte
}

// run loops until ctx ends, reconnecting after network errors. It returns
// the first error, for the report.
func (s *sharedSession) run(ctx context.Context) error {
	var first error
	for k := 0; ctx.Err() == nil && (s.o.Ops <= 0 || k < s.o.Ops); k++ {
		if err := s.step(ctx); err != nil {
			if first == nil && time.Now().Before(s.until) {
				first = fmt.Errorf("%s: %w", s.user, err)
			}
			if s.c != nil {
				s.c.Close()
				s.c = nil
			}
			sleepCtx(ctx, 20*time.Millisecond)
		}
	}
	if s.c != nil {
		_ = s.c.Logout()
		s.c.Close()
	}
	if first == nil && s.lastErr != nil {
		first = fmt.Errorf("%s: %w", s.user, s.lastErr)
	}
	return first
}

// cmd runs one command through the checker and records it under op. A NO
// or BAD is recorded as a failure (and counted by the checker) but does
// not end the session; a network error does.
func (s *sharedSession) cmd(op, line string) error {
	tag := s.c.NextTag()
	s.chk.Command(tag, line)
	start := time.Now()
	st, text, err := s.c.Cmd(line, s.onUntagged)
	if err != nil {
		s.rec.Fail(op)
		return err
	}
	s.chk.Tagged(tag, st, text)
	if st != OK {
		s.rec.Fail(op)
		s.lastErr = fmt.Errorf("%s: %s %s", line, st, trunc(text))
		return nil
	}
	s.rec.Done(op, start, s.c.LiteralBytes)
	return nil
}

func (s *sharedSession) connect(ctx context.Context) error {
	start := time.Now()
	c, err := DialIMAP(ctx, s.o.Dialer, s.o.Addr)
	if err != nil {
		s.rec.Fail(opConnect)
		return err
	}
	s.rec.Done(opConnect, start, 0)
	s.c = c
	start = time.Now()
	if err := c.Login(s.user, s.o.Users.Password); err != nil {
		s.rec.Fail(opLogin)
		return err
	}
	s.rec.Done(opLogin, start, 0)
	if !s.created {
		// The COPY target; NO [ALREADYEXISTS] is expected from all but
		// the first session of an account, so it is not checked.
		if _, _, err := c.Cmd("CREATE "+copyMailbox, nil); err != nil {
			return err
		}
		s.created = true
	}
	// RFC 9051 §6.3.2 SELECT, then the UIDs and flags of the whole
	// mailbox, as a client synchronising its view does.
	if err := s.cmd(opSelect, "SELECT INBOX"); err != nil {
		return err
	}
	if s.chk.Count() > 0 {
		if err := s.cmd(opResync, "UID FETCH 1:* (FLAGS)"); err != nil {
			return err
		}
	}
	if s.target == 0 {
		s.target = s.o.Messages
		if s.target <= 0 {
			s.target = max(int(s.chk.Count()), 10)
		}
	}
	return nil
}

// step runs one operation of the mix, connecting first when needed.
func (s *sharedSession) step(ctx context.Context) error {
	if s.c == nil {
		if err := s.connect(ctx); err != nil {
			return err
		}
	}
	r := s.rng.IntN(100)
	op := opNoop
	for _, m := range sharedMix {
		if r < m.weight {
			op = m.op
			break
		}
		r -= m.weight
	}
	switch op {
	case opStore:
		return s.store()
	case opFetchFlags:
		lo, hi := s.window(s.o.Window)
		if hi == 0 {
			return s.cmd(opNoop, "NOOP")
		}
		return s.cmd(opFetchFlags, fmt.Sprintf("FETCH %d:%d (UID FLAGS)", lo, hi))
	case opFetchEnv:
		lo, hi := s.window(max(s.o.Window/2, 1))
		if hi == 0 {
			return s.cmd(opNoop, "NOOP")
		}
		return s.cmd(opFetchEnv, fmt.Sprintf("FETCH %d:%d (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)", lo, hi))
	case opFetchStruct:
		return s.onOne(opFetchStruct, "FETCH ", " (UID BODYSTRUCTURE)")
	case opFetchSection:
		return s.onOne(opFetchSection, "FETCH ", s.section())
	case opSearch:
		return s.search()
	case opSort:
		if !s.c.Caps["SORT"] {
			return s.search()
		}
		return s.cmd(opSort, "UID SORT "+[]string{
			"(REVERSE ARRIVAL) UTF-8 ALL", "(SUBJECT) UTF-8 UNSEEN", "(FROM DATE) UTF-8 ALL", "(REVERSE DATE) UTF-8 UNDELETED",
		}[s.rng.IntN(4)])
	case opThread:
		var algs []string
		for _, a := range []string{"REFERENCES", "ORDEREDSUBJECT"} {
			if s.c.Caps["THREAD="+a] {
				algs = append(algs, a)
			}
		}
		if len(algs) == 0 {
			return s.search()
		}
		return s.cmd(opThread, "UID THREAD "+algs[s.rng.IntN(len(algs))]+" UTF-8 "+[]string{"ALL", "UNDELETED"}[s.rng.IntN(2)])
	case opAppend:
		if int(s.chk.Count()) < s.target {
			return s.append()
		}
		return s.expunge()
	case opCopy:
		return s.onOne(opCopy, "COPY ", " "+copyMailbox)
	case opIdle:
		if s.c.Caps["IDLE"] {
			return s.idle()
		}
		return s.cmd(opNoop, "NOOP")
	default:
		return s.cmd(opNoop, "NOOP")
	}
}

// pick returns a sequence number in the view and its UID (0 when not
// known): half the time among the newest 20 messages, where the sessions
// of one mailbox meet most, otherwise anywhere. 0, 0 for an empty view.
func (s *sharedSession) pick() (uint32, uint32) {
	n := int(s.chk.Count())
	if n == 0 {
		return 0, 0
	}
	var seq int
	if s.rng.IntN(2) == 0 {
		seq = n - s.rng.IntN(min(n, 20))
	} else {
		seq = 1 + s.rng.IntN(n)
	}
	return uint32(seq), s.chk.UID(uint32(seq))
}

// window returns a range of up to size sequence numbers around a pick.
func (s *sharedSession) window(size int) (uint32, uint32) {
	seq, _ := s.pick()
	if seq == 0 {
		return 0, 0
	}
	hi := min(seq+uint32(size)/2, s.chk.Count())
	lo := uint32(max(int(hi)-size+1, 1))
	return lo, hi
}

// onOne runs prefix+set+suffix on one picked message: "UID "+prefix with
// its UID when known (three times in four), otherwise by sequence number.
func (s *sharedSession) onOne(op, prefix, suffix string) error {
	seq, uid := s.pick()
	if seq == 0 {
		return s.cmd(opNoop, "NOOP")
	}
	s.buf = s.buf[:0]
	if uid != 0 && s.rng.IntN(4) != 0 {
		s.buf = append(s.buf, "UID "...)
		s.buf = append(s.buf, prefix...)
		s.buf = strconv.AppendUint(s.buf, uint64(uid), 10)
	} else {
		s.buf = append(s.buf, prefix...)
		s.buf = strconv.AppendUint(s.buf, uint64(seq), 10)
	}
	s.buf = append(s.buf, suffix...)
	return s.cmd(op, string(s.buf))
}

// flagList returns one or two flags or keywords: mostly \Seen, \Flagged,
// \Answered and the keywords, now and then \Deleted.
func (s *sharedSession) flagList() string {
	pool := []string{`\Seen`, `\Flagged`, `\Answered`}
	pool = append(pool, s.o.Keywords...)
	if s.rng.IntN(16) == 0 {
		return `(\Deleted)`
	}
	a := pool[s.rng.IntN(len(pool))]
	if s.rng.IntN(3) != 0 {
		return "(" + a + ")"
	}
	b := pool[s.rng.IntN(len(pool))]
	if b == a {
		return "(" + a + ")"
	}
	return "(" + a + " " + b + ")"
}

// store runs STORE or UID STORE of +FLAGS or -FLAGS, sometimes .SILENT
// (RFC 9051 §6.4.6), on one message or, by sequence number, up to three.
func (s *sharedSession) store() error {
	seq, uid := s.pick()
	if seq == 0 {
		return s.cmd(opNoop, "NOOP")
	}
	item := "+FLAGS"
	if s.rng.IntN(2) == 0 {
		item = "-FLAGS"
	}
	if s.rng.IntN(4) == 0 {
		item += ".SILENT"
	}
	flags := s.flagList()
	if uid != 0 && s.rng.IntN(4) != 0 {
		return s.cmd(opStore, fmt.Sprintf("UID STORE %d %s %s", uid, item, flags))
	}
	hi := min(seq+uint32(s.rng.IntN(3)), s.chk.Count())
	return s.cmd(opStore, fmt.Sprintf("STORE %d:%d %s %s", seq, hi, item, flags))
}

// section returns the FETCH items of a body-section fetch.
func (s *sharedSession) section() string {
	switch s.rng.IntN(5) {
	case 0:
		return " (UID BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID REFERENCES)])"
	case 1:
		return " (UID BODY.PEEK[1]<0.16384>)"
	case 2:
		return " (UID BODY.PEEK[TEXT]<0.32768>)"
	case 3:
		return " (UID BODY.PEEK[HEADER] BODY.PEEK[1.MIME])"
	default:
		// A client opening a message: marks it \Seen, so the others
		// learn of a flag change.
		return " (UID FLAGS BODY[])"
	}
}

// search runs a UID SEARCH (three times in four) or a SEARCH of headers,
// text, flags or keywords (RFC 9051 §6.4.4).
func (s *sharedSession) search() error {
	var crit string
	switch s.rng.IntN(6) {
	case 0:
		crit = "HEADER SUBJECT " + quote(sharedSubjectWords[s.rng.IntN(len(sharedSubjectWords))])
	case 1:
		crit = "FROM " + quote(sharedFromWords[s.rng.IntN(len(sharedFromWords))])
	case 2:
		crit = "TEXT " + quote(sharedTextWords[s.rng.IntN(len(sharedTextWords))])
	case 3:
		crit = "UNSEEN UNDELETED"
	case 4:
		crit = "FLAGGED SINCE 1-Jan-2000"
	default:
		if len(s.o.Keywords) > 0 {
			crit = "KEYWORD " + s.o.Keywords[s.rng.IntN(len(s.o.Keywords))]
		} else {
			crit = "ANSWERED"
		}
	}
	if s.rng.IntN(4) == 0 {
		return s.cmd(opSearch, "SEARCH "+crit)
	}
	return s.cmd(opSearch, "UID SEARCH "+crit)
}

// append APPENDs a corpus message to INBOX (RFC 9051 §6.3.12), now and
// then with a keyword.
func (s *sharedSession) append() error {
	msg := s.appendable[s.rng.IntN(len(s.appendable))]
	flags := "()"
	switch r := s.rng.IntN(4); {
	case r == 0:
		flags = `(\Seen)`
	case r == 1 && len(s.o.Keywords) > 0:
		flags = "(" + s.o.Keywords[s.rng.IntN(len(s.o.Keywords))] + ")"
	}
	tag := s.c.NextTag()
	s.chk.Command(tag, fmt.Sprintf("APPEND INBOX %s {%d}", flags, len(msg)))
	start := time.Now()
	st, text, err := s.c.AppendFunc("INBOX", flags, msg, s.onUntagged)
	if err != nil {
		s.rec.Fail(opAppend)
		return err
	}
	s.chk.Tagged(tag, st, text)
	if st != OK {
		s.rec.Fail(opAppend)
		s.lastErr = fmt.Errorf("append: %s %s", st, trunc(text))
		return nil
	}
	s.rec.Done(opAppend, start, int64(len(msg)))
	return nil
}

// expunge marks one message \Deleted and expunges it: UID EXPUNGE of
// just that message when the server has UIDPLUS (RFC 4315 §2.1), two
// times in three, otherwise EXPUNGE, which also takes every other message
// marked \Deleted by any session (RFC 9051 §6.4.3).
func (s *sharedSession) expunge() error {
	seq, uid := s.pick()
	if seq == 0 {
		return s.cmd(opNoop, "NOOP")
	}
	if uid != 0 && s.c.Caps["UIDPLUS"] && s.rng.IntN(3) != 0 {
		u := strconv.FormatUint(uint64(uid), 10)
		if err := s.cmd(opStore, "UID STORE "+u+` +FLAGS.SILENT (\Deleted)`); err != nil {
			return err
		}
		return s.cmd(opExpunge, "UID EXPUNGE "+u)
	}
	if err := s.cmd(opStore, fmt.Sprintf(`STORE %d +FLAGS.SILENT (\Deleted)`, seq)); err != nil {
		return err
	}
	return s.cmd(opExpunge, "EXPUNGE")
}

// idle idles briefly to receive the other sessions' changes (RFC 2177).
func (s *sharedSession) idle() error {
	tag := s.c.NextTag()
	s.chk.Command(tag, "IDLE")
	start := time.Now()
	st, text, err := s.c.Idle(s.o.IdleWait, s.onUntagged)
	if err != nil {
		s.rec.Fail(opIdle)
		return err
	}
	s.chk.Tagged(tag, st, text)
	if st != OK {
		s.rec.Fail(opIdle)
		return nil
	}
	s.rec.Done(opIdle, start, 0)
	return nil
}
