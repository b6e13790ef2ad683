package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/postfach/postfach/internal/dnstest"
)

// MXOptions configure the MX delivery workload (issue 16): SMTP
// connections deliver corpus messages from made-up sender domains that
// publish SPF, DKIM and DMARC records on a DNS server of the bench's own,
// so that the server's sender authentication checks have real work.
type MXOptions struct {
	Common
	// Users are the recipients (local accounts of the server).
	Users Users
	// Conns is the number of concurrent SMTP connections.
	Conns            int
	Duration, Warmup time.Duration
	Corpus           *Corpus
	// MaxSize, when > 0, uses only the corpus messages of at most MaxSize
	// bytes.
	MaxSize int
	// Senders is the number of sender domains (s1.mx.bench, ...); each
	// message's From: and MAIL FROM are rewritten to one of them.
	Senders int
	// Signed is the share of messages, in percent, that carry DKIM
	// signatures of their sender domain.
	Signed int
	// Algorithms sign each signed message: "rsa" (2048 bits), "ed25519",
	// or both (one signature each, as postfach signs).
	Algorithms []string
	// DNSListen, when set, is the address (host:port, UDP and TCP) of the
	// DNS server the workload starts for the duration of the run, serving
	// the senders' records; the server's [dns] servers names it. Empty:
	// no server is started, and the records are printed (Progress) for
	// another one to serve.
	DNSListen string
}

// mxSender is one sender domain with its keys.
type mxSender struct {
	domain  string
	signers []*dkim.SignOptions
	records []string // zone file lines
}

// MXSenderDomain is the name of sender domain i (1-based).
func MXSenderDomain(i int) string { return fmt.Sprintf("s%d.mx.bench", i) }

