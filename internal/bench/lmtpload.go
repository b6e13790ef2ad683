package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// LMTPOptions configure the LMTP delivery workload.
type LMTPOptions struct {
	Common
	// Users are the recipients; message k of connection c goes to
	// consecutive users starting at a per-connection offset.
	Users Users
	// Conns is the number of concurrent LMTP connections.
	Conns            int
	Duration, Warmup time.Duration
	// Rcpts is the number of recipients per message (default 1).
	Rcpts  int
	Corpus *Corpus
	// MaxSize, when > 0, restricts the messages to those of at most
	// MaxSize bytes (the fsync-bound case of small mail).
	MaxSize int
	// From is the envelope sender.
	From string
}

// RunLMTP delivers corpus messages over Conns connections for the
// duration. A delivery counts only when the server answered 250 for that
// recipient after the data (RFC 2033 §4.2): the server has committed it.
func RunLMTP(ctx context.Context, o LMTPOptions) (*Result, error) {
	if err := o.Users.Validate(); err != nil {
		return nil, err
	}
	if o.Conns < 1 || o.Duration <= 0 || o.Corpus == nil || len(o.Corpus.Msgs) == 0 {
		return nil, fmt.Errorf("need conns >= 1, a duration and a corpus")
	}
	o.Rcpts = max(o.Rcpts, 1)
	if o.MaxSize > 0 {
		o.Corpus = o.Corpus.Smaller(o.MaxSize)
		if len(o.Corpus.Msgs) == 0 {
			return nil, fmt.Errorf("no corpus message of at most %d bytes", o.MaxSize)
		}
	}
	o.Corpus.PrepareSMTP()
	res := o.newResult("lmtp", fmt.Sprintf("lmtp-c%d", o.Conns))
	if o.MaxSize > 0 {
		res.Params["max_size"] = o.MaxSize
	}
	res.Params["conns"] = o.Conns
	res.Params["rcpts"] = o.Rcpts
	res.Params["users"] = o.Users.Count
	res.Params["corpus_msgs"] = len(o.Corpus.Msgs)
	res.Params["corpus_mean_kb"] = float64(o.Corpus.TotalBytes()) / float64(len(o.Corpus.Msgs)) / 1000
	start := time.Now()
	from, until := start.Add(o.Warmup), start.Add(o.Warmup+o.Duration)
	wctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	o.progressf("lmtp %s: %d connections, %s warmup + %s", o.Label, o.Conns, o.Warmup, o.Duration)
	var (
		mu         sync.Mutex
		first      error
		pipelining atomic.Bool
		delivered  atomic.Int64
	)
	clock := startCPU(o.Procs)
	rec := runWorkers(o.Conns, from, until, func(i int, rec *Recorder) {
		err := lmtpWorker(wctx, &o, i, rec, &pipelining, &delivered, from, until)
		if err != nil && time.Now().Before(until) {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
	})
	clock.stop(res)
	res.Seconds = o.Duration.Seconds()
	res.Ops = rec.Summaries(o.Duration)
	n := delivered.Load()
	res.AddMetric("msgs_per_s", float64(n)/o.Duration.Seconds(), "msg/s", Higher)
	if s := rec.Op("deliver"); s != nil {
		res.AddMetric("deliver_p50", ms(s.Hist.Quantile(0.5)), "ms", Lower)
		res.AddMetric("deliver_p99", ms(s.Hist.Quantile(0.99)), "ms", Lower)
		res.AddMetric("mb_per_s", float64(s.Bytes)/1e6/o.Duration.Seconds(), "MB/s", Info)
	}
	_, errs, _ := totals(rec)
	res.AddMetric("errors", float64(errs), "", Info)
	res.Params["pipelining"] = pipelining.Load()
	if first != nil {
		res.Notef("first error: %v", first)
	}
	if n == 0 {
		return res, fmt.Errorf("nothing delivered: %v", first)
	}
	return res, nil
}

func lmtpWorker(ctx context.Context, o *LMTPOptions, i int, rec *Recorder, pipelining *atomic.Bool, delivered *atomic.Int64, from, until time.Time) error {
	var c *LMTPClient
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	var first error
	rcpts := make([]string, o.Rcpts)
	for k := 0; ctx.Err() == nil; k++ {
		if c == nil {
			var err error
			if c, err = DialLMTP(ctx, o.Dialer, o.Addr, "bench.localhost"); err != nil {
				rec.Fail("connect")
				if first == nil {
					first = err
				}
				sleepCtx(ctx, 20*time.Millisecond)
				continue
			}
			pipelining.Store(c.Pipelining())
		}
		for r := range rcpts {
			rcpts[r] = o.Users.Name(i*7919 + k*o.Rcpts + r)
		}
		msg := o.Corpus.SMTP(i*104729 + k)
		start := time.Now()
		codes, err := c.Deliver(o.From, rcpts, msg)
		if err != nil {
			rec.Fail("deliver")
			c.Close()
			c = nil
			if first == nil {
				first = err
			}
			continue
		}
		ok := 0
		for _, code := range codes {
			if code == 250 {
				ok++
			}
		}
		now := time.Now()
		if !now.Before(from) && !now.After(until) {
			delivered.Add(int64(ok))
		}
		if ok == len(codes) {
			rec.Done("deliver", start, int64(len(msg)*ok))
		} else {
			rec.Fail("deliver")
			if first == nil {
				first = fmt.Errorf("delivery replies %v", codes)
			}
		}
	}
	return first
}

// PopulateOptions configure filling mailboxes before a comparison.
type PopulateOptions struct {
	Common
	Users Users
	// PerUser messages go to each user's INBOX.
	PerUser int
	// Conns deliver in parallel, each taking whole users, so a user's
	// messages arrive in the same order on every server.
	Conns  int
	Corpus *Corpus
	From   string
}

// Populate delivers PerUser corpus messages to each user by LMTP. User u
// gets corpus messages u*PerUser, u*PerUser+1, ... (wrapping around the
// corpus), so two servers populated alike hold the same mail.
func Populate(ctx context.Context, o PopulateOptions) (*Result, error) {
	if err := o.Users.Validate(); err != nil {
		return nil, err
	}
	if o.Corpus == nil || len(o.Corpus.Msgs) == 0 || o.PerUser < 1 {
		return nil, fmt.Errorf("need a corpus and per-user >= 1")
	}
	o.Conns = max(o.Conns, 1)
	o.Corpus.PrepareSMTP()
	res := o.newResult("load", "load")
	res.Params["users"] = o.Users.Count
	res.Params["per_user"] = o.PerUser
	o.progressf("load %s: %d users x %d messages", o.Label, o.Users.Count, o.PerUser)
	start := time.Now()
	clock := startCPU(o.Procs)
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var total, bytes atomic.Int64
	runWorkers(o.Conns, time.Time{}, time.Time{}, func(int, *Recorder) {
		err := func() error {
			c, err := DialLMTP(ctx, o.Dialer, o.Addr, "bench.localhost")
			if err != nil {
				return err
			}
			defer c.Close()
			for {
				u := int(next.Add(1) - 1)
				if u >= o.Users.Count || ctx.Err() != nil {
					return ctx.Err()
				}
				rcpt := []string{o.Users.Name(u)}
				for k := range o.PerUser {
					msg := o.Corpus.SMTP(u*o.PerUser + k)
					codes, err := c.Deliver(o.From, rcpt, msg)
					if err != nil {
						return err
					}
					if codes[0] != 250 {
						return fmt.Errorf("deliver to %s: reply %d", rcpt[0], codes[0])
					}
					total.Add(1)
					bytes.Add(int64(len(msg)))
				}
			}
		}()
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	})
	clock.stop(res)
	el := time.Since(start)
	res.Seconds = el.Seconds()
	res.AddMetric("messages", float64(total.Load()), "msg", Info)
	res.AddMetric("msgs_per_s", float64(total.Load())/el.Seconds(), "msg/s", Info)
	res.AddMetric("mb", float64(bytes.Load())/1e6, "MB", Info)
	if firstErr != nil {
		return res, fmt.Errorf("load: %w", firstErr)
	}
	return res, nil
}
