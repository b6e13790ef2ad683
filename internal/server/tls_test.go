package server_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/testenv"
)

// tlsPair makes a self-signed certificate for name and its key, in PEM.
func tlsPair(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// tlsWritePair writes a pair the way certbot and most tools do: each file
// replaced by a rename, the key first.
func tlsWritePair(t *testing.T, certFile, keyFile string, certPEM, keyPEM []byte) {
	t.Helper()
	if err := netserve.WriteFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := netserve.WriteFileAtomic(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsServer starts a server whose certificate is the pair in two files,
// for first.test.example, looked at every 20ms.
func tlsServer(t *testing.T) (env *testenv.Env, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c, k := tlsPair(t, "first.test.example")
	tlsWritePair(t, certFile, keyFile, c, k)
	env = testenv.Start(t, testenv.Options{CertPoll: 20 * time.Millisecond, Config: func(cfg *config.Config) {
		cfg.TLS.Cert, cfg.TLS.Key = certFile, keyFile
	}})
	return env, certFile, keyFile
}

// tlsLine reads one line with a deadline.
func tlsLine(t *testing.T, c net.Conn, r *bufio.Reader) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, line)
	}
	return line
}

// tlsUpgrade connects to a listener of env and returns a connection at
// the point where the client starts its TLS handshake: at once for the
// implicit-TLS ones, after STARTTLS (IMAP, SMTP) or STLS (POP3) for the
// others.
func tlsUpgrade(t *testing.T, env *testenv.Env, name string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", env.Addr(name), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	say := func(cmd, want string) {
		t.Helper()
		fmt.Fprintf(c, "%s\r\n", cmd)
		for {
			line := tlsLine(t, c, r)
			if strings.HasPrefix(line, want) {
				return
			}
			if !strings.HasPrefix(line, "* ") && !strings.HasPrefix(line, "250-") {
				t.Fatalf("%s: %s: got %q, want %q", name, cmd, line, want)
			}
		}
	}
	switch name {
	case "imap":
		tlsLine(t, c, r)
		say("a STARTTLS", "a OK")
	case "pop3":
		tlsLine(t, c, r)
		say("STLS", "+OK")
	case "smtp":
		tlsLine(t, c, r)
		say("EHLO client.example", "250 ")
		say("STARTTLS", "220")
	}
	if r.Buffered() > 0 {
		t.Fatalf("%s: %d bytes after the upgrade reply", name, r.Buffered())
	}
	return c
}

// tlsListeners are the listeners of a test server that do TLS.
var tlsListeners = []string{"imaps", "pop3s", "web", "imap", "pop3", "smtp"}

// TestTLSVersions: every TLS listener and upgrade refuses TLS 1.1 and
// accepts TLS 1.2 and 1.3 (RFC 8996).
func TestTLSVersions(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	for _, name := range tlsListeners {
		for _, v := range []struct {
			version uint16
			ok      bool
		}{{tls.VersionTLS11, false}, {tls.VersionTLS10, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
			c := tlsUpgrade(t, env, name)
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: v.version, MaxVersion: v.version,
				ServerName: "mx.test.example"})
			tc.SetDeadline(time.Now().Add(30 * time.Second))
			err := tc.Handshake()
			switch {
			case v.ok && err != nil:
				t.Errorf("%s: %s refused: %v", name, tls.VersionName(v.version), err)
			case !v.ok && err == nil:
				t.Errorf("%s: %s accepted", name, tls.VersionName(v.version))
			case v.ok && tc.ConnectionState().Version != v.version:
				t.Errorf("%s: got %s", name, tls.VersionName(tc.ConnectionState().Version))
			}
			c.Close()
		}
	}
}

// tlsName does a handshake on a new connection to a listener and returns
// the name on the certificate it is given.
func tlsName(t *testing.T, env *testenv.Env, name string) string {
	t.Helper()
	c := tlsUpgrade(t, env, name)
	defer c.Close()
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.test.example"})
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("%s: handshake: %v", name, err)
	}
	return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// tlsWaitName waits until a new connection to every TLS listener gets the
