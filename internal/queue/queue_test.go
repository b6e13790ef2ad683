package queue_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/dnstest"
	"github.com/postfach/postfach/internal/queue"
	"github.com/postfach/postfach/internal/testenv"
)

// remoteMX starts a second postfach as the MX of remote.test, with a
// certificate from ca for mx.remote.test (self-signed when ca is nil),
// and an account bob@remote.test.
func remoteMX(t *testing.T, ca *testCA) *testenv.Env {
	t.Helper()
	var certFile, keyFile string
	if ca != nil {
		certFile, keyFile, _ = ca.issue(t, "mx.remote.test")
	}
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		c.Hostname = "mx.remote.test"
		c.Domains = []string{"remote.test"}
		c.TLS.Cert, c.TLS.Key = certFile, keyFile
	}})
	env.AddUser("bob@remote.test", "password")
	return env
}

func remoteDNS(t *testing.T) *dnstest.Server {
	return dnstest.New(t,
		"remote.test. 300 IN MX 10 mx.remote.test.",
		"mx.remote.test. 300 IN A 127.0.0.1",
	)
}

// TestDeliverAndBounce: a message for a known and an unknown user at a
// second postfach: the known one gets it once, over TLS; the unknown one
// is refused for good, and alice finds a DSN (RFC 3464) in her INBOX
// naming that recipient; the entry is gone.
func TestDeliverAndBounce(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	remote := remoteMX(t, ca)
	dns := remoteDNS(t)
	s := startSender(t, dns, port(t, remote.Addr("smtp")), ca.pem, nil, nil)

	id := s.send(t, []string{"bob@remote.test", "nobody@remote.test"}, msg("hello bob", "first line\r\n.a line with a dot"))
	waitFor(t, "the entry to finish", func() bool { return s.entry(t, id) == nil })

	got := remote.Messages("bob@remote.test", "INBOX")
	if len(got) != 1 {
		t.Fatalf("bob has %d messages, want 1", len(got))
	}
	if !strings.Contains(string(got[0]), "\r\n.a line with a dot\r\n") || !strings.Contains(string(got[0]), "Subject: hello bob") {
		t.Errorf("message as delivered:\n%s", got[0])
	}
	if !strings.Contains(string(got[0]), "with ESMTPS") {
		t.Errorf("message did not come over TLS (no ESMTPS in Received):\n%s", got[0])
	}
	dsns := s.Messages("alice@example.org", "INBOX")
	if len(dsns) != 1 {
		t.Fatalf("alice has %d messages, want one DSN", len(dsns))
	}
	d := string(dsns[0])
	for _, want := range []string{"Return-Path: <>", "multipart/report; report-type=delivery-status",
		"Content-Type: message/delivery-status", "Final-Recipient: rfc822; nobody@remote.test", "Action: failed",
		"Status: 5.1.1", "Remote-MTA: dns; mx.remote.test", "Subject: hello bob", "Auto-Submitted: auto-replied"} {
		if !strings.Contains(d, want) {
			t.Errorf("DSN lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "bob@remote.test\r\nAction") {
		t.Errorf("DSN reports the delivered recipient:\n%s", d)
	}
	resp, err := http.Get("http://" + s.Addr("http") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"postfach_queue_messages 0\n", "postfach_queue_deliveries_total{result=\"delivered\"} 1\n",
		"postfach_queue_deliveries_total{result=\"failed\"} 1\n"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestRetryThenDeliver: while the remote domain's DNS fails, the entry
// waits by the retry schedule (5 min after the first failure, 10 after
// the second), not sooner; once DNS answers, the next due attempt
// delivers.
func TestRetryThenDeliver(t *testing.T) {
	t.Parallel()
	remote := remoteMX(t, nil)
	dns := remoteDNS(t)
	dns.Fail("remote.test")
	s := startSender(t, dns, port(t, remote.Addr("smtp")), "", nil, nil)
	t0 := s.clock.now()
	id := s.send(t, []string{"bob@remote.test"}, msg("retry", "body"))
	e := s.attempted(t, id, 1)
	if e == nil || e.Attempts != 1 || !e.NextAttempt.Equal(t0.Add(5*time.Minute)) || !strings.Contains(e.LastError, "MX lookup") ||
		e.Recipients[0].Status != "4.4.3" {
		t.Fatalf("after the first attempt: %+v", e)
	}
	// Not due yet: a kick changes nothing.
	s.clock.add(4 * time.Minute)
	s.Server.Queue().Kick()
	time.Sleep(200 * time.Millisecond) // give a wrong claim the chance to show
	if e := s.entry(t, id); e == nil || e.Attempts != 1 {
		t.Fatalf("entry retried before it was due: %+v", e)
	}
	s.clock.add(time.Minute)
	s.Server.Queue().Kick()
	e = s.attempted(t, id, 2)
	if e == nil || !e.NextAttempt.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("after the second attempt (due at +5m, next at +5m+10m): %+v", e)
	}
	dns.Heal("remote.test")
	s.clock.add(10 * time.Minute)
	s.Server.Queue().Kick()
	waitFor(t, "delivery after the DNS came back", func() bool { return s.entry(t, id) == nil })
	if got := remote.Messages("bob@remote.test", "INBOX"); len(got) != 1 {
		t.Fatalf("bob has %d messages, want 1", len(got))
	}
	if got := s.Messages("alice@example.org", "INBOX"); len(got) != 0 {
		t.Fatalf("alice got %d reports for a message that was delivered", len(got))
	}
}

// TestDelayNoticeAndGiveUp: a host that never answers: after 4 hours the
// sender gets one delay notice; after the lifetime (5 days) a failure
// DSN, and the entry is gone.
func TestDelayNoticeAndGiveUp(t *testing.T) {
	t.Parallel()
	dns := dnstest.New(t,
		"down.test. 300 IN MX 10 mx.down.test.",
		"mx.down.test. 300 IN A 127.0.0.1",
	)
	// Nothing listens on this port: connections are refused.
	s := startSender(t, dns, port(t, closedPort(t)), "", nil, nil)
	id := s.send(t, []string{"carol@down.test"}, msg("never", "body"))
	s.attempted(t, id, 1)
	for n := 2; ; n++ {
		e := s.entry(t, id)
		if e == nil {
			break
		}
		if n > 100 {
			t.Fatal("the queue never gave up")
		}
		s.clock.add(e.NextAttempt.Sub(s.clock.now()))
		s.Server.Queue().Kick()
		s.attempted(t, id, n)
		if age := s.clock.now().Sub(e.Created); age >= 4*time.Hour && age < 5*24*time.Hour {
			if got := s.Messages("alice@example.org", "INBOX"); len(got) != 1 || !strings.Contains(string(got[0]), "Action: delayed") {
				t.Fatalf("at %v: alice has %d messages, want one delay notice", age, len(got))
			}
		}
	}
	got := s.Messages("alice@example.org", "INBOX")
	if len(got) != 2 {
		t.Fatalf("alice has %d messages, want a delay notice and a failure report", len(got))
	}
	if d := string(got[1]); !strings.Contains(d, "Action: failed") || !strings.Contains(d, "Status: 4.") ||
		!strings.Contains(d, "gave up after") || !strings.Contains(d, "Final-Recipient: rfc822; carol@down.test") {
		t.Errorf("failure report:\n%s", d)
	}
}

// TestNoSuchDomain: NXDOMAIN and a null MX (RFC 7505) bounce at once.
func TestNoSuchDomain(t *testing.T) {
	t.Parallel()
	dns := dnstest.New(t, "nullmx.test. 300 IN MX 0 .")
	s := startSender(t, dns, 25, "", nil, nil)
	id := s.send(t, []string{"x@nowhere.test", "y@nullmx.test"}, msg("nowhere", "body"))
	waitFor(t, "the entry to finish", func() bool { return s.entry(t, id) == nil })
	got := s.Messages("alice@example.org", "INBOX")
	if len(got) != 1 {
		t.Fatalf("alice has %d messages, want one DSN", len(got))
	}
	for _, want := range []string{"Final-Recipient: rfc822; x@nowhere.test", "Status: 5.1.2",
		"Final-Recipient: rfc822; y@nullmx.test", "Status: 5.1.10"} {
		if !strings.Contains(string(got[0]), want) {
			t.Errorf("DSN lacks %q:\n%s", want, got[0])
		}
	}
}

// TestEnqueueRefuses: local recipients and bad addresses never enter the
// queue.
func TestEnqueueRefuses(t *testing.T) {
	t.Parallel()
	s := startSender(t, dnstest.New(t), 25, "", nil, nil)
	q := s.Server.Queue()
	for _, to := range []string{"bob@example.org", "bob@EXAMPLE.NET"} {
		_, err := q.Enqueue(context.Background(), &delivery.Outbound{Account: s.alice.ID, From: "alice@example.org", To: []string{to}},
			strings.NewReader(msg("x", "y")))
		if !errors.Is(err, queue.ErrLocalRecipient) {
			t.Errorf("enqueue to %s: %v, want ErrLocalRecipient", to, err)
		}
	}
	_, err := q.Enqueue(context.Background(), &delivery.Outbound{From: "alice@example.org", To: []string{"not an address"}},
		strings.NewReader(msg("x", "y")))
	if !errors.Is(err, queue.ErrBadRecipient) {
		t.Errorf("enqueue to a bad address: %v", err)
	}
	if n := len(must(q.List(context.Background()))); n != 0 {
		t.Errorf("queue has %d entries", n)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestMTASTSEnforce: remote.test publishes an MTA-STS policy in enforce
// mode (RFC 8461). Its MX with a self-signed certificate is refused (the
// message stays queued with the reason); the same MX with a certificate
// from a trusted CA gets it. A policy whose mx patterns do not list the
// host keeps it from being tried at all.
func TestMTASTSEnforce(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	_, _, stsCert := ca.issue(t, "mta-sts.remote.test")
	policy := "version: STSv1\r\nmode: enforce\r\nmx: mx.remote.test\r\nmax_age: 86400\r\n"
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/mta-sts.txt" || r.Host != "mta-sts.remote.test" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(policy))
	}))
	hs.TLS = tlsConfig(stsCert)
	hs.StartTLS()
	t.Cleanup(hs.Close)

	for _, tc := range []struct {
		name      string
		ca        *testCA
		delivered bool
	}{
		{"self-signed", nil, false},
		{"trusted", ca, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			remote := remoteMX(t, tc.ca)
			dns := remoteDNS(t)
			dns.Add(t, "_mta-sts.remote.test. 300 IN TXT \"v=STSv1; id=20260101\"",
				"mta-sts.remote.test. 300 IN A 127.0.0.1")
			s := startSender(t, dns, port(t, remote.Addr("smtp")), ca.pem, nil, func(o *queue.Options) {
				o.STSPort = port(t, hs.Listener.Addr().String())
			})
			id := s.send(t, []string{"bob@remote.test"}, msg("sts "+tc.name, "body"))
			if tc.delivered {
				waitFor(t, "delivery", func() bool { return s.entry(t, id) == nil })
				if got := remote.Messages("bob@remote.test", "INBOX"); len(got) != 1 {
					t.Fatalf("bob has %d messages", len(got))
				}
				return
			}
			e := s.attempted(t, id, 1)
			if e == nil || !strings.Contains(e.LastError, "certificate") {
				t.Fatalf("entry after the attempt: %+v", e)
			}
			if got := remote.Messages("bob@remote.test", "INBOX"); len(got) != 0 {
				t.Fatalf("delivered despite the enforced policy")
			}
		})
	}
	t.Run("mx not in policy", func(t *testing.T) {
		t.Parallel()
		remote := remoteMX(t, ca)
		dns := dnstest.New(t,
			"remote.test. 300 IN MX 10 mx.elsewhere.test.",
			"mx.elsewhere.test. 300 IN A 127.0.0.1",
			"_mta-sts.remote.test. 300 IN TXT \"v=STSv1; id=1\"",
			"mta-sts.remote.test. 300 IN A 127.0.0.1")
		s := startSender(t, dns, port(t, remote.Addr("smtp")), ca.pem, nil, func(o *queue.Options) {
			o.STSPort = port(t, hs.Listener.Addr().String())
		})
		id := s.send(t, []string{"bob@remote.test"}, msg("sts mx", "body"))
		e := s.attempted(t, id, 1)
		if e == nil || !strings.Contains(e.LastError, "no host") {
			t.Fatalf("entry after the attempt: %+v", e)
		}
	})
}

// TestDANE: TLSA records for the MX in a signed zone (AD bit) decide: a
// DANE-EE record of the remote's key lets the message through, a wrong
// one keeps it queued; a wrong record in an unsigned zone is ignored
// (RFC 7672 §2.2: only authenticated TLSA records count).
func TestDANE(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		signed    bool
		right     bool
		delivered bool
	}{
		{"signed, matching", true, true, true},
		{"signed, wrong", true, false, false},
		{"unsigned, wrong", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ca := newCA(t)
			remote := remoteMX(t, ca)
			p := port(t, remote.Addr("smtp"))
			leaf := remoteLeaf(t, remote.Addr("smtp"))
			sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
			if !tc.right {
				sum[0] ^= 0xff
			}
			dns := remoteDNS(t)
			dns.Add(t, "_"+itoa(p)+"._tcp.mx.remote.test. 300 IN TLSA 3 1 1 "+hex.EncodeToString(sum[:]))
			if tc.signed {
				dns.Sign("remote.test")
			}
			s := startSender(t, dns, p, "", nil, nil)
			id := s.send(t, []string{"bob@remote.test"}, msg("dane", "body"))
			if tc.delivered {
				waitFor(t, "delivery", func() bool { return s.entry(t, id) == nil })
				if got := remote.Messages("bob@remote.test", "INBOX"); len(got) != 1 {
					t.Fatalf("bob has %d messages", len(got))
				}
				return
			}
			e := s.attempted(t, id, 1)
			if e == nil || !strings.Contains(e.LastError, "dane") {
				t.Fatalf("entry after the attempt: %+v", e)
			}
		})
	}
}

