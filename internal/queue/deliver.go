package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postfach/postfach/internal/dnsr"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// outcome is the result for one recipient of one attempt.
type outcome struct {
	set       bool
	kind      int // outDelivered, outTemp, outPerm
	status    string
	diag      string
	remote    string
	finalized bool
}

const (
	outDelivered = iota + 1
	outTemp
	outPerm
)

// attempt is one claimed entry while its destinations are tried.
type attempt struct {
	entry store.QueueEntry
	mu    sync.Mutex
	out   []outcome // by recipient
	left  int       // jobs still running
}

func (a *attempt) set(i int, o outcome) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.out[i].set {
		o.set = true
		a.out[i] = o
	}
}

func (a *attempt) isSet(i int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.out[i].set
}

// job is the part of an attempt that goes to one destination: the
// indexes of its recipients there.
type job struct {
	a     *attempt
	rcpts []int
	once  sync.Once // jobDone
}

// jobDone counts the job as done and finishes its entry when it was the
// last: each entry is recorded as soon as it can be, so that a crash
// sends again as little as possible.
func (q *Queue) jobDone(ctx context.Context, j *job) {
	j.once.Do(func() {
		j.a.mu.Lock()
		j.a.left--
		last := j.a.left == 0
		j.a.mu.Unlock()
		if last {
			q.finish(ctx, j.a)
		}
	})
}

// pending returns the job's recipients without an outcome yet.
func (j *job) pending() []int {
	var out []int
	for _, i := range j.rcpts {
		if !j.a.isSet(i) {
			out = append(out, i)
		}
	}
	return out
}

// setAll gives every recipient of the job without an outcome o.
func (j *job) setAll(o outcome) {
	for _, i := range j.rcpts {
		j.a.set(i, o)
	}
}

// dispatch groups the entries' pending recipients by destination (the
// recipient's domain, or the relay) and starts one delivery per
// destination; each entry is finished once all of its jobs are.
func (q *Queue) dispatch(ctx context.Context, entries []store.QueueEntry) {
	type dest struct {
		name string
		jobs []*job
	}
	var order []*dest
	byName := map[string]*dest{}
	for _, e := range entries {
		a := &attempt{entry: e, out: make([]outcome, len(e.Recipients))}
		jobs := map[string]*job{}
		for i, r := range e.Recipients {
			if r.State != store.RcptPending {
				continue
			}
			name := ""
			if q.opt.Relay == nil {
				ad, err := mail.ParseAddress(r.Address)
				if err != nil {
					a.out[i] = outcome{set: true, kind: outPerm, status: "5.1.3", diag: "bad recipient address"}
					continue
				}
				name = strings.ToLower(ad.Domain)
			}
			j := jobs[name]
			if j == nil {
				j = &job{a: a}
				jobs[name] = j
				d := byName[name]
				if d == nil {
					d = &dest{name: name}
					byName[name] = d
					order = append(order, d)
				}
				d.jobs = append(d.jobs, j)
				a.left++
			}
			j.rcpts = append(j.rcpts, i)
		}
		if a.left == 0 {
			q.wg.Add(1)
			go func() {
				defer q.wg.Done()
				q.finish(ctx, a)
			}()
		}
	}
	for _, d := range order {
		// Several connections to a busy destination, each carrying a
		// few messages.
		for len(d.jobs) > 0 {
			n := min(len(d.jobs), perConnection)
			jobs := d.jobs[:n]
			d.jobs = d.jobs[n:]
			q.wg.Add(1)
			go func() {
				defer q.wg.Done()
				q.deliverDest(ctx, d.name, jobs)
			}()
		}
	}
}

// perConnection is the most messages one connection carries in one go.
const perConnection = 10

