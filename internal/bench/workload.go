package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Users names the accounts a workload uses: Format with one %d verb,
// numbered First, First+1, ..., First+Count-1, all with Password.
type Users struct {
	Format   string
	First    int
	Count    int
	Password string
}

// Name returns the i-th account (i wraps around Count).
func (u Users) Name(i int) string {
	n := max(u.Count, 1)
	return fmt.Sprintf(u.Format, u.First+i%n)
}

// Validate checks that the users are usable.
func (u Users) Validate() error {
	if u.Count < 1 {
		return fmt.Errorf("need at least one user")
	}
	if u.Format == "" {
		return fmt.Errorf("empty user format")
	}
	if got := fmt.Sprintf(u.Format, 1); got == fmt.Sprintf(u.Format, 2) {
		return fmt.Errorf("user format %q needs a %%d", u.Format)
	}
	return nil
}

// Common holds what every workload needs.
type Common struct {
	// Addr is the server's host:port for the workload's protocol.
	Addr string
	// Label names the server in reports ("postfach", "dovecot").
	Label string
	// Case names the comparable configuration; empty means a name built
	// from the workload and its main parameters.
	Case string
	// Dialer configures connections (TLS, buffers, timeouts).
	Dialer *Dialer
	// Procs, when not empty, are the server's processes: their CPU time
	// (and for idle, memory) is reported.
	Procs *ProcSet
	// Progress, when set, receives one line per phase.
	Progress io.Writer
}

func (c *Common) progressf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}

func (c *Common) newResult(bench, defCase string) *Result {
	r := &Result{Bench: bench, Case: c.Case, Label: c.Label, Addr: c.Addr, Time: time.Now().UTC(), Params: map[string]any{}, Metrics: []Metric{}}
	if r.Case == "" {
		r.Case = defCase
	}
	if c.Dialer != nil && c.Dialer.TLS != nil {
		r.Params["tls"] = true
	}
	return r
}

// runWorkers runs n workers until they return and merges their
// Recorders. Each worker gets its index and its own Recorder.
func runWorkers(n int, from, until time.Time, work func(i int, rec *Recorder)) *Recorder {
	recs := make([]*Recorder, n)
	var wg sync.WaitGroup
	for i := range n {
		recs[i] = NewRecorder(from, until)
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(i, recs[i])
		}()
	}
	wg.Wait()
	all := NewRecorder(time.Time{}, time.Time{})
	for _, r := range recs {
		all.Merge(r)
	}
	return all
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// totals sums counts and errors over ops, skipping the excluded names,
// and merges their histograms.
func totals(rec *Recorder, exclude ...string) (count, errs int64, h Histogram) {
	skip := map[string]bool{}
	for _, e := range exclude {
		skip[e] = true
	}
	for _, name := range rec.Names() {
		if skip[name] {
			continue
		}
		s := rec.Op(name)
		count += s.Hist.Count()
		errs += s.Errors
		h.Merge(&s.Hist)
	}
	return count, errs, h
}