// remoteLeaf returns the certificate the SMTP server at addr presents
// after STARTTLS.
func remoteLeaf(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	cert, err := starttlsCert(addr)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestShutdownCutsHungHost: a receiving host that never greets does not
// hold up a shutdown (the connection is cut), and the message stays
// queued for the next start.
func TestShutdownCutsHungHost(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // never greets
		}
	}()
	s := startSender(t, sinkDNS(t), port(t, ln.Addr().String()), "", nil, nil)
	id := s.send(t, []string{"bob@sink.test"}, msg("hung", "body"))
	var c net.Conn
	select {
	case c = <-accepted:
		defer c.Close()
	case <-time.After(time.Minute):
		t.Fatal("the queue did not connect")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a hung delivery: %v", err)
	}
	s.Restart()
	s.Server.Queue().Kick()
	if e := s.entry(t, id); e == nil {
		t.Fatal("the message left the queue")
	}
}

// TestMTASTSPolicySurvivesRestart: a policy in enforce mode, fetched
// before a restart, still applies after it (RFC 8461 §5.1: kept until
// max_age). After the restart an attacker on the path strips the
// _mta-sts TXT record, blocks the policy host and answers for the MX with
// a certificate of its own: the message is not handed to it, and the
// entry stays queued with the certificate failure.
func TestMTASTSPolicySurvivesRestart(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	_, _, stsCert := ca.issue(t, "mta-sts.remote.test")
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("version: STSv1\r\nmode: enforce\r\nmx: mx.remote.test\r\nmax_age: 86400\r\n"))
	}))
	hs.TLS = tlsConfig(stsCert)
	hs.StartTLS()
	t.Cleanup(hs.Close)

	remote := remoteMX(t, ca)
	dns := remoteDNS(t)
	dns.Add(t, "_mta-sts.remote.test. 300 IN TXT \"v=STSv1; id=20260101\"", "mta-sts.remote.test. 300 IN A 127.0.0.1")
	s := startSender(t, dns, port(t, remote.Addr("smtp")), ca.pem, nil, func(o *queue.Options) {
		o.STSPort = port(t, hs.Listener.Addr().String())
	})
	first := s.send(t, []string{"bob@remote.test"}, msg("before restart", "body"))
	waitFor(t, "the first delivery", func() bool { return s.entry(t, first) == nil })
	if got := remote.Messages("bob@remote.test", "INBOX"); len(got) != 1 {
		t.Fatalf("bob has %d messages, want 1", len(got))
	}

	// The attacker: no TXT record, no policy host, and an MX of its own
	// with a self-signed certificate where the real one was.
	dns.Remove("_mta-sts.remote.test")
	hs.Close()
	mitm := remoteMX(t, nil)
	s.Config.Queue.Port = port(t, mitm.Addr("smtp"))
	s.Restart()

	second := s.send(t, []string{"bob@remote.test"}, msg("after restart", "body"))
	e := s.attempted(t, second, 1)
	if e == nil || !strings.Contains(e.LastError, "certificate") {
		t.Fatalf("entry after the attempt: %+v (the policy was forgotten)", e)
	}
	if got := mitm.Messages("bob@remote.test", "INBOX"); len(got) != 0 {
		t.Fatalf("the attacker's MX got %d messages", len(got))
	}
}
