package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// MixedOptions configure the IMAP mixed workload.
type MixedOptions struct {
	Common
	Users Users
	// Clients is the number of concurrent sessions; client i logs in as
	// user i (wrapping around Users.Count).
	Clients int
	// Duration is the measured time; Warmup runs before it unmeasured.
	Duration, Warmup time.Duration
	// Cycles, when positive, replaces the clock: each client runs this
	// many cycles (successful or not) after the warmup and the run ends
	// when all have, however long that takes. Tests use it, so that a slow
	// login on a loaded machine cannot leave the window empty.
	Cycles int
	// LogoutEachCycle logs out and reconnects at the end of every cycle;
	// otherwise a session logs in once and keeps cycling.
	LogoutEachCycle bool
	// Window is the number of messages whose envelopes a cycle fetches.
	Window int
	// Bodies is the number of whole messages a cycle fetches: the first
	// with BODY[] (sets \Seen), the rest with BODY.PEEK[].
	Bodies int
	// Corpus provides the APPENDed messages (those up to AppendMax bytes).
	Corpus    *Corpus
	AppendMax int
	Seed      uint64
}

// Operation names of the mixed workload.
const (
	opConnect     = "connect"
	opLogin       = "login"
	opSelect      = "select"
	opFetchFlags  = "fetch-flags"
	opFetchEnv    = "fetch-envelope"
	opFetchBody   = "fetch-body"
	opFetchPeek   = "fetch-peek"
	opStore       = "store"
	opAppend      = "append"
	opExpunge     = "expunge"
	opList        = "list"
	opStatus      = "status"
	opNoop        = "noop"
	opLogout      = "logout"
	statusMailbox = "Archive"
)

