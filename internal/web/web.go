// Package web serves listen.web, the HTTPS listener that sets up new
// devices, and listen.web_http, its plain-HTTP companion.
//
// On listen.web (Server): Thunderbird's autoconfig file (GET
// /.well-known/autoconfig/mail/config-v1.1.xml and
// /mail/config-v1.1.xml) and Outlook's autodiscover (POST
// /autodiscover/autodiscover.xml), both built from Options, never from the
// store: they answer the same for every address at a local domain, so they
// do not tell whether an account exists, and 404 for any other domain.
// Further pages are added with Server.Handle before Serve: the per-device
// setup links of `postfach device add` (NewSetup, setup.go). The certificate comes
// from Options.TLSConfig, which also answers ACME's TLS-ALPN-01.
//
// On listen.web_http (Redirect): ACME's HTTP-01 challenge when ACME uses
// it, and a permanent redirect to the public HTTPS address for everything
// else but the setup links, which get 404. Nothing is served over plain
// HTTP.
//
// Neither reads a request header a proxy could forge to change an answer:
// the domain comes from the address asked about (or the Host name of the
// autoconfig request), links from Options.PublicURL.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Options configures New.
type Options struct {
	// TLSConfig supplies the certificate (GetCertificate) and, with ACME,
	// the TLS-ALPN-01 answers (GetConfigForClient).
	TLSConfig *tls.Config
	// IsLocalDomain reports whether mail for a domain is delivered here;
	// only those domains are answered.
	IsLocalDomain func(domain string) bool
	// Mail says where clients find the mail listeners.
	Mail MailServers
	// Logger receives one debug line per request, and errors.
	Logger *slog.Logger
}

// MailServers is what clients are told: the host name and the port of
// each listener, 0 for those they are not told about.
type MailServers struct {
	Host        string
	IMAP        int // STARTTLS (RFC 9051 §6.2.1)
	IMAPS       int // implicit TLS (RFC 8314 §3.2)
	POP3        int // STLS (RFC 2595 §4)
	POP3S       int // implicit TLS
	Submission  int // STARTTLS (RFC 6409, RFC 3207)
	Submissions int // implicit TLS (RFC 8314 §3.3)
}

// Server is the HTTPS listener for new devices. Register extra pages with
// Handle before Serve.
type Server struct {
	opt Options
	log *slog.Logger
	mux *http.ServeMux
	srv *http.Server
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = http.ErrServerClosed

// New builds the server with its autoconfig and autodiscover pages.
func New(opt Options) *Server {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opt: opt, log: log, mux: http.NewServeMux()}
	ac := http.HandlerFunc(s.autoconfig)
	s.mux.Handle("/.well-known/autoconfig/mail/config-v1.1.xml", ac)
	s.mux.Handle("/mail/config-v1.1.xml", ac)
	// Outlook asks for /Autodiscover/Autodiscover.xml; paths are case
	// sensitive, so both spellings are routes.
	ad := http.HandlerFunc(s.autodiscover)
	s.mux.Handle("/autodiscover/autodiscover.xml", ad)
	s.mux.Handle("/Autodiscover/Autodiscover.xml", ad)
	s.srv = newHTTPServer(logRequests(log, "web", s.mux), log)
	s.srv.TLSConfig = opt.TLSConfig
	return s
}

// Handle adds a page (see http.ServeMux.Handle). Call it before Serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Serve accepts connections on ln (plain TCP: the TLS is done here) until
// Shutdown, and then returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error { return s.srv.ServeTLS(ln, "", "") }

// Shutdown stops accepting, lets requests in progress finish until ctx
// ends, and then closes the connections that are left.
func (s *Server) Shutdown(ctx context.Context) error { return shutdown(ctx, s.srv) }

func shutdown(ctx context.Context, srv *http.Server) error {
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	return err
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		// Failed handshakes and bad requests from the internet are
		// many and say nothing to the operator.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// statusWriter remembers the status of a response for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// logRequests logs each request at debug level, without its query (which
// may hold an address) or body, and without a setup link's token.
func logRequests(log *slog.Logger, listener string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		log.Debug("http request", "listener", listener, "remote", r.RemoteAddr, "method", r.Method,
			"path", logPath(r.URL.Path), "status", sw.status)
	})
}

// logPath is a request path as the log shows it: a setup link's token is
// a secret (whoever has it until it is used can fetch a password).
func logPath(p string) string {
	if strings.HasPrefix(p, SetupPrefix) {
		return SetupPrefix + "…"
	}
	return p
}

// RedirectOptions configures NewRedirect.
type RedirectOptions struct {
	// PublicURL is where everything is sent: scheme, host and port.
	PublicURL string
	// ACMEChallenge, when set, answers the paths under
	// /.well-known/acme-challenge/ (ACME HTTP-01, RFC 8555 §8.3).
	ACMEChallenge http.HandlerFunc
	// Logger receives one debug line per request.
	Logger *slog.Logger
}

// Redirect is the plain-HTTP listener: ACME's HTTP-01 challenge and a
// redirect to HTTPS.
type Redirect struct {
	srv *http.Server
}

// ACMEChallengePrefix is the path of ACME's HTTP-01 answers.
const ACMEChallengePrefix = "/.well-known/acme-challenge/"

// NewRedirect builds the plain-HTTP listener.
func NewRedirect(opt RedirectOptions) *Redirect {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	target := strings.TrimSuffix(opt.PublicURL, "/")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opt.ACMEChallenge != nil && strings.HasPrefix(r.URL.Path, ACMEChallengePrefix) {
			opt.ACMEChallenge(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, SetupPrefix) {
			// A setup link carries a password until it is used: it is
			// served over HTTPS only, and a redirect would make this
			// plain-text request look like a working way to it.
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "Setup links work only over HTTPS: open the link exactly as you got it, starting with https://.", http.StatusNotFound)
			return
		}
		// The target is the configured address, never the request's
		// Host: a forged Host cannot send clients elsewhere. 308 keeps
		// the method of a POST (RFC 9110 §15.4.9).
		code := http.StatusMovedPermanently
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			code = http.StatusPermanentRedirect
		}
		http.Redirect(w, r, target+r.URL.RequestURI(), code)
	})
	return &Redirect{srv: newHTTPServer(logRequests(log, "web_http", h), log)}
}

// Serve accepts connections on ln until Shutdown, and then returns
// ErrServerClosed.
func (s *Redirect) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops the listener (see Server.Shutdown).
func (s *Redirect) Shutdown(ctx context.Context) error { return shutdown(ctx, s.srv) }

// IsClosed reports whether err is the normal end of Serve.
func IsClosed(err error) bool { return errors.Is(err, http.ErrServerClosed) }
