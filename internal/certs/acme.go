package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/postfach/postfach/internal/netserve"
)

// ACME challenge types this package answers.
const (
	ChallengeTLSALPN01 = acme.ChallengeTypeTLSALPN01 // RFC 8737
	ChallengeHTTP01    = acme.ChallengeTypeHTTP01    // RFC 8555 §8.3
)

// ACMEOptions configures NewACME.
type ACMEOptions struct {
	// Dir holds the account key and the certificates, one folder per CA
	// (named for the directory URL's host and port).
	Dir string
	// Directory is the CA's directory URL (RFC 8555 §7.1.1).
	Directory string
	// Email, when not "", is the account's contact (RFC 8555 §7.3).
	Email string
	// Domains are the names on the certificate.
	Domains []string
	// Challenges are the challenge types to answer (ChallengeTLSALPN01,
	// ChallengeHTTP01); the caller routes them: GetConfigForClient on
	// the listener the CA reaches on port 443, HTTPHandler on port 80.
	Challenges []string
	// RootCAs verifies the CA's HTTPS server; nil means the system's.
	RootCAs *x509.CertPool
	// Placeholder is served until the first certificate from the CA.
	Placeholder *tls.Certificate
	// RetryMin is the first wait after a failed attempt, doubling up to
	// an hour; zero means a minute.
	RetryMin time.Duration
	// Logger receives what happens; nil discards it.
	Logger *slog.Logger
}

// ACME is a certificate obtained and renewed from an ACME CA. Its methods
// are safe for concurrent use.
type ACME struct {
	opt    ACMEOptions
	log    *slog.Logger
	dir    string                          // this CA's folder
	cur    atomic.Pointer[tls.Certificate] // never nil
	issued atomic.Pointer[x509.Certificate]
	kick   chan struct{}

	mu   sync.Mutex
	alpn map[string]*tls.Certificate // TLS-ALPN-01 answers by domain (lower case); mu
	http map[string]string           // HTTP-01 key authorizations by token; mu
}

// NewACME prepares the CA's folder and loads the certificate kept there
// when it is still good for Domains; Run gets one otherwise.
func NewACME(opt ACMEOptions) (*ACME, error) {
	if len(opt.Domains) == 0 {
		return nil, errors.New("acme: no domains")
	}
	if opt.Placeholder == nil {
		return nil, errors.New("acme: no placeholder certificate")
	}
	u, err := url.Parse(opt.Directory)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("acme: bad directory URL %q", opt.Directory)
	}
	if opt.RetryMin <= 0 {
		opt.RetryMin = time.Minute
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &ACME{opt: opt, log: log, kick: make(chan struct{}, 1),
		dir:  filepath.Join(opt.Dir, strings.NewReplacer(":", "_", "/", "_").Replace(u.Host)),
		alpn: map[string]*tls.Certificate{}, http: map[string]string{}}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	for _, d := range []string{opt.Dir, m.dir} {
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("acme: %w", err)
		}
	}
	m.cur.Store(opt.Placeholder)
	cert, err := loadPair(m.certFile(), m.keyFile())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		log.Warn("acme: the stored certificate does not load; getting a new one", "err", err)
	case !covers(cert.Leaf, opt.Domains):
		log.Info("acme: the stored certificate lacks some of the names; getting a new one",
			"has", strings.Join(cert.Leaf.DNSNames, ","), "want", strings.Join(opt.Domains, ","))
	case time.Now().After(cert.Leaf.NotAfter):
		log.Info("acme: the stored certificate has expired; getting a new one", "not_after", cert.Leaf.NotAfter.UTC())
	default:
		m.use(cert)
	}
	return m, nil
}

func (m *ACME) certFile() string    { return filepath.Join(m.dir, "cert.pem") }
func (m *ACME) keyFile() string     { return filepath.Join(m.dir, "key.pem") }
func (m *ACME) accountFile() string { return filepath.Join(m.dir, "account.key") }

