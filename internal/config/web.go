package config

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// ACMEChallenges lists the challenge types tls.acme_challenges accepts.
var ACMEChallenges = []string{ChallengeTLSALPN01, ChallengeHTTP01}

// validateWeb checks [web], [public] and the ACME keys of [tls].
func (c *Config) validateWeb(bad func(key, format string, args ...any)) {
	if c.Web.PublicURL != "" {
		if err := checkPublicURL(c.Web.PublicURL); err != "" {
			bad("web.public_url", "%q %s (example: \"https://mail.example.org\")", c.Web.PublicURL, err)
		}
	}
	if c.Public.Host != "" && !validHostname(c.Public.Host) {
		bad("public.host", "%q is not a valid host name", c.Public.Host)
	}
	for _, p := range []struct {
		key string
		v   int
	}{
		{"public.imap", c.Public.IMAP}, {"public.imaps", c.Public.IMAPS},
		{"public.pop3", c.Public.POP3}, {"public.pop3s", c.Public.POP3S},
		{"public.submission", c.Public.Submission}, {"public.submissions", c.Public.Submissions},
	} {
		if p.v < -1 || p.v > 65535 {
			bad(p.key, "must be a port (1-65535), 0 (the listen port) or -1 (not told to clients)")
		}
	}

	t := c.TLS
	for _, ch := range t.ACMEChallenges {
		if !slices.Contains(ACMEChallenges, ch) {
			bad("tls.acme_challenges", "%q is not one of %s", ch, strings.Join(ACMEChallenges, ", "))
		}
	}
	for _, d := range t.ACMEDomains {
		if !validHostname(d) || strings.Contains(d, "_") {
			// Wildcards need DNS-01, which postfach does not do.
			bad("tls.acme_domains", "%q is not a host name a certificate can be issued for", d)
		}
	}
	if !t.ACME {
		return
	}
	if t.Cert != "" || t.Key != "" {
		bad("tls.acme", "tls.cert and tls.key must be empty when tls.acme is on (the certificate comes from the CA)")
	}
	if u, err := url.Parse(t.ACMEDirectory); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("tls.acme_directory", "%q is not an https:// URL", t.ACMEDirectory)
	}
	if t.ACMEEmail != "" && !validAddress(t.ACMEEmail) {
		bad("tls.acme_email", "%q is not an address", t.ACMEEmail)
	}
	for _, ch := range t.ACMEChallenges {
		switch {
		case ch == ChallengeTLSALPN01 && c.Listen.Web == "":
			bad("tls.acme_challenges", "tls-alpn-01 is answered on listen.web, which is off")
		case ch == ChallengeHTTP01 && c.Listen.WebHTTP == "":
			bad("tls.acme_challenges", "http-01 is answered on listen.web_http, which is off")
		}
	}
	if len(c.ACMEChallengeTypes()) == 0 {
		bad("tls.acme", "no way to answer the CA's challenge: put listen.web on port 443 (tls-alpn-01), "+
			"or set listen.web_http and have port 80 reach it (http-01), or name them in tls.acme_challenges")
	}
}

// checkPublicURL returns why s is not a usable web.public_url, or "".
func checkPublicURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "is not a URL"
	case u.Scheme != "https":
		return "must start with https://"
	case u.Host == "" || u.User != nil:
		return "needs a host name (and no user)"
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return "must be scheme and host (and port) only: the pages live at the root"
	}
	host := u.Hostname()
	if net.ParseIP(host) == nil && !validHostname(host) {
		return "has a bad host name"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "has a bad port"
		}
	}
	return ""
}

// PublicURL returns web.public_url without a trailing slash, or when it is
// empty https://HOSTNAME with listen.web's port unless that is 443. bound
// is listen.web's actual address when known (a port 0 in the config), or
// "".
func (c *Config) PublicURL(bound string) string {
	if c.Web.PublicURL != "" {
		return strings.TrimSuffix(c.Web.PublicURL, "/")
	}
	addr := c.Listen.Web
	if bound != "" {
		addr = bound
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "443" || port == "" {
		return "https://" + c.Hostname
	}
	return "https://" + net.JoinHostPort(c.Hostname, port)
}

// PublicHost returns the host name clients are told to connect to:
// public.host, or hostname.
func (c *Config) PublicHost() string {
	if c.Public.Host != "" {
		return c.Public.Host
	}
	return c.Hostname
}

// PublicPort returns the port clients are told for a listener ("imap",
// "imaps", "pop3", "pop3s", "submission", "submissions"): public.NAME
// when set, else the port of the listener (bound, its actual address, when
// not "", else listen.NAME). It is 0 when clients are not told about it:
// the listener is off, or public.NAME is -1.
func (c *Config) PublicPort(name, bound string) int {
	var pub int
	var addr string
	switch name {
	case "imap":
		pub, addr = c.Public.IMAP, c.Listen.IMAP
	case "imaps":
		pub, addr = c.Public.IMAPS, c.Listen.IMAPS
	case "pop3":
		pub, addr = c.Public.POP3, c.Listen.POP3
	case "pop3s":
		pub, addr = c.Public.POP3S, c.Listen.POP3S
	case "submission":
		pub, addr = c.Public.Submission, c.Listen.Submission
	case "submissions":
		pub, addr = c.Public.Submissions, c.Listen.Submissions
	default:
		return 0
	}
	if addr == "" || pub < 0 {
		return 0
	}
	if pub > 0 {
		return pub
	}
	if bound != "" {
		addr = bound
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
}

// ACMEDomainNames returns tls.acme_domains, or hostname when it is empty.
func (c *Config) ACMEDomainNames() []string {
	if len(c.TLS.ACMEDomains) > 0 {
		return c.TLS.ACMEDomains
	}
	return []string{c.Hostname}
}

// ACMEChallengeTypes returns the ACME challenge types to offer:
// tls.acme_challenges, or when it is empty tls-alpn-01 if listen.web is on
// port 443 (RFC 8737 §3: the CA connects to port 443) and http-01 if
// listen.web_http is on (the CA connects to port 80, which must reach it).
func (c *Config) ACMEChallengeTypes() []string {
	if len(c.TLS.ACMEChallenges) > 0 {
		return c.TLS.ACMEChallenges
	}
	var out []string
	if _, port, err := net.SplitHostPort(c.Listen.Web); err == nil && port == "443" {
		out = append(out, ChallengeTLSALPN01)
	}
	if c.Listen.WebHTTP != "" {
		out = append(out, ChallengeHTTP01)
	}
	return out
}
