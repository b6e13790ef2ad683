package bench

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SubmitOptions configure the submission workload (issue 15): clients
// submit corpus messages to remote recipients, the server's outbound
// queue delivers them to a Sink, and the rate counts what reached it.
type SubmitOptions struct {
	Common
	// Users are the senders: client i signs in as user i and sends as
	// that address (envelope and From:).
	Users Users
	// NoAuth sends without AUTH (a server that relays for loopback).
	NoAuth bool
	// StartTLS starts TLS before AUTH.
	StartTLS bool
	// Clients is the number of concurrent submission connections.
	Clients          int
	Duration, Warmup time.Duration
	// Drain bounds the wait after the measurement for the messages
	// still in the server's queue to reach the sink.
	Drain time.Duration
	// Rcpts is the number of recipients per message (default 1), all at
	// RcptDomain.
	Rcpts      int
	RcptDomain string
	Corpus     *Corpus
	// MaxSize, when > 0, keeps only corpus messages of at most MaxSize
	// bytes.
	MaxSize int
	// SinkAddr is where the sink listens; the server under test must
	// deliver there.
	SinkAddr string
}

// submitMsg is a corpus message ready for submission: its header without
// the fields the workload writes itself, and its body, in DATA form.
type submitMsg struct {
	rest []byte
}

// dropOnSubmit are the corpus header fields replaced or left out: the
// trace fields of its original delivery, the author and recipients
// (the workload's own), and the Message-ID (one per submission).
var dropOnSubmit = []string{"received", "dkim-signature", "return-path", "from", "sender", "to", "cc", "bcc", "message-id", "reply-to"}

// prepareSubmit removes dropOnSubmit from each message's header and
// encodes the rest for DATA.
func prepareSubmit(c *Corpus) []submitMsg {
	out := make([]submitMsg, len(c.Msgs))
	for i, m := range c.Msgs {
		var b bytes.Buffer
		skip := false
		rest := m
		for len(rest) > 0 {
			end := bytes.IndexByte(rest, '\n')
			var line []byte
			if end < 0 {
				line, rest = rest, nil
			} else {
				line, rest = rest[:end+1], rest[end+1:]
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				b.Write(line)
				b.Write(rest)
				break
			}
			if line[0] != ' ' && line[0] != '\t' {
				name, _, _ := bytes.Cut(line, []byte(":"))
				skip = slices.Contains(dropOnSubmit, strings.ToLower(string(bytes.TrimSpace(name))))
			}
			if !skip {
				b.Write(line)
			}
		}
		out[i] = submitMsg{rest: SMTPData(b.Bytes())}
	}
	return out
}