// covers reports whether leaf is valid for every name.
func covers(leaf *x509.Certificate, names []string) bool {
	for _, n := range names {
		if leaf.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}

func (m *ACME) use(cert *tls.Certificate) {
	m.issued.Store(cert.Leaf)
	m.cur.Store(cert)
}

// GetCertificate returns the current certificate (tls.Config.GetCertificate).
func (m *ACME) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cur.Load(), nil
}

// Current returns the current certificate.
func (m *ACME) Current() *tls.Certificate { return m.cur.Load() }

// Issued reports whether the current certificate comes from the CA (and
// not the placeholder).
func (m *ACME) Issued() bool { return m.issued.Load() != nil }

// GetConfigForClient answers the TLS-ALPN-01 challenge (RFC 8737 §3): a
// handshake that offers only the acme-tls/1 protocol gets the challenge
// certificate for its server name, or fails when there is none. Other
// handshakes get nil: the listener's own configuration.
func (m *ACME) GetConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if len(hello.SupportedProtos) != 1 || hello.SupportedProtos[0] != acmez.ACMETLS1Protocol {
		return nil, nil
	}
	m.mu.Lock()
	cert := m.alpn[strings.ToLower(hello.ServerName)]
	m.mu.Unlock()
	if cert == nil {
		return nil, fmt.Errorf("acme: no tls-alpn-01 challenge for %q", hello.ServerName)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*cert},
		NextProtos:   []string{acmez.ACMETLS1Protocol},
	}, nil
}

// HTTPChallengePrefix is the path under which HTTP-01 answers live (RFC
// 8555 §8.3).
const HTTPChallengePrefix = "/.well-known/acme-challenge/"

// ServeHTTPChallenge answers an HTTP-01 challenge (RFC 8555 §8.3): the key
// authorization for a token that is being validated, else 404.
func (m *ACME) ServeHTTPChallenge(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, HTTPChallengePrefix)
	m.mu.Lock()
	keyAuth, found := m.http[token]
	m.mu.Unlock()
	if !ok || !found || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write([]byte(keyAuth))
}

// Reload makes Run check the certificate at once (renewing it when due).
func (m *ACME) Reload() error {
	select {
	case m.kick <- struct{}{}:
	default:
	}
	m.log.Info("acme: checking the certificate")
	return nil
}

