package interop

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// The ACME tests run Let's Encrypt's test CA, Pebble
// (github.com/letsencrypt/pebble/v2, a tool of this module, built from the
// module proxy), on loopback. Pebble validates for real: it resolves the
// names through a small DNS server here (every name is 127.0.0.1) and
// connects to postfach on the ports it is told (tlsPort, httpPort), where
// listen.web answers TLS-ALPN-01 and listen.web_http HTTP-01. Only the
// random sleeps before validation and the rejected nonces are switched
// off, to keep the test short; PEBBLE_VA_ALWAYS_VALID is not used.

// acmePebble is a running Pebble.
type acmePebble struct {
	dir     string // its directory URL
	mgmt    string // its management address (roots at /roots/0)
	caFile  string // PEM of the CA of its HTTPS certificate
	webPort string // where it validates TLS-ALPN-01
	webHTTP string // where it validates HTTP-01
	log     *bytes.Buffer
	logMu   *sync.Mutex
}

// acmeBuildPebble builds Pebble into dir.
func acmeBuildPebble(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "pebble")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build pebble: %v\n%s", err, b)
	}
	return bin
}

// acmeFreePorts returns n different loopback ports that were free a
// moment ago, for the programs that must be told their ports before they
// start (Pebble, and postfach's web listeners, which Pebble must know).
func acmeFreePorts(t *testing.T, n int) []string {
	t.Helper()
	var ports []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ports = append(ports, port)
	}
	return ports
}

// acmeDNS serves every name as 127.0.0.1 (no AAAA), over TCP, which is
// what Pebble's resolver uses, and UDP.
func acmeDNS(t *testing.T) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		w.WriteMsg(m)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	tcp := &dns.Server{Listener: ln, Handler: h}
	udp := &dns.Server{PacketConn: pc, Handler: h}
	go tcp.ActivateAndServe()
	go udp.ActivateAndServe()
	t.Cleanup(func() {
		tcp.Shutdown()
		udp.Shutdown()
	})
	return ln.Addr().String()
}

// acmeCA writes a CA and a certificate it signed for 127.0.0.1, for
// Pebble's HTTPS listeners; it returns the files.
func acmeCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string]*pem.Block{caFile: {Type: "CERTIFICATE", Bytes: caDER},
		certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

type acmeSyncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w acmeSyncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// acmeStartPebble builds and starts Pebble, and waits until its directory
// answers.
func acmeStartPebble(t *testing.T) *acmePebble {
	t.Helper()
	dir := t.TempDir()
	bin := acmeBuildPebble(t, dir)
	caFile, certFile, keyFile := acmeCA(t, dir)
	ports := acmeFreePorts(t, 4)
	p := &acmePebble{caFile: caFile, webPort: ports[0], webHTTP: ports[1],
		log: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	listen := "127.0.0.1:" + ports[2]
	p.mgmt = "127.0.0.1:" + ports[3]
	p.dir = "https://" + listen + "/dir"
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           listen,
		"managementListenAddress": p.mgmt,
		"certificate":             certFile,
		"privateKey":              keyFile,
		"httpPort":                atoi(t, p.webHTTP),
		"tlsPort":                 atoi(t, p.webPort),
		"ocspResponderURL":        "",
		"keyAlgorithm":            "ecdsa",
	}}
	cfgJSON, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, cfgJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", acmeDNS(t))
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	w := acmeSyncWriter{p.logMu, p.log}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble log:\n%s", p.logs())
		}
	})
	hc := p.client(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := hc.Get(p.dir)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start: %v\n%s", err, p.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *acmePebble) logs() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// client trusts Pebble's HTTPS certificate.
func (p *acmePebble) client(t *testing.T) *http.Client {
	t.Helper()
	b, err := os.ReadFile(p.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// roots returns the roots Pebble issues under (it makes new ones at every
// start).
func (p *acmePebble) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.client(t).Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble root: %d %v", resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble root is not PEM:\n%s", b)
	}
	return pool
}

// acmeVerified connects to addr and reports whether its certificate
// verifies for name under roots.
func acmeVerified(addr, name string, roots *x509.CertPool) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: roots, ServerName: name})
	if err != nil {
		return err
	}
	return c.Close()
}

// TestACMEPebble: with tls.acme, postfach gets its certificate from
// Pebble by each challenge type, keeps it private in the data directory,
// serves it on IMAPS and the web listener, and reuses it after a restart.
func TestACMEPebble(t *testing.T) {
	t.Parallel()
	p := acmeStartPebble(t)
	roots := p.roots(t)
	for _, tt := range []struct {
		challenge, domain string
	}{
		{config.ChallengeTLSALPN01, "alpn.pebble.test"},
		{config.ChallengeHTTP01, "http.pebble.test"},
	} {
		// One after the other: Pebble validates on fixed ports.
		t.Run(tt.challenge, func(t *testing.T) {
			env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
				c.Listen.Web = "127.0.0.1:" + p.webPort
				if tt.challenge == config.ChallengeHTTP01 {
					c.Listen.WebHTTP = "127.0.0.1:" + p.webHTTP
				}
				c.TLS.ACME = true
				c.TLS.ACMEDirectory = p.dir
				c.TLS.ACMECA = p.caFile
				c.TLS.ACMEDomains = []string{tt.domain}
				c.TLS.ACMEChallenges = []string{tt.challenge}
				c.TLS.ACMEEmail = "postmaster@" + testenv.Domain
			}})
			defer env.Shutdown(context.Background())

			// The self-signed placeholder first, Pebble's certificate
			// once it is issued.
			deadline := time.Now().Add(2 * time.Minute)
			for {
				err := acmeVerified(env.Addr("imaps"), tt.domain, roots)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("imaps does not serve a certificate from pebble: %v\n%s", err, env.Logs())
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err := acmeVerified(env.Addr("web"), tt.domain, roots); err != nil {
				t.Errorf("web: %v", err)
			}
			// acmez logs the challenge it solved.
			if !strings.Contains(env.Logs(), "challenge_type="+tt.challenge) {
				t.Errorf("the server's log does not mention %s", tt.challenge)
			}
			if tt.challenge == config.ChallengeHTTP01 && !strings.Contains(p.logs(), "validate w/ HTTP: http://"+tt.domain+":"+p.webHTTP) {
				t.Errorf("pebble did not fetch the HTTP-01 answer from listen.web_http")
			}

			// Private files: directories 0700, files 0600.
			acmeDir := filepath.Join(env.Config.DataDir, "acme")
			var files []string
			filepath.Walk(acmeDir, func(path string, fi os.FileInfo, err error) error {
				if err != nil {
					t.Error(err)
					return nil
				}
				want := os.FileMode(0o600)
				if fi.IsDir() {
					want = 0o700
				} else {
					files = append(files, fi.Name())
				}
				if fi.Mode().Perm() != want {
					t.Errorf("%s: mode %04o, want %04o", path, fi.Mode().Perm(), want)
				}
				return nil
			})
			if strings.Join(files, " ") != "account.key cert.pem key.pem" {
				t.Errorf("files in %s: %v", acmeDir, files)
			}

			// After a restart the kept certificate is served at once,
			// with no new order.
			env.Restart()
			if err := acmeVerified(env.Addr("imaps"), tt.domain, roots); err != nil {
				t.Errorf("after restart: %v", err)
			}
			if n := strings.Count(env.Logs(), "acme: getting a certificate"); n != 1 {
				t.Errorf("%d orders, want 1", n)
			}
		})
	}
}