// deliverDest runs the deliveries to one destination in a connection
// slot, then finishes the entries whose last job it was.
func (q *Queue) deliverDest(ctx context.Context, domain string, jobs []*job) {
	select {
	case q.sem <- struct{}{}:
		actx, cancel := context.WithTimeout(ctx, lease-5*time.Minute)
		err := q.deliverTo(actx, domain, jobs)
		cancel()
		<-q.sem
		if err != nil {
			o := outcome{kind: outTemp, status: "4.4.1", diag: err.Error()}
			if errors.Is(err, dnsr.ErrTemporary) {
				o.status = "4.4.3" // RFC 3463: directory server failure
			}
			var pe *permError
			if errors.As(err, &pe) {
				o = outcome{kind: outPerm, status: pe.status, diag: pe.msg}
			}
			for _, j := range jobs {
				j.setAll(o)
			}
		}
	case <-ctx.Done():
		// Shutting down before the attempt began: nothing to record;
		// the next start takes the entries up again.
	}
	for _, j := range jobs {
		q.jobDone(ctx, j)
	}
}

// permError is a failure that no retry can mend (a domain that does not
// exist, a null MX).
type permError struct {
	status, msg string
}

func (e *permError) Error() string { return e.msg }

// host is a server to try: its name, its addresses and how TLS must go.
type host struct {
	name string
	port int
	ips  []netip.Addr
	pol  tlsPolicy
}

// deliverTo delivers the jobs to domain (or to the relay). Recipients
// still without an outcome when it returns get the error (temporary
// unless it is a *permError), or "no host could be reached".
func (q *Queue) deliverTo(ctx context.Context, domain string, jobs []*job) error {
	var lastErr error
	next := func(yield func(host) bool) {}
	if q.opt.Relay != nil {
		next = q.relayHosts
	} else {
		hosts, err := q.mxHosts(ctx, domain)
		if err != nil {
			return err
		}
		next = hosts
	}
	for h := range next {
		for _, ip := range h.ips {
			if ctx.Err() != nil {
				return fmt.Errorf("attempt cut off: %w", ctx.Err())
			}
			left := false
			for _, j := range jobs {
				if len(j.pending()) > 0 {
					left = true
				}
			}
			if !left {
				return nil
			}
			err := q.session(ctx, h, ip, jobs)
			if err == nil {
				return nil
			}
			q.log.Info("delivery attempt failed", "domain", domain, "host", h.name, "ip", ip, "err", err)
			lastErr = fmt.Errorf("%s[%s]: %w", h.name, ip, err)
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no host to deliver to")
	}
	return lastErr
}

// relayHosts yields the smarthost.
func (q *Queue) relayHosts(yield func(host) bool) {
	r := q.opt.Relay
	name, portStr, err := net.SplitHostPort(r.Host)
	if err != nil {
		return
	}
	port, _ := strconv.Atoi(portStr)
	h := host{name: name, port: port, pol: tlsPolicy{relay: r}}
	if ip, err := netip.ParseAddr(name); err == nil {
		h.ips = []netip.Addr{ip}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
		if err != nil {
			q.log.Warn("relay host lookup failed", "host", name, "err", err)
			return
		}
		h.ips = addrs
	}
	yield(h)
}

// mxHosts finds where mail for domain goes (RFC 5321 §5.1): its MX hosts
// in preference order, or the domain itself when it has no MX records;
// a null MX (RFC 7505) refuses mail. With an MTA-STS policy in enforce
// mode, hosts that it does not list are left out (RFC 8461 §4.1); DANE
// TLSA records apply to a host whose addresses the resolver validated
// (RFC 7672 §2.2).
func (q *Queue) mxHosts(ctx context.Context, domain string) (func(yield func(host) bool), error) {
	mx, _, err := q.opt.Resolver.MX(ctx, domain)
	if dnsr.IsNotFound(err) {
		return nil, &permError{status: "5.1.2", msg: "the domain " + domain + " does not exist"}
	}
	if err != nil {
		return nil, fmt.Errorf("MX lookup: %w", err)
	}
	if len(mx) == 1 && mx[0].Host == "" {
		return nil, &permError{status: "5.1.10", msg: "the domain " + domain + " accepts no mail (null MX, RFC 7505)"}
	}
	if len(mx) == 0 {
		// RFC 5321 §5.1: no MX records, so the domain itself is the
		// host; without addresses there is nowhere to deliver, for good.
		ips, _, err := q.opt.Resolver.IP(ctx, domain)
		if err != nil && !dnsr.IsNotFound(err) {
			return nil, fmt.Errorf("address lookup: %w", err)
		}
		if len(ips) == 0 {
			return nil, &permError{status: "5.1.2", msg: "the domain " + domain + " has no mail server (no MX and no address records)"}
		}
		mx = []dnsr.MX{{Host: domain}}
	}
	sts := q.sts.policy(ctx, domain)
	return func(yield func(host) bool) {
		for _, m := range mx {
			if m.Host == "" {
				continue
			}
			h := host{name: m.Host, port: q.opt.Port}
			if sts != nil && !sts.matches(m.Host) {
				if sts.mode == "enforce" {
					q.log.Warn("mx host not in the domain's MTA-STS policy; skipped", "domain", domain, "host", m.Host)
					continue
				}
				q.log.Info("mx host not in the domain's MTA-STS policy (testing mode)", "domain", domain, "host", m.Host)
			}
			ips, res, err := q.opt.Resolver.IP(ctx, m.Host)
			if err != nil || len(ips) == 0 {
				q.log.Info("mx host has no address", "domain", domain, "host", m.Host, "err", err)
				continue
			}
			h.ips = ips
			h.pol, err = q.tlsPolicy(ctx, domain, m.Host, h.port, res.Authentic, sts)
			if err != nil {
				q.log.Info("mx host skipped", "domain", domain, "host", m.Host, "err", err)
				continue
			}
			if !yield(h) {
				return
			}
		}
	}, nil
}

// dial connects to ip:port within ctx.
func (q *Queue) dial(ctx context.Context, ip netip.Addr, port int) (net.Conn, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	return d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, uint16(port)).String())
}