// RunSubmit runs the submission workload. A message counts when the sink
// answered 250 to the server's delivery of it within the measurement;
// the figures also give the submission rate (250s at the end of the
// data), the time from the start of a submission to the sink's 250, and
// the server's CPU time per message over the measurement.
func RunSubmit(ctx context.Context, o SubmitOptions) (*Result, error) {
	if err := o.Users.Validate(); err != nil {
		return nil, err
	}
	if o.Clients < 1 || o.Duration <= 0 || o.Corpus == nil || len(o.Corpus.Msgs) == 0 || o.SinkAddr == "" {
		return nil, fmt.Errorf("need clients >= 1, a duration, a corpus and a sink address")
	}
	o.Rcpts = max(o.Rcpts, 1)
	if o.RcptDomain == "" {
		o.RcptDomain = "sink.test"
	}
	if o.MaxSize > 0 {
		o.Corpus = o.Corpus.Smaller(o.MaxSize)
		if len(o.Corpus.Msgs) == 0 {
			return nil, fmt.Errorf("no corpus message of at most %d bytes", o.MaxSize)
		}
	}
	msgs := prepareSubmit(o.Corpus)
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	sink, err := StartSink(o.SinkAddr, runID)
	if err != nil {
		return nil, err
	}
	defer sink.Close()

	res := o.newResult("submit", fmt.Sprintf("submit-c%d", o.Clients))
	res.Params["clients"] = o.Clients
	res.Params["rcpts"] = o.Rcpts
	res.Params["users"] = o.Users.Count
	res.Params["starttls"] = o.StartTLS
	res.Params["auth"] = !o.NoAuth
	res.Params["corpus_msgs"] = len(msgs)
	res.Params["corpus_mean_kb"] = float64(o.Corpus.TotalBytes()) / float64(len(o.Corpus.Msgs)) / 1000
	if o.MaxSize > 0 {
		res.Params["max_size"] = o.MaxSize
	}
	start := time.Now()
	from, until := start.Add(o.Warmup), start.Add(o.Warmup+o.Duration)
	wctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	o.progressf("submit %s: %d clients, %s warmup + %s, sink %s", o.Label, o.Clients, o.Warmup, o.Duration, sink.Addr())

	var (
		mu        sync.Mutex
		first     error
		submitted sync.Map // seq -> time the submission began
		accepted  atomic.Int64
		inWindow  atomic.Int64
	)
	// The server's CPU over the measurement only, not the warmup.
	var clock *cpuClock
	clockDone := make(chan struct{})
	go func() {
		defer close(clockDone)
		sleepCtx(ctx, time.Until(from))
		clock = startCPU(o.Procs)
	}()
	rec := runWorkers(o.Clients, from, until, func(i int, rec *Recorder) {
		err := submitWorker(wctx, &o, msgs, runID, i, rec, &submitted, &accepted, &inWindow, from, until)
		if err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
	})
	<-clockDone
	var cpu Result
	if clock != nil {
		clock.stop(&cpu)
	}
	arrivedAtEnd, _, _ := sink.Counts()

	// Drain: the messages accepted in time are all expected at the sink.
	want := accepted.Load()
	drainStart := time.Now()
	for ctx.Err() == nil && time.Since(drainStart) < o.Drain {
		if n, _, _ := sink.Counts(); n >= want {
			break
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	drain := time.Since(drainStart)

	// Arrivals within the measurement, and the time of each message from
	// its submission to the sink.
	var e2e Histogram
	delivered := 0
	submitted.Range(func(k, v any) bool {
		at, ok := sink.Arrival(k.(string))
		if !ok {
			return true
		}
		if !at.Before(from) && !at.After(until) {
			delivered++
		}
		if began := v.(time.Time); !began.Before(from) && !began.After(until) {
			e2e.Add(at.Sub(began))
		}
		return true
	})
	arrived, dups, stray := sink.Counts()
	secs := o.Duration.Seconds()
	res.Seconds = secs
	res.Ops = rec.Summaries(o.Duration)
	res.AddMetric("msgs_per_s", float64(delivered)/secs, "msg/s", Higher)
	res.AddMetric("submit_per_s", float64(inWindow.Load())/secs, "msg/s", Higher)
	if s := rec.Op("submit"); s != nil {
		res.AddMetric("submit_p50", ms(s.Hist.Quantile(0.5)), "ms", Lower)
		res.AddMetric("submit_p99", ms(s.Hist.Quantile(0.99)), "ms", Lower)
		res.AddMetric("mb_per_s", float64(s.Bytes)/1e6/secs, "MB/s", Info)
	}
	if e2e.Count() > 0 {
		res.AddMetric("to_sink_p50", ms(e2e.Quantile(0.5)), "ms", Lower)
		res.AddMetric("to_sink_p99", ms(e2e.Quantile(0.99)), "ms", Lower)
	}
	res.ClientCPU = cpu.ClientCPU
	res.ServerCPU = cpu.ServerCPU
	if cpu.ServerCPU != nil && delivered > 0 {
		res.AddMetric("server_cpu_ms_per_msg", cpu.ServerCPU.Seconds*1000/float64(delivered), "ms", Lower)
	}
	res.AddMetric("queued_at_end", float64(want-arrivedAtEnd), "msg", Info)
	res.AddMetric("drain_s", drain.Seconds(), "s", Info)
	res.AddMetric("lost", float64(max(0, want-arrived)), "msg", Lower)
	res.AddMetric("duplicates", float64(dups), "msg", Lower)
	if arrived > 0 {
		// A check that the server signed what it was meant to sign.
		res.AddMetric("dkim_signed_share", float64(sink.Signed())/float64(arrived), "", Info)
	}
	_, errs, _ := totals(rec)
	res.AddMetric("errors", float64(errs), "", Info)
	if stray > 0 {
		res.Notef("%d messages of an earlier run reached the sink", stray)
	}
	if want > arrived {
		res.Notef("%d accepted messages had not reached the sink after %s", want-arrived, o.Drain)
	}
	if first != nil {
		res.Notef("first error: %v", first)
	}
	if delivered == 0 {
		return res, fmt.Errorf("nothing reached the sink: %v", first)
	}
	return res, nil
}

func submitWorker(ctx context.Context, o *SubmitOptions, msgs []submitMsg, runID string, i int, rec *Recorder,
	submitted *sync.Map, accepted, inWindow *atomic.Int64, from, until time.Time) error {
	user := o.Users.Name(i)
	sd := SubmitDial{Addr: o.Addr, StartTLS: o.StartTLS, User: user, Password: o.Users.Password}
	if o.NoAuth {
		sd.User = ""
	}
	var c *SubmitClient
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	var first error
	rcpts := make([]string, o.Rcpts)
	var data []byte
	for k := 0; ctx.Err() == nil; k++ {
		if c == nil {
			var err error
			start := time.Now()
			if c, err = DialSubmit(ctx, o.Dialer, sd); err != nil {
				rec.Fail("connect")
				if first == nil {
					first = err
				}
				sleepCtx(ctx, 20*time.Millisecond)
				continue
			}
			rec.Done("connect", start, 0)
		}
		for r := range rcpts {
			rcpts[r] = fmt.Sprintf("rcpt%d@%s", (i*7919+k*o.Rcpts+r)%1000, o.RcptDomain)
		}
		seq := fmt.Sprintf("%s-%d-%d", runID, i, k)
		m := msgs[(i*104729+k)%len(msgs)]
		data = data[:0]
		data = fmt.Appendf(data, "%s%s\r\nFrom: <%s>\r\nTo: <%s>\r\nMessage-ID: <%s@bench.localhost>\r\n",
			seqField, seq, user, strings.Join(rcpts, ">,\r\n <"), seq)
		data = append(data, m.rest...)
		start := time.Now()
		submitted.Store(seq, start)
		code, text, err := c.Send(user, rcpts, data)
		if err != nil {
			submitted.Delete(seq)
			rec.Fail("submit")
			c.Close()
			c = nil
			if first == nil {
				first = err
			}
			continue
		}
		if code != 250 {
			submitted.Delete(seq)
			rec.Fail("submit")
			if first == nil {
				first = fmt.Errorf("submission refused: %d %s", code, text)
			}
			continue
		}
		accepted.Add(1)
		now := time.Now()
		if !now.Before(from) && !now.After(until) {
			inWindow.Add(1)
		}
		rec.Done("submit", start, int64(len(data)))
	}
	return first
}