// renewAt returns when the current certificate should be renewed: when a
// third of its lifetime is left (the zero time when there is none from the
// CA).
func (m *ACME) renewAt() time.Time {
	leaf := m.issued.Load()
	if leaf == nil {
		return time.Time{}
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotAfter.Add(-life / 3)
}

// Run gets a certificate when there is none, renews it when due, and
// retries failures (after RetryMin, doubling up to an hour), until ctx
// ends.
func (m *ACME) Run(ctx context.Context) {
	var retry, floor time.Duration
	for {
		wait := time.Until(m.renewAt())
		if retry > 0 {
			wait = retry
		}
		// A certificate that is due at once (a CA issuing very short
		// lifetimes) is not renewed in a loop.
		wait = max(wait, floor)
		floor = 0
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-m.kick:
				t.Stop()
				if time.Now().Before(m.renewAt()) {
					continue
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		err := m.obtain(actx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			retry = min(max(2*retry, m.opt.RetryMin), time.Hour)
			m.log.Error("acme: no certificate from the CA; trying again later", "err", err, "retry_in", retry,
				"directory", m.opt.Directory)
			continue
		}
		retry, floor = 0, m.opt.RetryMin
	}
}

// obtain gets a certificate from the CA, stores it and serves it.
func (m *ACME) obtain(ctx context.Context) error {
	m.log.Info("acme: getting a certificate", "domains", strings.Join(m.opt.Domains, ","), "directory", m.opt.Directory,
		"challenges", strings.Join(m.opt.Challenges, ","))
	accountKey, err := m.accountKey()
	if err != nil {
		return err
	}
	solvers := map[string]acmez.Solver{}
	for _, c := range m.opt.Challenges {
		switch c {
		case ChallengeTLSALPN01:
			solvers[c] = alpnSolver{m}
		case ChallengeHTTP01:
			solvers[c] = httpSolver{m}
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: m.opt.RootCAs, MinVersion: tls.VersionTLS12}
	client := &acmez.Client{
		Client: &acme.Client{
			Directory:  m.opt.Directory,
			HTTPClient: &http.Client{Transport: transport, Timeout: time.Minute},
			UserAgent:  "postfach",
			Logger:     m.log,
		},
		ChallengeSolvers: solvers,
	}
	acct := acme.Account{TermsOfServiceAgreed: true, PrivateKey: accountKey}
	if m.opt.Email != "" {
		acct.Contact = []string{"mailto:" + m.opt.Email}
	}
	// RFC 8555 §7.3.1: a known key gets its existing account back.
	acct, err = client.NewAccount(ctx, acct)
	if err != nil {
		return fmt.Errorf("acme account: %w", err)
	}
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("acme: generate key: %w", err)
	}
	chains, err := client.ObtainCertificateForSANs(ctx, acct, certKey, m.opt.Domains)
	if err != nil {
		return fmt.Errorf("acme order: %w", err)
	}
	if len(chains) == 0 {
		return errors.New("acme order: the CA returned no certificate")
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(certKey)
	if err != nil {
		return fmt.Errorf("acme: marshal key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(chains[0].ChainPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("acme: the certificate from the CA does not load: %w", err)
	}
	if !covers(cert.Leaf, m.opt.Domains) {
		return fmt.Errorf("acme: the certificate from the CA is for %v, not %v", cert.Leaf.DNSNames, m.opt.Domains)
	}
	// Key first: a certificate without its key would look complete on the
	// next start; a key without its certificate is ignored.
	if err := netserve.WriteFileAtomic(m.keyFile(), keyPEM, 0o600); err != nil {
		return err
	}
	if err := netserve.WriteFileAtomic(m.certFile(), chains[0].ChainPEM, 0o600); err != nil {
		return err
	}
	m.use(&cert)
	m.log.Info("acme: new certificate", "domains", strings.Join(cert.Leaf.DNSNames, ","),
		"not_after", cert.Leaf.NotAfter.UTC(), "renew_at", m.renewAt().UTC(), "issuer", cert.Leaf.Issuer.String())
	return nil
}

// accountKey loads the account key of this CA, or makes and keeps one.
func (m *ACME) accountKey() (crypto.Signer, error) {
	data, err := os.ReadFile(m.accountFile())
	if err == nil {
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("acme: %s holds no PEM key", m.accountFile())
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("acme: %s: %w", m.accountFile(), err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("acme: %s: not a signing key", m.accountFile())
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("acme: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("acme: generate account key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("acme: marshal account key: %w", err)
	}
	if err := netserve.WriteFileAtomic(m.accountFile(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// alpnSolver provides TLS-ALPN-01 answers to GetConfigForClient.
type alpnSolver struct{ m *ACME }

func (s alpnSolver) Present(_ context.Context, chal acme.Challenge) error {
	cert, err := acmez.TLSALPN01ChallengeCert(chal)
	if err != nil {
		return fmt.Errorf("tls-alpn-01 certificate: %w", err)
	}
	s.m.mu.Lock()
	s.m.alpn[strings.ToLower(chal.Identifier.Value)] = cert
	s.m.mu.Unlock()
	return nil
}

func (s alpnSolver) CleanUp(_ context.Context, chal acme.Challenge) error {
	s.m.mu.Lock()
	delete(s.m.alpn, strings.ToLower(chal.Identifier.Value))
	s.m.mu.Unlock()
	return nil
}

// httpSolver provides HTTP-01 answers to ServeHTTPChallenge.
type httpSolver struct{ m *ACME }

func (s httpSolver) Present(_ context.Context, chal acme.Challenge) error {
	s.m.mu.Lock()
	s.m.http[chal.Token] = chal.KeyAuthorization
	s.m.mu.Unlock()
	return nil
}

func (s httpSolver) CleanUp(_ context.Context, chal acme.Challenge) error {
	s.m.mu.Lock()
	delete(s.m.http, chal.Token)
	s.m.mu.Unlock()
	return nil
}

var (
	_ acmez.Solver = alpnSolver{}
	_ acmez.Solver = httpSolver{}
)