// session opens a connection to one address of h and sends every job's
// pending recipients over it, one transaction per entry. It returns an
// error when the connection could not be set up or broke: the caller
// tries the next address for what is left. Replies, good or bad, are
// outcomes.
func (q *Queue) session(ctx context.Context, h host, ip netip.Addr, jobs []*job) error {
	c, err := q.open(ctx, h, ip, false)
	var tlsErr *tlsFailure
	if errors.As(err, &tlsErr) && !h.pol.required() {
		// RFC 7435 (opportunistic security): a failed handshake with
		// a host that need not authenticate is retried in plain text.
		q.log.Info("tls handshake failed; retrying without tls", "host", h.name, "err", err)
		c, err = q.open(ctx, h, ip, true)
	}
	if err != nil {
		return err
	}
	defer c.quit(ctx)
	remote := h.name
	for _, j := range jobs {
		idx := j.pending()
		if len(idx) == 0 {
			continue
		}
		if err := q.transaction(ctx, c, j.a, idx, remote); err != nil {
			return err
		}
		if len(j.pending()) == 0 {
			q.jobDone(ctx, j)
		}
	}
	return nil
}

// tlsFailure is a failed TLS handshake.
type tlsFailure struct{ err error }

func (e *tlsFailure) Error() string { return e.err.Error() }
func (e *tlsFailure) Unwrap() error { return e.err }

// open connects, reads the greeting, says EHLO, starts TLS as the
// policy wants (or never, with plain), and authenticates to a relay.
func (q *Queue) open(ctx context.Context, h host, ip netip.Addr, plain bool) (*client, error) {
	conn, err := q.dial(ctx, ip, h.port)
	if err != nil {
		return nil, err
	}
	// A shutdown (or the end of the attempt) cuts the connection, also
	// in the middle of a read.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	implicit := h.pol.relay != nil && h.pol.relay.TLS == RelayImplicit
	if implicit {
		tc := tls.Client(conn, q.tlsConfig(h))
		if err := tc.HandshakeContext(ctx); err != nil {
			stop()
			conn.Close()
			return nil, &tlsFailure{fmt.Errorf("tls handshake: %w", err)}
		}
		conn = tc
	}
	c := newClient(conn, h.name, q.opt.Timeout)
	c.stop = stop
	c.tls = implicit
	ok := false
	defer func() {
		if !ok {
			c.close()
		}
	}()
	g, err := c.greeting(ctx)
	if err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if g.Code != 220 {
		return nil, &ReplyError{Cmd: "greeting", Reply: g}
	}
	if err := c.hello(ctx, q.opt.Hostname); err != nil {
		return nil, err
	}
	wantTLS := !implicit && !plain && (h.pol.relay == nil || h.pol.relay.TLS == RelayStartTLS)
	if wantTLS && c.has("STARTTLS") {
		if err := c.startTLS(ctx, q.tlsConfig(h)); err != nil {
			var re *ReplyError
			if errors.As(err, &re) {
				return nil, err
			}
			return nil, &tlsFailure{err}
		}
		if err := c.hello(ctx, q.opt.Hostname); err != nil {
			return nil, err
		}
	}
	if !c.tls && h.pol.required() {
		return nil, fmt.Errorf("no TLS (%s requires it)", h.pol.why())
	}
	if r := h.pol.relay; r != nil && r.Username != "" {
		if !c.tls {
			return nil, errors.New("not authenticating to the relay without TLS")
		}
		if err := c.auth(ctx, r.Username, r.Password); err != nil {
			return nil, err
		}
	}
	ok = true
	return c, nil
}