// certificate for want.
func tlsWaitName(t *testing.T, env *testenv.Env, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range tlsListeners {
		for {
			got := tlsName(t, env, name)
			if got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still serves %s, want %s", name, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// tlsSession is a logged-in IMAPS session.
type tlsSession struct {
	t *testing.T
	c *tls.Conn
	r *bufio.Reader
	n int
}

func tlsLogin(t *testing.T, env *testenv.Env) *tlsSession {
	t.Helper()
	env.AddUser("alice@"+testenv.Domain, "tls test password")
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", env.Addr("imaps"),
		&tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &tlsSession{t: t, c: c, r: bufio.NewReader(c)}
	tlsLine(t, c, s.r)
	s.do("LOGIN alice@" + testenv.Domain + " \"tls test password\"")
	s.do("SELECT INBOX")
	return s
}

func (s *tlsSession) do(cmd string) {
	s.t.Helper()
	s.n++
	tag := fmt.Sprintf("t%d", s.n)
	fmt.Fprintf(s.c, "%s %s\r\n", tag, cmd)
	for {
		line := tlsLine(s.t, s.c, s.r)
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line, tag+" OK") {
				s.t.Fatalf("%s: %s", cmd, line)
			}
			return
		}
	}
}

// TestTLSReloadOnFileChange: new certificate files are served to new
// connections on every TLS listener and upgrade, while a session opened
// before keeps working on its certificate.
func TestTLSReloadOnFileChange(t *testing.T) {
	t.Parallel()
	env, certFile, keyFile := tlsServer(t)
	old := tlsLogin(t, env)
	if got := tlsName(t, env, "imaps"); got != "first.test.example" {
		t.Fatalf("serves %s at start", got)
	}

	c, k := tlsPair(t, "second.test.example")
	tlsWritePair(t, certFile, keyFile, c, k)
	tlsWaitName(t, env, "second.test.example")

	old.do("NOOP")
	if got := old.c.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "first.test.example" {
		t.Errorf("the old session's certificate is %s", got)
	}
	if !strings.Contains(env.Logs(), "tls certificate reloaded") {
		t.Error("no reload in the log")
	}
	resp, err := http.Get("http://" + env.Addr("http") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "\npostfach_tls_certificate_expiry_timestamp_seconds ") {
		t.Error("no certificate expiry in /metrics")
	}
}

// TestTLSReloadBadFilesKeepOld: a new pair that does not load (a broken
// certificate, a key that does not match) is logged and the old
// certificate stays; a good pair after it is taken.
func TestTLSReloadBadFilesKeepOld(t *testing.T) {
	t.Parallel()
	env, certFile, keyFile := tlsServer(t)
	old := tlsLogin(t, env)
	otherCert, _ := tlsPair(t, "other.test.example")
	_, otherKey := tlsPair(t, "other.test.example")
	for i, bad := range []struct {
		what      string
		cert, key []byte
	}{
		{"broken certificate", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), nil},
		{"key of another certificate", otherCert, otherKey},
		{"empty files", []byte{}, []byte{}},
	} {
		key := bad.key
		if key == nil {
			key, _ = os.ReadFile(keyFile)
		}
		tlsWritePair(t, certFile, keyFile, bad.cert, key)
		// The failure is logged once per change of the files.
		deadline := time.Now().Add(30 * time.Second)
		for strings.Count(env.Logs(), "tls certificate not reloaded") < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no failure logged", bad.what)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, name := range tlsListeners {
			if got := tlsName(t, env, name); got != "first.test.example" {
				t.Fatalf("%s: %s serves %s", bad.what, name, got)
			}
		}
		old.do("NOOP")
	}
	c, k := tlsPair(t, "third.test.example")
	tlsWritePair(t, certFile, keyFile, c, k)
	tlsWaitName(t, env, "third.test.example")
	old.do("NOOP")
}

// TestTLSReload: Server.Reload (what SIGHUP calls) loads changed files at
// once, and a failed one keeps the old certificate.
func TestTLSReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c, k := tlsPair(t, "first.test.example")
	tlsWritePair(t, certFile, keyFile, c, k)
	// No polling within the test's time: only Reload can load.
	env := testenv.Start(t, testenv.Options{CertPoll: time.Hour, Config: func(cfg *config.Config) {
		cfg.TLS.Cert, cfg.TLS.Key = certFile, keyFile
	}})
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.Server.Reload(); err == nil {
		t.Fatal("Reload of a broken file succeeded")
	}
	if got := tlsName(t, env, "imaps"); got != "first.test.example" {
		t.Fatalf("serves %s after a failed reload", got)
	}
	c, k = tlsPair(t, "second.test.example")
	tlsWritePair(t, certFile, keyFile, c, k)
	if err := env.Server.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, name := range tlsListeners {
		if got := tlsName(t, env, name); got != "second.test.example" {
			t.Fatalf("%s serves %s after Reload", name, got)
		}
	}
}
