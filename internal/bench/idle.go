package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Memory metrics of the idle workload.
const (
	// MemRSSGrowth is (RSS with N sessions - RSS before) / N, summed over
	// the processes: right for a single-process server (postfach).
	MemRSSGrowth = "rss-growth"
	// MemPSSTotal is the summed PSS of all processes with N sessions / N:
	// right for a process-per-session server (Dovecot), where shared
	// pages would otherwise be counted once per process.
	MemPSSTotal = "pss-total"
)

// IdleOptions configure the IDLE workload.
type IdleOptions struct {
	Common
	// Users are spread over the sessions: session i is user i % Count.
	Users Users
	// Conns is the number of IDLE sessions to hold open.
	Conns int
	// DialConcurrency bounds the logins in flight while opening.
	DialConcurrency int
	// Compress asks for COMPRESS=DEFLATE (RFC 4978) on every session.
	Compress bool
	// Settle is the wait between the last session entering IDLE and the
	// memory reading (Dovecot's imap-hibernate moves sessions after
	// imap_hibernate_timeout).
	Settle time.Duration
	// MemMetric is MemRSSGrowth or MemPSSTotal: which figure is the
	// headline "mem_per_conn_kib".
	MemMetric string
	// Pushes is the number of messages delivered by LMTP to users whose
	// sessions idle, one at a time; 0 skips the push measurement.
	Pushes      int
	LMTPAddr    string
	From        string
	PushTimeout time.Duration
	// PushBudget bounds the whole push phase (0: no bound), so a server
	// that misses its pushes cannot stretch a run to Pushes*PushTimeout.
	PushBudget time.Duration
	// MemWait bounds each wait for a stable memory reading (0: one
	// minute).
	MemWait time.Duration
	// MetricsURL, when set, is the server's Prometheus endpoint with Go
	// runtime metrics: the live heap and the goroutine stacks per session
	// are reported beside RSS.
	MetricsURL string
	// GCWait, with MetricsURL, waits up to this long after the settle
	// for the server's next garbage collection before reading memory, so
	// garbage from the logins is not counted as live (Go collects an idle
	// heap at least every two minutes).
	GCWait time.Duration
	// Warm opens and closes one IDLE session per user before the memory
	// baseline, so one-time costs (caches, pools, per-account state) are
	// not charged to the sessions. Off, the baseline is the server before
	// the first session: a conservative figure, since a garbage-collected
	// server keeps the warm-up's garbage (an argon2id check allocates
	// about 19 MiB) in its RSS until a collection and the scavenger
	// return it, which an idle server may not do for minutes.
	Warm bool
}

type idleEvent struct {
	sess   int
	exists uint32
	at     time.Time
}

type idleSession struct {
	c      *IMAPClient
	user   int
	exists uint32
}

// RaiseFileLimit raises this process's open file limit to its hard limit
// and returns the new soft limit.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, fmt.Errorf("setrlimit: %w", err)
		}
	}
	return l.Cur, nil
}

// errUnsupported marks a capability the server lacks.
var errUnsupported = errors.New("unsupported")

