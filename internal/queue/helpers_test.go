package queue_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/delivery"
	"github.com/postfach/postfach/internal/dnstest"
	"github.com/postfach/postfach/internal/queue"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/testenv"
)

// testCA is a certificate authority for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string // path of the CA certificate, PEM
	dir  string
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "postfach test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	ca := &testCA{cert: cert, key: key, pem: filepath.Join(dir, "ca.pem"), dir: dir}
	if err := os.WriteFile(ca.pem, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue makes a certificate for names and returns its files and the pair.
func (ca *testCA) issue(t *testing.T, names ...string) (certFile, keyFile string, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	certFile = filepath.Join(ca.dir, names[0]+"-"+serial.String()+".pem")
	keyFile = certFile + ".key"
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pair
}

// clock is a clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts at now, in whole milliseconds (the store's precision).
func newClock() *clock { return &clock{t: time.Now().Truncate(time.Millisecond)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sender is a postfach whose queue sends to port, with DNS from dns.
type sender struct {
	*testenv.Env
	clock *clock
	alice *store.Account
}

func startSender(t *testing.T, dns *dnstest.Server, port int, caFile string, edit func(*config.Config), qopt func(*queue.Options)) *sender {
	t.Helper()
	clk := newClock()
	env := testenv.Start(t, testenv.Options{
		Now: clk.now,
		Config: func(c *config.Config) {
			c.DNS.Servers = []string{dns.Addr}
			c.Queue.Port = port
			c.Queue.CAFile = caFile
			if edit != nil {
				edit(c)
			}
		},
		Queue: func(o *queue.Options) {
			o.Poll = 50 * time.Millisecond
			o.Timeout = 20 * time.Second
			if qopt != nil {
				qopt(o)
			}
		},
	})
	s := &sender{Env: env, clock: clk}
	s.alice = env.AddUser("alice@example.org", "password")
	return s
}

// send enqueues a message from alice.
func (s *sender) send(t *testing.T, to []string, msg string) string {
	t.Helper()
	return s.sendAs(t, &delivery.Outbound{Account: s.alice.ID, From: "alice@example.org", To: to}, msg)
}

func (s *sender) sendAs(t *testing.T, m *delivery.Outbound, msg string) string {
	t.Helper()
	id, err := s.Server.Queue().Enqueue(context.Background(), m, strings.NewReader(msg))
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return id
}

// entry returns a queue entry, or nil when it is gone.
func (s *sender) entry(t *testing.T, id string) *store.QueueEntry {
	t.Helper()
	n, _ := strconv.ParseInt(id, 10, 64)
	e, err := s.Server.Queue().Show(context.Background(), n)
	if err != nil {
		return nil
	}
	return e
}

// waitFor polls cond until it holds; the bound is generous (loaded
// machines), never an assertion on time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// attempted waits until entry id has made n attempts (or is gone).
func (s *sender) attempted(t *testing.T, id string, n int) *store.QueueEntry {
	t.Helper()
	var e *store.QueueEntry
	waitFor(t, fmt.Sprintf("attempt %d of entry %s", n, id), func() bool {
		e = s.entry(t, id)
		return e == nil || e.Attempts >= n
	})
	return e
}

func msg(subject, body string) string {
	return "From: Alice <alice@example.org>\r\nTo: someone@remote.test\r\nSubject: " + subject +
		"\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") +
		"@example.org>\r\n\r\n" + body + "\r\n"
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// sink is an SMTP server for tests with the extensions a test chooses;
// it records connections and messages.
type sink struct {
	t    *testing.T
	ln   net.Listener
	ext  []string    // EHLO keywords, such as "PIPELINING", "8BITMIME"
	tls  *tls.Config // offered with STARTTLS (or from the start, implicit)
	impl bool        // implicit TLS
	// rcpt answers RCPT for an address; nil accepts all.
	rcpt func(addr string) string

	mu    sync.Mutex
	conns int
	msgs  []sinkMsg
	auths []string // the decoded AUTH credentials
}

type sinkMsg struct {
	mail  string // the MAIL command's parameters after the path
	from  string
	rcpts []string
	data  string
	tls   bool
}

func startSink(t *testing.T, s *sink) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.t, s.ln = t, ln
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				s.serve(c)
			}()
		}
	}()
	return s
}

