package web

import (
	"encoding/xml"
	"net"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// Thunderbird's autoconfig file, version 1.1 (the format of Mozilla's
// ISPDB; the fields Thunderbird reads: emailProvider with its domains and
// names, incomingServer of type imap or pop3 and outgoingServer of type
// smtp, each with hostname, port, socketType (plain, SSL or STARTTLS),
// authentication and username). The first incoming server is the one
// Thunderbird proposes; the others are its alternatives.

// ClientConfig is the root element of an autoconfig file.
type ClientConfig struct {
	XMLName  xml.Name      `xml:"clientConfig"`
	Version  string        `xml:"version,attr"`
	Provider EmailProvider `xml:"emailProvider"`
}

// EmailProvider describes the servers of one mail domain.
type EmailProvider struct {
	ID               string         `xml:"id,attr"`
	Domains          []string       `xml:"domain"`
	DisplayName      string         `xml:"displayName"`
	DisplayShortName string         `xml:"displayShortName"`
	Incoming         []ConfigServer `xml:"incomingServer"`
	Outgoing         []ConfigServer `xml:"outgoingServer"`
}

// ConfigServer is an incomingServer or outgoingServer element.
type ConfigServer struct {
	Type           string `xml:"type,attr"`
	Hostname       string `xml:"hostname"`
	Port           int    `xml:"port"`
	SocketType     string `xml:"socketType"`
	Authentication string `xml:"authentication"`
	Username       string `xml:"username"`
}

// Autoconfig socket types and values.
const (
	SocketSSL      = "SSL"
	SocketSTARTTLS = "STARTTLS"
	// AuthPasswordCleartext is a password sent as it is (AUTH PLAIN or
	// LOGIN) inside TLS.
	AuthPasswordCleartext = "password-cleartext"
	// UsernameEmailAddress is replaced by the address the user typed.
	UsernameEmailAddress = "%EMAILADDRESS%"
)

// clientConfig builds the autoconfig file for domain. It depends only on
// the domain and the configuration: every address gets the same file.
func (m MailServers) clientConfig(domain string) ClientConfig {
	srv := func(typ string, port int, socket string) ConfigServer {
		return ConfigServer{Type: typ, Hostname: m.Host, Port: port, SocketType: socket,
			Authentication: AuthPasswordCleartext, Username: UsernameEmailAddress}
	}
	p := EmailProvider{ID: domain, Domains: []string{domain}, DisplayName: domain + " (" + m.Host + ")",
		DisplayShortName: domain}
	// Implicit TLS first (RFC 8314 §3: preferred over STARTTLS), IMAP
	// before POP3: every device then sees the same mailbox.
	for _, s := range []struct {
		typ, socket string
		port        int
	}{
		{"imap", SocketSSL, m.IMAPS}, {"imap", SocketSTARTTLS, m.IMAP},
		{"pop3", SocketSSL, m.POP3S}, {"pop3", SocketSTARTTLS, m.POP3},
	} {
		if s.port != 0 {
			p.Incoming = append(p.Incoming, srv(s.typ, s.port, s.socket))
		}
	}
	if m.Submissions != 0 {
		p.Outgoing = append(p.Outgoing, srv("smtp", m.Submissions, SocketSSL))
	}
	if m.Submission != 0 {
		p.Outgoing = append(p.Outgoing, srv("smtp", m.Submission, SocketSTARTTLS))
	}
	return ClientConfig{Version: "1.1", Provider: p}
}

// autoconfig serves Thunderbird's autoconfig file. Thunderbird asks
// https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=ADDRESS and
// https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ADDRESS;
// the domain is the address's, or without one the Host's (less a leading
// "autoconfig.").
func (s *Server) autoconfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	var domain string
	if addr := r.URL.Query().Get("emailaddress"); addr != "" {
		d, ok := addressDomain(addr)
		if !ok {
			http.Error(w, "emailaddress is not an address", http.StatusBadRequest)
			return
		}
		domain = d
	} else {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		domain = strings.TrimPrefix(strings.ToLower(host), "autoconfig.")
	}
	if !s.local(domain) {
		http.NotFound(w, r)
		return
	}
	writeXML(w, r, s.opt.Mail.clientConfig(domain))
}

// local reports whether domain is one of the local domains.
func (s *Server) local(domain string) bool {
	return domain != "" && s.opt.IsLocalDomain != nil && s.opt.IsLocalDomain(domain)
}

// addressDomain returns the domain of local@domain, in lower case and
// ASCII (an internationalised name in its A-label form, RFC 5890 §2.3.2.1,
// as domains are configured).
func addressDomain(addr string) (string, bool) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 || len(addr) > 320 || strings.ContainsAny(addr, " \t\r\n<>\x00") {
		return "", false
	}
	d, err := idna.Lookup.ToASCII(addr[i+1:])
	if err != nil {
		return "", false
	}
	return strings.ToLower(d), true
}

// writeXML sends v as an XML document.
func writeXML(w http.ResponseWriter, r *http.Request, v any) {
	body, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	// The answer is the same for every address of a domain; a device
	// that asks again a day later should see a changed port.
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)+1))
	if r.Method == http.MethodHead {
		return
	}
	w.Write([]byte(xml.Header))
	w.Write(body)
	w.Write([]byte("\n"))
}
