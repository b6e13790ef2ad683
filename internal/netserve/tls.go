package netserve

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSConfig returns the server TLS configuration. With certFile and
// keyFile set it loads them; with both empty it loads the self-signed
// certificate for hostname in dir/tls, generating it the first time (both
// files 0600, like every file postfach creates in its data directory).
func TLSConfig(certFile, keyFile, dir, hostname string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		var err error
		certFile, keyFile, err = selfSigned(filepath.Join(dir, "tls"), hostname)
		if err != nil {
			return nil, err
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate: %w", err)
	}
	c := ServerTLSConfig(nil)
	c.Certificates = []tls.Certificate{cert}
	return c, nil
}

// ServerTLSConfig returns the configuration of every TLS listener and
// STARTTLS upgrade: TLS 1.2 at least (RFC 8996 deprecates 1.0 and 1.1;
// RFC 9325 §3.1.1), and otherwise Go's defaults, which offer only AEAD
// cipher suites with forward secrecy and modern key exchanges, and
// follow Go releases. getCert, when not nil, supplies the certificate of
// each handshake, so that a reloaded or renewed certificate reaches new
// connections while the open ones keep theirs.
func ServerTLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: getCert,
	}
}

// StartTLSConfig returns the configuration for upgrading a plaintext
// session in the middle (IMAP STARTTLS, RFC 9051 §6.2.1; POP3 STLS, RFC
// 2595 §4; SMTP STARTTLS, RFC 3207 §4): cfg without session tickets, so
// that the server sends nothing after its handshake until the client
// speaks. Keep cfg itself for implicit TLS.
//
// Go's server sends its TLS 1.3 tickets (RFC 8446 §4.6.1) right after its
// Finished; the client reads them as post-handshake messages with the
// first data after its handshake. After STARTTLS that is just when the
// client sends its first command inside TLS. Clients that read and write
// one OpenSSL connection from two threads at once, as imaplib2 (and with
// it offlineimap) does through Python's ssl module, then process a ticket
// in their reader thread while their writer thread writes: OpenSSL does
// not allow that, and about one offlineimap run in ten crashed, hung, sent
// an internal_error alert or a record with version 0 (issue 11, item 16).
// On an implicit-TLS connection the tickets arrive before the greeting,
// while such a client only reads, so they stay on there. cfg is copied:
// a certificate that changes while serving must come from
// cfg.GetCertificate, which the copy shares.
func StartTLSConfig(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return nil
	}
	c := cfg.Clone()
	c.SessionTicketsDisabled = true
	return c
}

// SelfSigned returns the paths of the self-signed pair for hostname in
// dir (cert.pem and key.pem, 0600), creating it when missing.
func SelfSigned(dir, hostname string) (certFile, keyFile string, err error) {
	return selfSigned(dir, hostname)
}

// selfSigned returns the paths of the self-signed pair in dir, creating
// it when missing.
func selfSigned(dir, hostname string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, "cert.pem")
	keyFile = filepath.Join(dir, "key.pem")
	_, cerr := os.Stat(certFile)
	_, kerr := os.Stat(keyFile)
	if cerr == nil && kerr == nil {
		return certFile, keyFile, nil
	}
	if !errors.Is(cerr, os.ErrNotExist) && cerr != nil {
		return "", "", fmt.Errorf("tls certificate: %w", cerr)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("tls dir: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", fmt.Errorf("generate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"postfach self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{hostname},
	}
	if hostname != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, "localhost")
	}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("marshal tls key: %w", err)
	}
	// Key first: a cert without its key would look complete on the next start.
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// WriteFileAtomic writes data to path through a synced temporary file in
// the same folder and a rename, with mode whatever the umask: a reader
// sees the old file or the whole new one.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeFileAtomic(path, data, mode)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