// RunIdle opens Conns sessions that log in, select INBOX and IDLE
// (RFC 2177), reads the server's memory from /proc, then delivers Pushes
// messages by LMTP and measures, for every idling session of the
// recipient, the time from the LMTP 250 to the "* n EXISTS" it receives.
func RunIdle(ctx context.Context, o IdleOptions) (*Result, error) {
	if err := o.Users.Validate(); err != nil {
		return nil, err
	}
	if o.Conns < 1 {
		return nil, fmt.Errorf("need conns >= 1")
	}
	o.DialConcurrency = max(o.DialConcurrency, 1)
	if o.PushTimeout <= 0 {
		o.PushTimeout = 10 * time.Second
	}
	if o.MemMetric == "" {
		o.MemMetric = MemRSSGrowth
	}
	if o.MemWait <= 0 {
		o.MemWait = time.Minute
	}
	limit, err := RaiseFileLimit()
	if err != nil {
		return nil, err
	}
	if limit < uint64(o.Conns)+64 {
		return nil, fmt.Errorf("open file limit %d is too low for %d connections (raise ulimit -Hn)", limit, o.Conns)
	}
	defCase := fmt.Sprintf("idle-%d", o.Conns)
	if o.Dialer != nil && o.Dialer.TLS != nil {
		defCase += "-tls"
	}
	if o.Compress {
		defCase += "-compress"
	}
	res := o.newResult("idle", defCase)
	res.Params["conns"] = o.Conns
	res.Params["users"] = o.Users.Count
	res.Params["compress"] = o.Compress
	res.Params["mem_metric"] = o.MemMetric
	haveProcs := !o.Procs.Empty()
	var before Mem
	if haveProcs {
		if before, err = o.Procs.Memory(); err != nil {
			return nil, fmt.Errorf("read server memory: %w", err)
		}
		res.Params["mem_cold"] = before
	}
	if o.Warm {
		o.progressf("idle %s: warming up, one session per user", o.Label)
		if err := warmIdle(ctx, &o); err != nil {
			if errors.Is(err, errUnsupported) {
				res.Unsupported = err.Error()
				return res, nil
			}
			return res, fmt.Errorf("warm-up: %w", err)
		}
		if haveProcs {
			// The warm-up's garbage (an argon2id check allocates tens of
			// MB) must be returned before the baseline is taken.
			t := time.Now()
			if before, err = stableMemory(ctx, o.Procs, o.MemWait); err != nil {
				return nil, fmt.Errorf("read server memory: %w", err)
			}
			res.Params["baseline_wait_s"] = time.Since(t).Round(time.Second).Seconds()
		}
	}
	var goBefore GoMem
	if o.MetricsURL != "" {
		if goBefore, err = ReadGoMem(ctx, o.MetricsURL); err != nil {
			return nil, err
		}
	}
	clock := startCPU(o.Procs)
	events := make(chan idleEvent, 2*o.Conns+16)
	sessions := make([]*idleSession, o.Conns)
	var readers sync.WaitGroup
	defer func() {
		// Close everything, then wait for the readers.
		var wg sync.WaitGroup
		for _, s := range sessions {
			if s != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.c.Close()
				}()
			}
		}
		wg.Wait()
		// A reader may be blocked handing over an event nobody waits for
		// any more: drain until all have returned.
		done := make(chan struct{})
		go func() {
			readers.Wait()
			close(done)
		}()
		for {
			select {
			case <-events:
			case <-done:
				return
			}
		}
	}()

	o.progressf("idle %s: opening %d sessions (%d at a time)", o.Label, o.Conns, o.DialConcurrency)
	start := time.Now()
	var (
		next, opened, failed atomic.Int64
		mu                   sync.Mutex
		firstErr             error
		unsupported          string
	)
	octx, cancelOpen := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range o.DialConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for octx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= o.Conns {
					return
				}
				s, err := openIdle(octx, &o, i)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if errors.Is(err, errUnsupported) && unsupported == "" {
						unsupported = err.Error()
						cancelOpen()
					}
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				sessions[i] = s
				readers.Add(1)
				go func() {
					defer readers.Done()
					s.read(i, events)
				}()
				if n := opened.Add(1); n%1000 == 0 {
					o.progressf("idle %s: %d sessions idling", o.Label, n)
				}
			}
		}()
	}
	wg.Wait()
	cancelOpen()
	setup := time.Since(start)
	if unsupported != "" {
		res.Unsupported = unsupported
		clock.stop(res)
		return res, nil
	}
	n := opened.Load()
	res.AddMetric("sessions", float64(n), "", Info)
	res.AddMetric("setup_s", setup.Seconds(), "s", Info)
	if failed.Load() > 0 {
		res.AddMetric("failed_sessions", float64(failed.Load()), "", Info)
		res.Notef("first session error: %v", firstErr)
	}
	if n == 0 {
		clock.stop(res)
		return res, fmt.Errorf("no session opened: %v", firstErr)
	}
	o.progressf("idle %s: %d sessions idling after %.1f s; settling %s", o.Label, n, setup.Seconds(), o.Settle)
	sleepCtx(ctx, o.Settle)
	if o.MetricsURL != "" {
		goAfter, err := ReadGoMem(ctx, o.MetricsURL)
		if err != nil {
			return nil, err
		}
		if o.GCWait > 0 {
			o.progressf("idle %s: waiting up to %s for the server's next garbage collection", o.Label, o.GCWait)
			var collected bool
			t := time.Now()
			if goAfter, collected, err = waitGC(ctx, o.MetricsURL, goAfter, o.GCWait); err != nil {
				return nil, err
			}
			res.Params["gc_after_setup"] = collected
			res.Params["gc_wait_s"] = time.Since(t).Round(time.Second).Seconds()
		}
		per := func(a, b float64) float64 { return (a - b) / 1024 / float64(n) }
		res.Params["go_before"] = goBefore
		res.Params["go_after"] = goAfter
		res.AddMetric("go_live_heap_per_conn_kib", per(goAfter.HeapAlloc, goBefore.HeapAlloc), "KiB", Info)
		res.AddMetric("go_heap_inuse_per_conn_kib", per(goAfter.HeapInuse, goBefore.HeapInuse), "KiB", Info)
		res.AddMetric("go_stack_per_conn_kib", per(goAfter.StackInuse, goBefore.StackInuse), "KiB", Info)
	}
	if haveProcs {
		t := time.Now()
		after, err := stableMemory(ctx, o.Procs, o.MemWait)
		if err != nil {
			return nil, fmt.Errorf("read server memory: %w", err)
		}
		res.Params["after_wait_s"] = time.Since(t).Round(time.Second).Seconds()
		per := func(kib int64) float64 { return float64(kib) / float64(n) }
		res.Params["mem_baseline"] = before
		res.Params["mem_after"] = after
		rssGrowth := per(after.RSS - before.RSS)
		pssTotal := per(after.PSS)
		res.AddMetric("rss_growth_per_conn_kib", rssGrowth, "KiB", Info)
		if cold, ok := res.Params["mem_cold"].(Mem); ok && o.Warm {
			res.AddMetric("rss_growth_over_cold_per_conn_kib", per(after.RSS-cold.RSS), "KiB", Info)
		}
		res.AddMetric("pss_growth_per_conn_kib", per(after.PSS-before.PSS), "KiB", Info)
		res.AddMetric("pss_total_per_conn_kib", pssTotal, "KiB", Info)
		head := rssGrowth
		if o.MemMetric == MemPSSTotal {
			head = pssTotal
		}
		res.AddMetric("mem_per_conn_kib", head, "KiB", Lower)
		res.AddMetric("server_processes", float64(after.Procs), "", Info)
	}
	if o.Pushes > 0 && o.LMTPAddr != "" && ctx.Err() == nil {
		if err := pushes(ctx, &o, sessions, events, res); err != nil {
			clock.stop(res)
			return res, err
		}
	}
	clock.stop(res)
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// stableMemory reads the memory of p every second until the summed RSS
// of three readings in a row stays within 1 % (or 256 KiB), or maxWait
// has passed: a garbage-collected server returns freed memory to the
// system over seconds, and a reading taken too early charges that
// garbage to whatever is measured.
func stableMemory(ctx context.Context, p *ProcSet, maxWait time.Duration) (Mem, error) {
	deadline := time.Now().Add(maxWait)
	var last [3]int64
	for n := 0; ; n++ {
		m, err := p.Memory()
		if err != nil {
			return m, err
		}
		last[n%3] = m.RSS
		if n >= 2 {
			lo := min(last[0], last[1], last[2])
			hi := max(last[0], last[1], last[2])
			if hi-lo <= max(hi/100, 256) {
				return m, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return m, nil
		}
		sleepCtx(ctx, time.Second)
	}
}

// warmIdle opens one IDLE session per user, ends it (DONE, LOGOUT) and
// closes it, DialConcurrency at a time.
func warmIdle(ctx context.Context, o *IdleOptions) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range min(o.DialConcurrency, o.Users.Count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				u := int(next.Add(1) - 1)
				if u >= o.Users.Count {
					return
				}
				s, err := openIdle(ctx, o, u)
				if err == nil {
					s.c.w.WriteString("DONE\r\n")
					if err = s.c.flush(); err == nil {
						if _, _, err = s.c.readTagged(s.c.tagBuf, nil); err == nil {
							err = s.c.Logout()
						}
					}
					s.c.Close()
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// openIdle opens session i and leaves it in IDLE.
func openIdle(ctx context.Context, o *IdleOptions, i int) (*idleSession, error) {
	d := Dialer{BufSize: 4096, Timeout: 2 * time.Minute}
	if o.Dialer != nil {
		d.TLS = o.Dialer.TLS
		if o.Dialer.Timeout > 0 {
			d.Timeout = o.Dialer.Timeout
		}
	}
	c, err := DialIMAP(ctx, &d, o.Addr)
	if err != nil {
		return nil, err
	}
	s := &idleSession{c: c, user: i % o.Users.Count}
	fail := func(err error) (*idleSession, error) {
		c.Close()
		return nil, err
	}
	if err := c.Login(o.Users.Name(i), o.Users.Password); err != nil {
		return fail(err)
	}
	// Servers may list more capabilities after login (Dovecot offers
	// COMPRESS only then); ask when the ones needed are not known yet.
	if !c.Caps["IDLE"] || (o.Compress && !c.Caps["COMPRESS=DEFLATE"]) {
		if _, _, err := c.Cmd("CAPABILITY", nil); err != nil {
			return fail(err)
		}
	}
	if !c.Caps["IDLE"] {
		return fail(fmt.Errorf("IDLE: %w", errUnsupported))
	}
	// RFC 4978 §3: COMPRESS after authentication.
	if o.Compress {
		ok, err := c.Compress()
		if err != nil {
			return fail(err)
		}
		if !ok {
			return fail(fmt.Errorf("COMPRESS=DEFLATE: %w", errUnsupported))
		}
	}
	st, text, err := c.Cmd("SELECT INBOX", func(l []byte) {
		if n, word, ok := untaggedNum(l); ok && string(word) == "EXISTS" {
			s.exists = n
		}
	})
	if err != nil {
		return fail(err)
	}
	if st != OK {
		return fail(fmt.Errorf("select: %s %s", st, trunc(text)))
	}
	// RFC 2177 §3: IDLE, then a continuation request while idling.
	tag := c.nextTag()
	c.w.Write(tag)
	c.w.WriteString(" IDLE\r\n")
	if err := c.flush(); err != nil {
		return fail(err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	for {
		line, err := c.readResponse()
		if err != nil {
			return fail(err)
		}
		if bytes.HasPrefix(line, []byte("+")) {
			break
		}
		if st, text, ok := taggedStatus(line, tag); ok {
			return fail(fmt.Errorf("idle: %s %s", st, trunc(text)))
		}
		if n, word, ok := untaggedNum(line); ok && string(word) == "EXISTS" {
			s.exists = n
		}
	}
	_ = c.conn.SetReadDeadline(time.Time{})
	return s, nil
}

// read reports every EXISTS of the idling session until the connection
// closes.
func (s *idleSession) read(i int, events chan<- idleEvent) {
	for {
		line, err := s.c.readResponse()
		if err != nil {
			return
		}
		if n, word, ok := untaggedNum(line); ok && string(word) == "EXISTS" {
			events <- idleEvent{sess: i, exists: n, at: time.Now()}
		}
	}
}

// pushes delivers o.Pushes messages, one at a time, each to the next
// user that has sessions, and records per session the delay between the
// LMTP 250 and the EXISTS.
func pushes(ctx context.Context, o *IdleOptions, sessions []*idleSession, events chan idleEvent, res *Result) error {
	byUser := map[int][]int{}
	last := make([]uint32, len(sessions))
	for i, s := range sessions {
		if s != nil {
			byUser[s.user] = append(byUser[s.user], i)
			last[i] = s.exists
		}
	}
	var users []int
	for u := range o.Users.Count {
		if len(byUser[u]) > 0 {
			users = append(users, u)
		}
	}
	lc, err := DialLMTP(ctx, o.Dialer, o.LMTPAddr, "bench.localhost")
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	defer lc.Close()
	o.progressf("idle %s: %d pushes to %d users", o.Label, o.Pushes, len(users))
	var lat Histogram
	var missed, early int64
	drain := func(deadline time.Time, want map[int]bool, acked time.Time) {
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		for len(want) > 0 {
			select {
			case ev := <-events:
				if ev.exists <= last[ev.sess] {
					continue
				}
				last[ev.sess] = ev.exists
				if !want[ev.sess] {
					continue // late news of an earlier push
				}
				delete(want, ev.sess)
				d := ev.at.Sub(acked)
				if d < 0 {
					early++
					d = 0
				}
				lat.Add(d)
			case <-timer.C:
				missed += int64(len(want))
				return
			case <-ctx.Done():
				return
			}
		}
	}
	begin := time.Now()
	done := 0
	for k := range o.Pushes {
		if ctx.Err() != nil {
			break
		}
		if o.PushBudget > 0 && time.Since(begin) > o.PushBudget {
			res.Notef("push budget %s used up after %d of %d pushes", o.PushBudget, k, o.Pushes)
			break
		}
		done++
		u := users[k%len(users)]
		msg := SMTPData([]byte(fmt.Sprintf("From: push <push@bench.localhost>\r\nTo: %s\r\nSubject: push %d\r\nMessage-ID: <push%d.%d@bench.localhost>\r\n\r\n%s",
			o.Users.Name(u), k, k, time.Now().UnixNano(), strings.Repeat("A short pushed message line for the IDLE latency test.\r\n", 20))))
		codes, err := lc.Deliver(o.From, []string{o.Users.Name(u)}, msg)
		acked := time.Now()
		if err != nil {
			return fmt.Errorf("push delivery: %w", err)
		}
		if codes[0] != 250 {
			return fmt.Errorf("push delivery to %s: reply %d", o.Users.Name(u), codes[0])
		}
		want := map[int]bool{}
		for _, s := range byUser[u] {
			want[s] = true
		}
		drain(acked.Add(o.PushTimeout), want, acked)
	}
	res.Params["pushes"] = done
	res.AddMetric("push_samples", float64(lat.Count()), "", Info)
	res.AddMetric("push_p50", ms(lat.Quantile(0.5)), "ms", Lower)
	res.AddMetric("push_p99", ms(lat.Quantile(0.99)), "ms", Lower)
	res.AddMetric("push_max", ms(lat.Max()), "ms", Lower)
	res.AddMetric("push_missed", float64(missed), "", Lower)
	if early > 0 {
		res.Notef("%d EXISTS arrived before the LMTP 250 was read (counted as 0 ms)", early)
	}
	if missed > 0 {
		res.Notef("%d sessions saw no EXISTS within %s of the 250", missed, o.PushTimeout)
	}
	return nil
}