// RunIMAPMixed runs the mixed IMAP workload: each client loops like a
// real client (SELECT, FETCH of flags, envelopes and bodies, STORE,
// APPEND, EXPUNGE of what it appended, LIST, STATUS, NOOP, optionally
// LOGOUT) as fast as the server answers, for the duration. Commands are
// sent one at a time per session so each latency is a real round trip.
func RunIMAPMixed(ctx context.Context, o MixedOptions) (*Result, error) {
	if err := o.Users.Validate(); err != nil {
		return nil, err
	}
	if o.Clients < 1 || o.Duration <= 0 && o.Cycles <= 0 {
		return nil, fmt.Errorf("need clients >= 1 and a duration or a number of cycles")
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
	defCase := fmt.Sprintf("imap-mixed-c%d", o.Clients)
	if o.LogoutEachCycle {
		defCase += "-logout"
	}
	res := o.newResult("imap-mixed", defCase)
	res.Params["clients"] = o.Clients
	res.Params["users"] = o.Users.Count
	res.Params["logout_each_cycle"] = o.LogoutEachCycle
	res.Params["window"] = o.Window
	res.Params["bodies"] = o.Bodies

	start := time.Now()
	from, until := start.Add(o.Warmup), start.Add(o.Warmup+o.Duration)
	wctx, cancel := context.WithDeadline(ctx, until)
	if o.Cycles > 0 {
		until = time.Time{} // no end: the cycles decide
		wctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	if o.Cycles > 0 {
		o.progressf("imap-mixed %s: %d clients, %s warmup + %d cycles each", o.Label, o.Clients, o.Warmup, o.Cycles)
	} else {
		o.progressf("imap-mixed %s: %d clients, %s warmup + %s", o.Label, o.Clients, o.Warmup, o.Duration)
	}
	clock := startCPU(o.Procs)
	var firstErr error
	errc := make(chan error, o.Clients)
	rec := runWorkers(o.Clients, from, until, func(i int, rec *Recorder) {
		w := &mixedWorker{o: &o, rec: rec, user: o.Users.Name(i), appendable: appendable, until: until,
			rng: rand.New(rand.NewPCG(o.Seed, uint64(i)))}
		if err := w.run(wctx); err != nil {
			errc <- err
		}
	})
	clock.stop(res)
	if o.Cycles > 0 {
		o.Duration = max(time.Since(from), time.Millisecond)
	}
	close(errc)
	for err := range errc {
		if firstErr == nil {
			firstErr = err
		}
	}
	res.Seconds = o.Duration.Seconds()
	res.Ops = rec.Summaries(o.Duration)
	n, errs, h := totals(rec, opConnect)
	res.AddMetric("commands_per_s", float64(n)/o.Duration.Seconds(), "cmd/s", Higher)
	res.AddMetric("command_p50", ms(h.Quantile(0.5)), "ms", Lower)
	res.AddMetric("command_p99", ms(h.Quantile(0.99)), "ms", Lower)
	res.AddMetric("errors", float64(errs), "", Info)
	if s := rec.Op(opNoop); s != nil {
		res.AddMetric("cycles_per_s", float64(s.Hist.Count())/o.Duration.Seconds(), "cycle/s", Info)
	}
	if firstErr != nil {
		res.Notef("first client error: %v", firstErr)
	}
	if n == 0 {
		return res, fmt.Errorf("no command completed: %v", firstErr)
	}
	return res, nil
}

type mixedWorker struct {
	o          *MixedOptions
	rec        *Recorder
	user       string
	appendable [][]byte
	rng        *rand.Rand
	until      time.Time
	c          *IMAPClient
	uids       []uint32
	created    bool
	lastErr    error
	cmdBuf     []byte
}

// run cycles until ctx ends. It returns the first error that made it
// reconnect, for the report; the workload goes on after errors.
func (w *mixedWorker) run(ctx context.Context) error {
	var first error
	measured := 0 // cycles begun after the warmup, for MixedOptions.Cycles
	for ctx.Err() == nil && (w.o.Cycles <= 0 || measured < w.o.Cycles) {
		if w.o.Cycles > 0 && !time.Now().Before(w.rec.notBefore) {
			measured++
		}
		if err := w.cycle(ctx); err != nil {
			if first == nil && (w.until.IsZero() || time.Now().Before(w.until)) {
				first = fmt.Errorf("%s: %w", w.user, err)
			}
			if w.c != nil {
				w.c.Close()
				w.c = nil
			}
			sleepCtx(ctx, 20*time.Millisecond)
		}
	}
	if w.c != nil {
		_ = w.c.Logout()
		w.c.Close()
	}
	if first == nil && w.lastErr != nil {
		first = fmt.Errorf("%s: %w", w.user, w.lastErr)
	}
	return first
}

// errNotOK marks a NO or BAD answer; the session stays usable.
var errNotOK = errors.New("command not OK")

// cmd runs one command and records it under op.
func (w *mixedWorker) cmd(op, cmd string, on func([]byte)) ([]byte, error) {
	start := time.Now()
	st, text, err := w.c.Cmd(cmd, on)
	if err != nil {
		w.rec.Fail(op)
		return nil, err
	}
	if st != OK {
		w.rec.Fail(op)
		w.lastErr = fmt.Errorf("%s: %s %s", cmd, st, trunc(text))
		return text, errNotOK
	}
	w.rec.Done(op, start, w.c.LiteralBytes)
	return text, nil
}

// soft turns errNotOK into nil: a refused command does not end the cycle.
func soft(err error) error {
	if errors.Is(err, errNotOK) {
		return nil
	}
	return err
}

func (w *mixedWorker) connect(ctx context.Context) error {
	start := time.Now()
	c, err := DialIMAP(ctx, w.o.Dialer, w.o.Addr)
	if err != nil {
		w.rec.Fail(opConnect)
		return err
	}
	w.rec.Done(opConnect, start, 0)
	w.c = c
	start = time.Now()
	if err := c.Login(w.user, w.o.Users.Password); err != nil {
		w.rec.Fail(opLogin)
		return err
	}
	w.rec.Done(opLogin, start, 0)
	if !w.created {
		// The STATUS target; NO [ALREADYEXISTS] is fine.
		if _, _, err := c.Cmd("CREATE "+statusMailbox, nil); err != nil {
			return err
		}
		w.created = true
	}
	return nil
}

func (w *mixedWorker) cycle(ctx context.Context) error {
	if w.c == nil {
		if err := w.connect(ctx); err != nil {
			return err
		}
	}
	// RFC 9051 §6.3.2 SELECT.
	var exists uint32
	if _, err := w.cmd(opSelect, "SELECT INBOX", func(l []byte) {
		if n, word, ok := untaggedNum(l); ok && string(word) == "EXISTS" {
			exists = n
		}
	}); err != nil {
		return err
	}
	// RFC 9051 §6.4.9 UID FETCH: flags of the whole mailbox, as a client
	// resynchronising its view does.
	w.uids = w.uids[:0]
	if exists > 0 {
		if err := soft2(w.cmd(opFetchFlags, "UID FETCH 1:* (FLAGS)", func(l []byte) {
			if uid, ok := fetchUID(l); ok {
				w.uids = append(w.uids, uid)
			}
		})); err != nil {
			return err
		}
	}
	if exists > 0 && w.o.Window > 0 {
		// The newest window of envelopes, as a message list shows.
		lo := max(int(exists)-w.o.Window+1, 1)
		if err := soft2(w.cmd(opFetchEnv, fmt.Sprintf("FETCH %d:%d (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)", lo, exists), nil)); err != nil {
			return err
		}
	}
	if len(w.uids) > 0 {
		for k := range w.o.Bodies {
			uid := w.uids[w.rng.IntN(len(w.uids))]
			op, item := opFetchPeek, "BODY.PEEK[]"
			if k == 0 {
				op, item = opFetchBody, "BODY[]"
			}
			if err := soft2(w.cmd(op, w.uidCmd("UID FETCH ", uid, " ("+item+")"), nil)); err != nil {
				return err
			}
		}
		// RFC 9051 §6.4.6 STORE.
		uid := w.uids[w.rng.IntN(len(w.uids))]
		if err := soft2(w.cmd(opStore, w.uidCmd("UID STORE ", uid, ` +FLAGS (\Seen)`), nil)); err != nil {
			return err
		}
		uid = w.uids[w.rng.IntN(len(w.uids))]
		if err := soft2(w.cmd(opStore, w.uidCmd("UID STORE ", uid, ` -FLAGS (\Seen)`), nil)); err != nil {
			return err
		}
	}
	// RFC 9051 §6.3.12 APPEND, then expunge exactly that message
	// (RFC 4315 UID EXPUNGE when available).
	msg := w.appendable[w.rng.IntN(len(w.appendable))]
	start := time.Now()
	st, text, err := w.c.Append("INBOX", `(\Seen)`, msg)
	if err != nil {
		w.rec.Fail(opAppend)
		return err
	}
	if st != OK {
		w.rec.Fail(opAppend)
	} else {
		w.rec.Done(opAppend, start, int64(len(msg)))
		uid := appendUID(text)
		if uid != 0 {
			if err := soft2(w.cmd(opStore, w.uidCmd("UID STORE ", uid, ` +FLAGS.SILENT (\Deleted)`), nil)); err != nil {
				return err
			}
			cmd := "EXPUNGE"
			if w.c.Caps["UIDPLUS"] {
				cmd = w.uidCmd("UID EXPUNGE ", uid, "")
			}
			if err := soft2(w.cmd(opExpunge, cmd, nil)); err != nil {
				return err
			}
		}
	}
	// RFC 9051 §6.3.9 LIST, §6.3.11 STATUS, §6.1.2 NOOP.
	if err := soft2(w.cmd(opList, `LIST "" "*"`, nil)); err != nil {
		return err
	}
	if err := soft2(w.cmd(opStatus, "STATUS "+statusMailbox+" (MESSAGES UIDNEXT UNSEEN)", nil)); err != nil {
		return err
	}
	if err := soft2(w.cmd(opNoop, "NOOP", nil)); err != nil {
		return err
	}
	if w.o.LogoutEachCycle && ctx.Err() == nil {
		start := time.Now()
		err := w.c.Logout()
		w.c.Close()
		w.c = nil
		if err != nil {
			w.rec.Fail(opLogout)
			return err
		}
		w.rec.Done(opLogout, start, 0)
	}
	return nil
}

func soft2(_ []byte, err error) error { return soft(err) }

func (w *mixedWorker) uidCmd(prefix string, uid uint32, suffix string) string {
	w.cmdBuf = append(w.cmdBuf[:0], prefix...)
	w.cmdBuf = strconv.AppendUint(w.cmdBuf, uint64(uid), 10)
	w.cmdBuf = append(w.cmdBuf, suffix...)
	return string(w.cmdBuf)
}

// appendUID returns the UID from "[APPENDUID validity uid]" (RFC 4315
// §3), 0 when absent.
func appendUID(text []byte) uint32 {
	arg, ok := respCode(text, "APPENDUID")
	if !ok {
		return 0
	}
	_, uidText, ok := cutSpace(arg)
	if !ok {
		return 0
	}
	uid, ok := parseUint32(uidText)
	if !ok {
		return 0
	}
	return uid
}

func cutSpace(b []byte) ([]byte, []byte, bool) {
	for i, c := range b {
		if c == ' ' {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}