// newMXSender makes sender domain i's keys and records: SPF for 127.0.0.1
// (RFC 7208), DMARC p=reject (RFC 7489), and one DKIM key per algorithm
// (RFC 6376 §3.6.1, RFC 8463).
func newMXSender(i int, algs []string) (*mxSender, error) {
	s := &mxSender{domain: MXSenderDomain(i)}
	s.records = append(s.records,
		s.domain+`. 3600 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`_dmarc.`+s.domain+`. 3600 IN TXT "v=DMARC1; p=reject"`)
	for _, alg := range algs {
		var key crypto.Signer
		var pub []byte
		switch alg {
		case "rsa":
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				return nil, err
			}
			if pub, err = x509.MarshalPKIXPublicKey(&k.PublicKey); err != nil {
				return nil, err
			}
			key = k
		case "ed25519":
			p, k, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return nil, err
			}
			key, pub = k, p
		default:
			return nil, fmt.Errorf("unknown DKIM algorithm %q (want rsa, ed25519)", alg)
		}
		sel := "bench-" + alg
		s.signers = append(s.signers, &dkim.SignOptions{Domain: s.domain, Selector: sel, Signer: key,
			HeaderKeys:             []string{"From", "To", "Subject", "Date", "Message-ID"},
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed})
		val := "v=DKIM1; k=" + alg + "; p=" + base64.StdEncoding.EncodeToString(pub)
		var parts []string
		for len(val) > 0 {
			n := min(len(val), 255) // RFC 1035 §3.3.14
			parts, val = append(parts, `"`+val[:n]+`"`), val[n:]
		}
		s.records = append(s.records, sel+"._domainkey."+s.domain+". 3600 IN TXT "+strings.Join(parts, " "))
	}
	return s, nil
}

// rewriteFrom replaces msg's From: field (with its continuation lines)
// by one of addr.
func rewriteFrom(msg []byte, addr string) []byte {
	end := bytes.Index(msg, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(msg)
	}
	var out bytes.Buffer
	out.Grow(len(msg) + 64)
	skipping, done := false, false
	for off := 0; off < end+2 && off < len(msg); {
		nl := bytes.IndexByte(msg[off:], '\n')
		if nl < 0 {
			nl = len(msg) - off - 1
		}
		line := msg[off : off+nl+1]
		off += nl + 1
		if skipping && len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			continue
		}
		skipping = false
		if !done && len(line) >= 5 && strings.EqualFold(string(line[:5]), "from:") {
			out.WriteString("From: Bench Sender <" + addr + ">\r\n")
			skipping, done = true, true
			continue
		}
		out.Write(line)
	}
	if !done {
		return append([]byte("From: Bench Sender <"+addr+">\r\n"), msg...)
	}
	if end+2 < len(msg) {
		out.Write(msg[end+2:])
	}
	return out.Bytes()
}

// mxMessage is one prepared message: its sender and its DATA form.
type mxMessage struct {
	from string
	data []byte
}

// prepareMX rewrites and signs every corpus message once.
func prepareMX(o *MXOptions, senders []*mxSender) ([]mxMessage, int, error) {
	msgs := make([]mxMessage, len(o.Corpus.Msgs))
	signed := 0
	for i, m := range o.Corpus.Msgs {
		s := senders[i%len(senders)]
		addr := fmt.Sprintf("user%d@%s", i%97, s.domain)
		m = rewriteFrom(m, addr)
		// Spread the signed messages evenly: message i is signed when the
		// share crosses a whole number at i.
		if (i+1)*o.Signed/100 > i*o.Signed/100 {
			var sigs []byte
			for _, so := range s.signers {
				var b bytes.Buffer
				if err := dkim.Sign(&b, bytes.NewReader(m), so); err != nil {
					return nil, 0, fmt.Errorf("sign corpus message %d: %w", i, err)
				}
				// dkim.Sign writes the signature field, then the message.
				sigs = append(sigs, b.Bytes()[:b.Len()-len(m)]...)
			}
			m = append(sigs, m...)
			signed++
		}
		msgs[i] = mxMessage{from: "bounce@" + s.domain, data: SMTPData(m)}
	}
	return msgs, signed, nil
}

// senders makes the sender domains with fresh keys.
func (o *MXOptions) senders() ([]*mxSender, error) {
	var out []*mxSender
	for i := range o.Senders {
		s, err := newMXSender(i+1, o.Algorithms)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// RunMX delivers corpus messages over Conns SMTP connections for the
// duration, from sender domains whose SPF, DKIM and DMARC records its own
// DNS server serves (DNSListen). A delivery counts when the server
// answered 250 after the data. It reports the rate and, with Procs, the
// server's CPU time per message over the measured interval.
func RunMX(ctx context.Context, o MXOptions) (*Result, error) {
	if err := o.Users.Validate(); err != nil {
		return nil, err
	}
	if o.Conns < 1 || o.Duration <= 0 || o.Corpus == nil || len(o.Corpus.Msgs) == 0 {
		return nil, fmt.Errorf("need conns >= 1, a duration and a corpus")
	}
	if o.Senders < 1 || o.Signed < 0 || o.Signed > 100 {
		return nil, fmt.Errorf("need senders >= 1 and signed in 0..100")
	}
	if o.MaxSize > 0 {
		o.Corpus = o.Corpus.Smaller(o.MaxSize)
		if len(o.Corpus.Msgs) == 0 {
			return nil, fmt.Errorf("no corpus message of at most %d bytes", o.MaxSize)
		}
	}
	senders, err := o.senders()
	if err != nil {
		return nil, err
	}
	if o.DNSListen != "" {
		var recs []string
		for _, s := range senders {
			recs = append(recs, s.records...)
		}
		dns, err := dnstest.Start(o.DNSListen, recs...)
		if err != nil {
			return nil, fmt.Errorf("start dns server: %w", err)
		}
		defer dns.Close()
	} else if o.Progress != nil {
		o.progressf("no --dns-listen: the server's resolver must answer these records")
		for _, s := range senders {
			for _, r := range s.records {
				o.progressf("%s", r)
			}
		}
	}
	msgs, signed, err := prepareMX(&o, senders)
	if err != nil {
		return nil, err
	}
	res := o.newResult("mx", fmt.Sprintf("mx-c%d", o.Conns))
	if o.MaxSize > 0 {
		res.Params["max_size"] = o.MaxSize
	}
	res.Params["conns"] = o.Conns
	res.Params["users"] = o.Users.Count
	res.Params["senders"] = o.Senders
	res.Params["signed_pct"] = o.Signed
	res.Params["signed_msgs"] = signed
	res.Params["algorithms"] = strings.Join(o.Algorithms, ",")
	res.Params["corpus_msgs"] = len(msgs)
	res.Params["corpus_mean_kb"] = float64(o.Corpus.TotalBytes()) / float64(len(msgs)) / 1000
	start := time.Now()
	from, until := start.Add(o.Warmup), start.Add(o.Warmup+o.Duration)
	wctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	o.progressf("mx %s: %d connections, %d of %d messages signed (%s), %s warmup + %s", o.Label, o.Conns, signed, len(msgs),
		strings.Join(o.Algorithms, "+"), o.Warmup, o.Duration)
	var (
		mu        sync.Mutex
		first     error
		delivered atomic.Int64
		cpu0      time.Duration
		cpuOK     atomic.Bool
	)
	// The server's CPU time over the measured interval only (the warm-up
	// fills the DNS cache).
	cpuDone := make(chan time.Duration, 1)
	if !o.Procs.Empty() {
		go func() {
			sleepCtx(wctx, time.Until(from))
			c0, err := o.Procs.CPU()
			cpu0 = c0
			<-wctx.Done()
			c1, err1 := o.Procs.CPU()
			cpuOK.Store(err == nil && err1 == nil)
			cpuDone <- c1 - cpu0
		}()
	}
	clock := startCPU(o.Procs)
	rec := runWorkers(o.Conns, from, until, func(i int, rec *Recorder) {
		err := mxWorker(wctx, &o, msgs, i, rec, &delivered, from, until)
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
	}
	if !o.Procs.Empty() {
		d := <-cpuDone
		if cpuOK.Load() && n > 0 {
			res.AddMetric("server_cpu_us_per_msg", float64(d.Microseconds())/float64(n), "µs", Lower)
		}
	}
	_, errs, _ := totals(rec)
	res.AddMetric("errors", float64(errs), "", Info)
	if first != nil {
		res.Notef("first error: %v", first)
	}
	if n == 0 {
		return res, fmt.Errorf("nothing delivered: %v", first)
	}
	return res, nil
}

func mxWorker(ctx context.Context, o *MXOptions, msgs []mxMessage, i int, rec *Recorder, delivered *atomic.Int64, from, until time.Time) error {
	var c *LMTPClient
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	var first error
	rcpt := make([]string, 1)
	for k := 0; ctx.Err() == nil; k++ {
		if c == nil {
			var err error
			if c, err = DialSMTP(ctx, o.Dialer, o.Addr, "mail.mx.bench"); err != nil {
				rec.Fail("connect")
				if first == nil {
					first = err
				}
				sleepCtx(ctx, 20*time.Millisecond)
				continue
			}
		}
		rcpt[0] = o.Users.Name(i*7919 + k)
		m := msgs[(i*104729+k)%len(msgs)]
		start := time.Now()
		codes, err := c.Deliver(m.from, rcpt, m.data)
		if err != nil {
			rec.Fail("deliver")
			c.Close()
			c = nil
			if first == nil {
				first = err
			}
			continue
		}
		now := time.Now()
		if codes[0] == 250 {
			if !now.Before(from) && !now.After(until) {
				delivered.Add(1)
			}
			rec.Done("deliver", start, int64(len(m.data)))
		} else {
			rec.Fail("deliver")
			if first == nil {
				first = fmt.Errorf("delivery reply %d", codes[0])
			}
		}
	}
	return first
}
