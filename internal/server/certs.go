package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postfach/postfach/internal/certs"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/netserve"
	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/web"
)

// certSource supplies the certificate of every TLS listener and keeps it
// current (certs.Files, certs.ACME).
type certSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Run keeps the certificate current until ctx ends.
	Run(ctx context.Context)
	// Reload looks at the certificate now (SIGHUP).
	Reload() error
	// Current returns the certificate served now.
	Current() *tls.Certificate
}

// watchCert adds the expiry of the certificate served now, read at each
// scrape: an alert on it catches a renewal that keeps failing.
func (m *metrics) watchCert(src certSource) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "postfach_tls_certificate_expiry_timestamp_seconds",
		Help: "When the TLS certificate served now expires (Unix time).",
	}, func() float64 {
		if c := src.Current(); c != nil && c.Leaf != nil {
			return float64(c.Leaf.NotAfter.Unix())
		}
		return 0
	}))
}

var (
	_ certSource = (*certs.Files)(nil)
	_ certSource = (*certs.ACME)(nil)
)

// newCertSource builds the certificate source the [tls] keys describe:
// the operator's files, the self-signed pair in DATA_DIR/tls, or ACME
// with the self-signed pair until the first certificate arrives.
func newCertSource(cfg *config.Config, log *slog.Logger, poll time.Duration) (certSource, error) {
	acmeLog := log.With("component", "acme")
	log = log.With("component", "tls")
	certFile, keyFile := cfg.TLS.Cert, cfg.TLS.Key
	if certFile == "" && keyFile == "" {
		var err error
		certFile, keyFile, err = netserve.SelfSigned(filepath.Join(cfg.DataDir, "tls"), cfg.Hostname)
		if err != nil {
			return nil, err
		}
	}
	files, err := certs.LoadFiles(certs.FilesOptions{Cert: certFile, Key: keyFile, Poll: poll, Logger: log})
	if err != nil {
		return nil, err
	}
	if !cfg.TLS.ACME {
		return files, nil
	}
	var roots *x509.CertPool
	if cfg.TLS.ACMECA != "" {
		pem, err := os.ReadFile(cfg.TLS.ACMECA)
		if err != nil {
			return nil, fmt.Errorf("tls.acme_ca: %w", err)
		}
		roots, err = x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.acme_ca: %s holds no PEM certificate", cfg.TLS.ACMECA)
		}
	}
	return certs.NewACME(certs.ACMEOptions{
		Dir:         filepath.Join(cfg.DataDir, "acme"),
		Directory:   cfg.TLS.ACMEDirectory,
		Email:       cfg.TLS.ACMEEmail,
		Domains:     cfg.ACMEDomainNames(),
		Challenges:  cfg.ACMEChallengeTypes(),
		RootCAs:     roots,
		Placeholder: files.Current(),
		Logger:      acmeLog,
	})
}

// startWeb builds the servers of listen.web and listen.web_http on their
// open listeners, once every other listener is open (the autoconfig
// answers name their actual ports).
func (s *Server) startWeb(tlsConfig func() (*tls.Config, error), webLn, httpLn net.Listener) error {
	cfg := s.cfg
	acme, _ := s.certs.(*certs.ACME)
	challenges := cfg.ACMEChallengeTypes()
	if webLn != nil {
		tc, err := tlsConfig()
		if err != nil {
			return err
		}
		wtc := tc.Clone() // shares GetCertificate
		if acme != nil && slices.Contains(challenges, config.ChallengeTLSALPN01) {
			wtc.GetConfigForClient = acme.GetConfigForClient
		}
		ws := web.New(web.Options{
			TLSConfig:     wtc,
			IsLocalDomain: cfg.IsLocalDomain,
			Mail:          s.mailServers(),
			Logger:        s.log.With("component", "web"),
		})
		s.web = ws
		s.startSetupLinks(ws)
		s.servers = append(s.servers, namedServer{"web", ws, s.limitWeb(webLn, "web")})
	}
	if httpLn != nil {
		ro := web.RedirectOptions{PublicURL: cfg.PublicURL(s.addrs["web"]), Logger: s.log.With("component", "web")}
		if acme != nil && slices.Contains(challenges, config.ChallengeHTTP01) {
			ro.ACMEChallenge = acme.ServeHTTPChallenge
		}
		s.servers = append(s.servers, namedServer{"web_http", web.NewRedirect(ro), s.limitWeb(httpLn, "web_http")})
	}
	return nil
}

// startSetupLinks serves the device setup links (docs/devices.md) on
// listen.web, and lets device add make them: the links start with the
// public address of listen.web.
func (s *Server) startSetupLinks(ws *web.Server) {
	links, ok := s.st.(store.SetupLinks)
	if !ok {
		links = s.be.SetupLinks
	}
	ws.Handle(web.SetupPrefix, web.NewSetup(web.SetupOptions{
		Links: struct {
			store.SetupLinks
			store.Store
		}{links, s.st},
		Guard:  s.auth,
		Mail:   s.mailServers(),
		Now:    s.now,
		Logger: s.log.With("component", "web"),
	}))
	s.ops.SetupLinks = links
	s.ops.SetupURL = s.cfg.PublicURL(s.addrs["web"])
}

// limitWeb puts the connection limits on a web listener.
func (s *Server) limitWeb(ln net.Listener, name string) net.Listener {
	return netserve.NewListener(ln, netserve.Options{
		Proto:         name,
		Logger:        s.log,
		MaxConns:      s.cfg.Limits.Connections,
		MaxConnsPerIP: s.cfg.Limits.ConnectionsPerIP,
		Metrics:       s.m.conns(),
	})
}

// mailServers says where clients find the mail listeners ([public]).
func (s *Server) mailServers() web.MailServers {
	c := s.cfg
	return web.MailServers{
		Host:        c.PublicHost(),
		IMAP:        c.PublicPort("imap", s.addrs["imap"]),
		IMAPS:       c.PublicPort("imaps", s.addrs["imaps"]),
		POP3:        c.PublicPort("pop3", s.addrs["pop3"]),
		POP3S:       c.PublicPort("pop3s", s.addrs["pop3s"]),
		Submission:  c.PublicPort("submission", s.addrs["submission"]),
		Submissions: c.PublicPort("submissions", s.addrs["submissions"]),
	}
}

// Reload re-reads the TLS certificate files now, or with ACME checks the
// certificate (cmd/postfach calls it on SIGHUP). A certificate that does
// not load is logged and returned as the error; the old one stays.
func (s *Server) Reload() error {
	if s.certs == nil {
		return errors.New("no tls listener")
	}
	return s.certs.Reload()
}
