package bench

import (
	"context"
	"fmt"
	"time"
)

// LoginOptions configure the IMAP login workload.
type LoginOptions struct {
	Common
	Users            Users
	Clients          int
	Duration, Warmup time.Duration
}

// RunIMAPLogin loops connect, LOGIN, LOGOUT on each client and reports
// logins per second. Every login is a full password check on the
// server's side (or a hit of its verification cache).
func RunIMAPLogin(ctx context.Context, o LoginOptions) (*Result, error) {
	if err := o.Users.Validate(); err != nil {
		return nil, err
	}
	if o.Clients < 1 || o.Duration <= 0 {
		return nil, fmt.Errorf("need clients >= 1 and a duration")
	}
	res := o.newResult("imap-login", fmt.Sprintf("imap-login-c%d", o.Clients))
	res.Params["clients"] = o.Clients
	res.Params["users"] = o.Users.Count
	start := time.Now()
	from, until := start.Add(o.Warmup), start.Add(o.Warmup+o.Duration)
	wctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	o.progressf("imap-login %s: %d clients, %s warmup + %s", o.Label, o.Clients, o.Warmup, o.Duration)
	clock := startCPU(o.Procs)
	errc := make(chan error, o.Clients)
	rec := runWorkers(o.Clients, from, until, func(i int, rec *Recorder) {
		var first error
		user := o.Users.Name(i)
		for n := 0; wctx.Err() == nil; n++ {
			if err := loginOnce(wctx, &o, rec, user); err != nil {
				if first == nil && time.Now().Before(until) {
					first = fmt.Errorf("%s: %w", user, err)
				}
				sleepCtx(wctx, 20*time.Millisecond)
			}
		}
		if first != nil {
			errc <- first
		}
	})
	clock.stop(res)
	close(errc)
	res.Seconds = o.Duration.Seconds()
	res.Ops = rec.Summaries(o.Duration)
	var cycles int64
	var h Histogram
	if s := rec.Op("cycle"); s != nil {
		cycles = s.Hist.Count()
		h = s.Hist
	}
	res.AddMetric("logins_per_s", float64(cycles)/o.Duration.Seconds(), "login/s", Higher)
	res.AddMetric("cycle_p50", ms(h.Quantile(0.5)), "ms", Lower)
	res.AddMetric("cycle_p99", ms(h.Quantile(0.99)), "ms", Lower)
	_, errs, _ := totals(rec)
	res.AddMetric("errors", float64(errs), "", Info)
	for err := range errc {
		res.Notef("first client error: %v", err)
		break
	}
	if cycles == 0 {
		return res, fmt.Errorf("no login completed")
	}
	return res, nil
}

// loginOnce is one connect+LOGIN+LOGOUT cycle.
func loginOnce(ctx context.Context, o *LoginOptions, rec *Recorder, user string) error {
	start := time.Now()
	c, err := DialIMAP(ctx, o.Dialer, o.Addr)
	if err != nil {
		rec.Fail(opConnect)
		rec.Fail("cycle")
		return err
	}
	defer c.Close()
	rec.Done(opConnect, start, 0)
	t := time.Now()
	if err := c.Login(user, o.Users.Password); err != nil {
		rec.Fail(opLogin)
		rec.Fail("cycle")
		return err
	}
	rec.Done(opLogin, t, 0)
	t = time.Now()
	if err := c.Logout(); err != nil {
		rec.Fail(opLogout)
		rec.Fail("cycle")
		return err
	}
	rec.Done(opLogout, t, 0)
	rec.Done("cycle", start, 0)
	return nil
}
