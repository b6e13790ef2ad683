package main

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
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadWritePair writes a self-signed pair for name into the two files,
// each replaced by a rename, as certbot's deploy hooks and most tools do.
func reloadWritePair(t *testing.T, certFile, keyFile, name string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	for f, b := range map[string]*pem.Block{keyFile: {Type: "PRIVATE KEY", Bytes: kder}, certFile: {Type: "CERTIFICATE", Bytes: der}} {
		reloadWriteFile(t, f, pem.EncodeToMemory(b))
	}
}

func reloadWriteFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// reloadName returns the name on the certificate a new IMAPS connection
// gets.
func reloadName(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// reloadWaitLog waits until the server's log has n lines containing s.
func reloadWaitLog(t *testing.T, p *serverProc, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.logs(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log (want %d)", s, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSIGHUPReloadsCertificate: SIGHUP makes the running server read its
// certificate files at once; new connections get the new certificate, a
// session opened before goes on, a broken file is logged and the old
// certificate stays, and the process keeps running.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	reloadWritePair(t, certFile, keyFile, "first.test.example")
	cfg := testConfig(t, fmt.Sprintf("\n[tls]\ncert = %q\nkey = %q\n", certFile, keyFile))
	// testConfig has every listener off but LMTP; turn IMAPS on.
	body, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(body), `imaps = ""`, `imaps = "127.0.0.1:0"`, 1)), 0o600)
	if r := runBin(t, "hup test password\n", "user", "add", "--config", cfg, "--password-stdin", "alice@example.org"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	p := startServe(t, cfg)
	addr := p.Addr("imaps")

	// A session that must survive the reloads.
	old, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	old.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(old)
	n := 0
	do := func(cmd string) {
		t.Helper()
		n++
		tag := fmt.Sprintf("h%d", n)
		fmt.Fprintf(old, "%s %s\r\n", tag, cmd)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if strings.HasPrefix(line, tag+" ") {
				if !strings.HasPrefix(line, tag+" OK") {
					t.Fatalf("%s: %s", cmd, line)
				}
				return
			}
		}
	}
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	do(`LOGIN alice@example.org "hup test password"`)
	do("SELECT INBOX")

	// The server also polls the files (every 5 seconds, and loads a
	// change seen twice); the reload in the log must be the signal's.
	reloadWritePair(t, certFile, keyFile, "second.test.example")
	p.cmd.Process.Signal(syscall.SIGHUP)
	reloadWaitLog(t, p, "tls certificate reloaded", 1)
	if !strings.Contains(p.logs(), "why=reload") {
		t.Errorf("the reload was not the signal's:\n%s", p.logs())
	}
	if got := reloadName(t, addr); got != "second.test.example" {
		t.Fatalf("after SIGHUP: %s", got)
	}
	do("NOOP")

	reloadWriteFile(t, certFile, []byte("not a certificate\n"))
	p.cmd.Process.Signal(syscall.SIGHUP)
	reloadWaitLog(t, p, "tls certificate not reloaded", 1)
	if got := reloadName(t, addr); got != "second.test.example" {
		t.Fatalf("after a broken file: %s", got)
	}
	do("NOOP")
	if got := old.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "first.test.example" {
		t.Errorf("the old session's certificate: %s", got)
	}
	p.stop()
}
