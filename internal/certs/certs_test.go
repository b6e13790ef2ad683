package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

func testPair(t *testing.T, name string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func testPlaceholder(t *testing.T) *tls.Certificate {
	c, k := testPair(t, "placeholder.example", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return &cert
}

// TestFilesRunWaitsForStableFiles: a change is loaded once the files have
// stayed the same for one poll, and a failed load is not retried until
// the files change again.
func TestFilesRunWaitsForStableFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	c, k := testPair(t, "one.example", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	os.WriteFile(certFile, c, 0o600)
	os.WriteFile(keyFile, k, 0o600)
	f, err := LoadFiles(FilesOptions{Cert: certFile, Key: keyFile, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	defer func() { cancel(); <-done }()

	c2, k2 := testPair(t, "two.example", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	os.WriteFile(keyFile, k2, 0o600)
	os.WriteFile(certFile, c2, 0o600)
	deadline := time.Now().Add(30 * time.Second)
	for f.Current().Leaf.Subject.CommonName != "two.example" {
		if time.Now().After(deadline) {
			t.Fatal("not reloaded")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoadFilesRefusesBadPair(t *testing.T) {
	dir := t.TempDir()
	c, _ := testPair(t, "one.example", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	_, k := testPair(t, "one.example", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	os.WriteFile(filepath.Join(dir, "c.pem"), c, 0o600)
	os.WriteFile(filepath.Join(dir, "k.pem"), k, 0o600)
	if _, err := LoadFiles(FilesOptions{Cert: filepath.Join(dir, "c.pem"), Key: filepath.Join(dir, "k.pem")}); err == nil {
		t.Fatal("a key of another certificate loaded")
	}
	if _, err := LoadFiles(FilesOptions{Cert: filepath.Join(dir, "none.pem"), Key: filepath.Join(dir, "k.pem")}); err == nil {
		t.Fatal("a missing file loaded")
	}
}

// TestACMEStoredCertificate: a kept certificate is used when it covers
// the names and has not expired; otherwise the placeholder is served until
// Run gets one.
func TestACMEStoredCertificate(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name     string
		certName string
		from, to time.Time
		domains  []string
		used     bool
	}{
		{"good", "mail.example", now.Add(-30 * 24 * time.Hour), now.Add(60 * 24 * time.Hour), []string{"mail.example"}, true},
		{"names changed", "mail.example", now.Add(-time.Hour), now.Add(time.Hour), []string{"mail.example", "autoconfig.example"}, false},
		{"expired", "mail.example", now.Add(-90 * 24 * time.Hour), now.Add(-time.Hour), []string{"mail.example"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			caDir := filepath.Join(dir, "ca.example_14000")
			os.MkdirAll(caDir, 0o700)
			c, k := testPair(t, tt.certName, tt.from, tt.to)
			os.WriteFile(filepath.Join(caDir, "cert.pem"), c, 0o600)
			os.WriteFile(filepath.Join(caDir, "key.pem"), k, 0o600)
			ph := testPlaceholder(t)
			m, err := NewACME(ACMEOptions{Dir: dir, Directory: "https://ca.example:14000/dir", Domains: tt.domains, Placeholder: ph})
			if err != nil {
				t.Fatal(err)
			}
			if m.Issued() != tt.used || (m.Current() == ph) == tt.used {
				t.Fatalf("issued %v", m.Issued())
			}
			if tt.used {
				// Renewal when a third of the lifetime is left.
				want := tt.to.Add(-tt.to.Sub(tt.from) / 3).Truncate(time.Second)
				if got := m.renewAt(); got.Sub(want).Abs() > time.Second {
					t.Errorf("renew at %v, want %v", got, want)
				}
			} else if !m.renewAt().IsZero() {
				t.Errorf("renew at %v", m.renewAt())
			}
			for _, p := range []string{dir, caDir} {
				if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o700 {
					t.Errorf("%s: %v", p, fi.Mode())
				}
			}
		})
	}
}

// TestACMEChallengeAnswers: the TLS-ALPN-01 and HTTP-01 answers exist only
// between Present and CleanUp, and ordinary handshakes are untouched.
func TestACMEChallengeAnswers(t *testing.T) {
	m, err := NewACME(ACMEOptions{Dir: t.TempDir(), Directory: "https://ca.example/dir", Domains: []string{"mail.example"},
		Placeholder: testPlaceholder(t)})
	if err != nil {
		t.Fatal(err)
	}
	chal := acme.Challenge{Type: ChallengeTLSALPN01, Token: "tok", KeyAuthorization: "tok.thumb",
		Identifier: acme.Identifier{Type: "dns", Value: "Mail.Example"}}
	alpn := &tls.ClientHelloInfo{ServerName: "mail.example", SupportedProtos: []string{acmez.ACMETLS1Protocol}}
	if _, err := m.GetConfigForClient(alpn); err == nil {
		t.Error("a challenge handshake without a challenge succeeded")
	}
	if cfg, err := m.GetConfigForClient(&tls.ClientHelloInfo{ServerName: "mail.example", SupportedProtos: []string{"h2", "http/1.1"}}); cfg != nil || err != nil {
		t.Error("an ordinary handshake got a challenge configuration")
	}
	alpnSolver{m}.Present(context.Background(), chal)
	cfg, err := m.GetConfigForClient(alpn)
	if err != nil || cfg == nil || len(cfg.Certificates) != 1 || cfg.NextProtos[0] != acmez.ACMETLS1Protocol {
		t.Fatalf("challenge configuration %v %v", cfg, err)
	}
	alpnSolver{m}.CleanUp(context.Background(), chal)
	if _, err := m.GetConfigForClient(alpn); err == nil {
		t.Error("the challenge outlived CleanUp")
	}

	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		m.ServeHTTPChallenge(w, httptest.NewRequest("GET", HTTPChallengePrefix+"tok", nil))
		return w
	}
	if w := get(); w.Code != http.StatusNotFound {
		t.Errorf("before Present: %d", w.Code)
	}
	httpSolver{m}.Present(context.Background(), chal)
	if w := get(); w.Code != http.StatusOK || w.Body.String() != "tok.thumb" {
		t.Errorf("during: %d %q", w.Code, w.Body)
	}
	httpSolver{m}.CleanUp(context.Background(), chal)
	if w := get(); w.Code != http.StatusNotFound {
		t.Errorf("after CleanUp: %d", w.Code)
	}
}