// transaction sends one entry to the recipients idx over c and records
// the outcomes. An error means the connection is unusable.
func (q *Queue) transaction(ctx context.Context, c *client, a *attempt, idx []int, remote string) error {
	e := &a.entry
	all := func(o outcome) {
		for _, i := range idx {
			a.set(i, o)
		}
	}
	if e.SMTPUTF8 && !c.has("SMTPUTF8") {
		// RFC 6531 §3.2: a message that needs SMTPUTF8 is not sent to a
		// server without it, and is bounced.
		all(outcome{kind: outPerm, status: "5.6.7", remote: remote,
			diag: "the receiving server (" + remote + ") does not support SMTPUTF8, which this message needs"})
		return nil
	}
	body, err := q.opt.Store.OpenBody(ctx, e.BlobID)
	if err != nil {
		all(outcome{kind: outTemp, status: "4.3.0", diag: "cannot read the queued message: " + err.Error()})
		return nil
	}
	defer body.Close()
	var r io.Reader = io.NewSectionReader(body, 0, body.Size())
	size := body.Size()
	eightBit := e.EightBit
	if eightBit && !c.has("8BITMIME") {
		// RFC 6152 §3: convert for a hop without 8BITMIME.
		all8, err := io.ReadAll(r)
		if err != nil {
			all(outcome{kind: outTemp, status: "4.3.0", diag: "cannot read the queued message: " + err.Error()})
			return nil
		}
		conv, err := To7Bit(all8)
		if err != nil {
			all(outcome{kind: outPerm, status: "5.6.3", remote: remote, diag: "cannot convert the message to 7 bits: " + err.Error()})
			return nil
		}
		r, size, eightBit = strings.NewReader(string(conv)), int64(len(conv)), false
	}
	if ms := c.maxSize(); ms > 0 && size > ms {
		all(outcome{kind: outPerm, status: "5.3.4", remote: remote,
			diag: fmt.Sprintf("the message (%d bytes) is larger than %s accepts (%d bytes)", size, remote, ms)})
		return nil
	}
	rcpts := make([]string, len(idx))
	for k, i := range idx {
		rcpts[k] = e.Recipients[i].Address
	}
	res, err := c.send(ctx, &envelope{from: e.From, rcpts: rcpts, size: size, eightBit: eightBit, smtputf8: e.SMTPUTF8}, r)
	if err != nil {
		return err
	}
	clean := res.mail.Code/100 == 2 && res.data != nil && res.data.Code/100 == 2
	for k, i := range idx {
		rr := res.rcpts[k]
		if rr != nil && rr.Code/100 == 2 {
			rr = res.data
		}
		if rr == nil {
			a.set(i, outcome{kind: outTemp, status: "4.4.2", remote: remote, diag: "no reply from " + remote})
			clean = false
			continue
		}
		o := outcome{status: rr.Status(), diag: rr.String(), remote: remote}
		switch {
		case rr.Code/100 == 2:
			o.kind = outDelivered
		case rr.Permanent():
			o.kind = outPerm
		default:
			o.kind = outTemp
		}
		a.set(i, o)
		if o.kind != outDelivered {
			clean = false
		}
	}
	if !clean {
		if err := c.reset(ctx); err != nil {
			return fmt.Errorf("after a refused transaction: %w", err)
		}
	}
	return nil
}