func (s *sink) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *sink) messages() []sinkMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMsg(nil), s.msgs...)
}

func (s *sink) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *sink) serve(c net.Conn) {
	s.mu.Lock()
	s.conns++
	s.mu.Unlock()
	c.SetDeadline(time.Now().Add(time.Minute))
	isTLS := false
	if s.impl {
		tc := tls.Server(c, s.tls)
		if tc.Handshake() != nil {
			return
		}
		c, isTLS = tc, true
	}
	r := bufio.NewReader(c)
	w := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	w("220 sink.test ESMTP")
	var cur *sinkMsg
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			ext := append([]string{}, s.ext...)
			if s.tls != nil && !isTLS && !s.impl {
				ext = append(ext, "STARTTLS")
			}
			out := []string{"sink.test"}
			out = append(out, ext...)
			for i, l := range out {
				sep := "-"
				if i == len(out)-1 {
					sep = " "
				}
				w("250" + sep + l)
			}
		case "HELO":
			w("250 sink.test")
		case "STARTTLS":
			w("220 go ahead")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			c, isTLS = tc, true
			r = bufio.NewReader(c)
		case "AUTH":
			mech, ir, _ := strings.Cut(arg, " ")
			switch strings.ToUpper(mech) {
			case "PLAIN":
				b, _ := base64.StdEncoding.DecodeString(ir)
				s.mu.Lock()
				s.auths = append(s.auths, strings.ReplaceAll(string(b), "\x00", "|"))
				s.mu.Unlock()
				w("235 2.7.0 ok")
			case "LOGIN":
				var parts []string
				for _, p := range []string{"VXNlcm5hbWU6", "UGFzc3dvcmQ6"} {
					w("334 " + p)
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(l))
					parts = append(parts, string(b))
				}
				s.mu.Lock()
				s.auths = append(s.auths, "|"+strings.Join(parts, "|"))
				s.mu.Unlock()
				w("235 2.7.0 ok")
			default:
				w("504 no")
			}
		case "MAIL":
			path, params, _ := strings.Cut(strings.TrimPrefix(arg, "FROM:"), " ")
			cur = &sinkMsg{from: strings.Trim(path, "<>"), mail: params, tls: isTLS}
			w("250 2.1.0 ok")
		case "RCPT":
			addr := strings.Trim(strings.TrimPrefix(arg, "TO:"), "<>")
			reply := "250 2.1.5 ok"
			if s.rcpt != nil {
				reply = s.rcpt(addr)
			}
			if strings.HasPrefix(reply, "2") && cur != nil {
				cur.rcpts = append(cur.rcpts, addr)
			}
			w(reply)
		case "DATA":
			if cur == nil || len(cur.rcpts) == 0 {
				w("554 5.5.1 no valid recipients")
				continue
			}
			w("354 go")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			cur.data = b.String()
			s.mu.Lock()
			s.msgs = append(s.msgs, *cur)
			s.mu.Unlock()
			cur = nil
			w("250 2.0.0 queued")
		case "RSET":
			cur = nil
			w("250 2.0.0 ok")
		case "QUIT":
			w("221 bye")
			return
		default:
			w("500 5.5.2 what")
		}
	}
}

// closedPort returns an address where nothing listens (a port that was
// just free).
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func tlsConfig(pair tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{pair}}
}

func itoa(n int) string { return strconv.Itoa(n) }

// starttlsCert says EHLO and STARTTLS to the SMTP server at addr and
// returns its certificate.
func starttlsCert(addr string) (*x509.Certificate, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	reply := func() error {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if len(l) < 4 || l[3] != '-' {
				return nil
			}
		}
	}
	if err := reply(); err != nil {
		return nil, err
	}
	for _, cmd := range []string{"EHLO test", "STARTTLS"} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		if err := reply(); err != nil {
			return nil, err
		}
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	return tc.ConnectionState().PeerCertificates[0], nil
}
