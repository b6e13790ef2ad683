package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// What Thunderbird reads from an autoconfig file (its readFromXML): the
// emailProvider's domains, its incomingServer elements of type imap or
// pop3 and outgoingServer elements of type smtp, each with hostname, port,
// socketType (plain, SSL, STARTTLS), authentication and username, where
// %EMAILADDRESS% stands for the address the user typed. These types are
// the test's own, not the server's.
type tbConfig struct {
	XMLName  xml.Name `xml:"clientConfig"`
	Version  string   `xml:"version,attr"`
	Provider struct {
		ID       string     `xml:"id,attr"`
		Domains  []string   `xml:"domain"`
		Display  string     `xml:"displayName"`
		Incoming []tbServer `xml:"incomingServer"`
		Outgoing []tbServer `xml:"outgoingServer"`
	} `xml:"emailProvider"`
}

type tbServer struct {
	Type     string `xml:"type,attr"`
	Hostname string `xml:"hostname"`
	Port     int    `xml:"port"`
	Socket   string `xml:"socketType"`
	Auth     string `xml:"authentication"`
	Username string `xml:"username"`
}

// webClient trusts the test server's self-signed certificate for its
// host name, as a client that was told to trust it would, and connects to
// that name on the loopback address.
func webClient(t *testing.T, env *testenv.Env) *http.Client {
	t.Helper()
	pemData, err := os.ReadFile(filepath.Join(env.Config.DataDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	_, port, _ := net.SplitHostPort(env.Addr("web"))
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, "127.0.0.1:"+port)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func webGet(t *testing.T, c *http.Client, url string) (int, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func webPost(t *testing.T, c *http.Client, url, body string) (int, []byte) {
	t.Helper()
	resp, err := c.Post(url, "text/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func webPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestThunderbirdAutoconfig: a user who types only an address gets, from
// both places Thunderbird asks, an IMAP setup that logs in and a
// submission setup, with the public ports.
func TestThunderbirdAutoconfig(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		// The ports clients are told come from [public] when set, and
		// from the listener otherwise.
		c.Public.Submissions = 465
	}})
	const addr = "carol@" + testenv.Domain
	const password = "autoconfig password"
	env.AddUser(addr, password)
	hc := webClient(t, env)
	base := "https://mx.test.example:" + strconv.Itoa(webPort(t, env.Addr("web")))

	var bodies [][]byte
	for _, path := range []string{"/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"} {
		code, body := webGet(t, hc, base+path+"?emailaddress="+addr)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		bodies = append(bodies, body)
	}
	if !bytes.Equal(bodies[0], bodies[1]) {
		t.Errorf("the two paths answer differently:\n%s\n%s", bodies[0], bodies[1])
	}
	var cfg tbConfig
	if err := xml.Unmarshal(bodies[0], &cfg); err != nil {
		t.Fatalf("parse: %v\n%s", err, bodies[0])
	}
	if cfg.Version != "1.1" || len(cfg.Provider.Domains) != 1 || cfg.Provider.Domains[0] != testenv.Domain || cfg.Provider.ID == "" {
		t.Errorf("provider: %+v", cfg)
	}
	if len(cfg.Provider.Incoming) == 0 {
		t.Fatalf("Thunderbird needs an incoming server:\n%s", bodies[0])
	}
	// Thunderbird proposes the first incoming server.
	in := cfg.Provider.Incoming[0]
	want := tbServer{Type: "imap", Hostname: "mx.test.example", Port: webPort(t, env.Addr("imaps")), Socket: "SSL",
		Auth: "password-cleartext", Username: "%EMAILADDRESS%"}
	if in != want {
		t.Errorf("first incoming server %+v, want %+v", in, want)
	}
	seen := map[string]tbServer{}
	for _, s := range cfg.Provider.Incoming {
		seen[s.Type+"/"+s.Socket] = s
	}
	if s := seen["imap/STARTTLS"]; s.Port != webPort(t, env.Addr("imap")) {
		t.Errorf("imap STARTTLS: %+v", s)
	}
	if s := seen["pop3/SSL"]; s.Port != webPort(t, env.Addr("pop3s")) {
		t.Errorf("pop3 SSL: %+v", s)
	}
	// Submission (issue 15): implicit TLS first (RFC 8314 §3.3), then
	// STARTTLS on the listener's own port.
	wantOut := []tbServer{
		{Type: "smtp", Hostname: "mx.test.example", Port: 465, Socket: "SSL", Auth: "password-cleartext", Username: "%EMAILADDRESS%"},
		{Type: "smtp", Hostname: "mx.test.example", Port: webPort(t, env.Addr("submission")), Socket: "STARTTLS", Auth: "password-cleartext", Username: "%EMAILADDRESS%"},
	}
	if len(cfg.Provider.Outgoing) != 2 || cfg.Provider.Outgoing[0] != wantOut[0] || cfg.Provider.Outgoing[1] != wantOut[1] {
		t.Errorf("outgoing servers %+v, want %+v", cfg.Provider.Outgoing, wantOut)
	}

	// Thunderbird then logs in with what it read, checking the
	// certificate against the host name it was given.
	pemData, _ := os.ReadFile(filepath.Join(env.Config.DataDir, "tls", "cert.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	user := strings.ReplaceAll(in.Username, "%EMAILADDRESS%", addr)
	for _, s := range []tbServer{in, seen["imap/STARTTLS"]} {
		raw, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		raw.SetDeadline(time.Now().Add(60 * time.Second))
		opts := &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: s.Hostname}}
		var c *imapclient.Client
		if s.Socket == "SSL" {
			c = imapclient.New(tls.Client(raw, opts.TLSConfig), opts)
		} else if c, err = imapclient.NewStartTLS(raw, opts); err != nil {
			t.Fatalf("%s: STARTTLS: %v", s.Socket, err)
		}
		if err := c.Login(user, password).Wait(); err != nil {
			t.Fatalf("%s: login with the autoconfig settings: %v", s.Socket, err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatalf("%s: select: %v", s.Socket, err)
		}
		c.Logout().Wait()
		c.Close()
	}

	// Without emailaddress, the domain is the Host's, less "autoconfig.".
	req, _ := http.NewRequest("GET", base+"/mail/config-v1.1.xml", nil)
	req.Host = "autoconfig." + testenv.Domain
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, bodies[0]) {
		t.Errorf("by Host: %d\n%s", resp.StatusCode, body)
	}
}

// TestAutoconfigRevealsNoAccounts: the answer for an address with an
// account and for one without is the same, a foreign domain gets 404 and
// a bad address 400.
func TestAutoconfigRevealsNoAccounts(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	env.AddUser("dave@"+testenv.Domain, "autoconfig password")
	hc := webClient(t, env)
	base := "https://mx.test.example:" + strconv.Itoa(webPort(t, env.Addr("web")))
	const path = "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress="
	_, known := webGet(t, hc, base+path+"dave@"+testenv.Domain)
	_, unknown := webGet(t, hc, base+path+"nobody@"+testenv.Domain)
	if !bytes.Equal(known, unknown) {
		t.Errorf("answers differ:\n%s\n%s", known, unknown)
	}
	// The second local domain, in another case.
	if code, body := webGet(t, hc, base+path+"x@EXAMPLE.NET"); code != http.StatusOK || !strings.Contains(string(body), "<domain>example.net</domain>") {
		t.Errorf("second domain: %d %s", code, body)
	}
	for _, q := range []string{"dave@foreign.example", "dave@" + testenv.Domain + ".evil.example", "dave@xn--bcher-kva.example"} {
		if code, _ := webGet(t, hc, base+path+q); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", q, code)
		}
	}
	for _, q := range []string{"not-an-address", "@" + testenv.Domain, "dave@"} {
		if code, _ := webGet(t, hc, base+path+q); code != http.StatusBadRequest {
			t.Errorf("%q: %d, want 400", q, code)
		}
	}
	// No emailaddress and a foreign Host.
	if code, _ := webGet(t, hc, base+"/mail/config-v1.1.xml"); code != http.StatusNotFound {
		t.Errorf("Host mx.test.example: %d, want 404", code)
	}
	if code, _ := webGet(t, hc, base+"/"); code != http.StatusNotFound {
		t.Errorf("/: %d, want 404", code)
	}
}

const outlookRequest = `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>ADDRESS</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`

// What Outlook reads from an autodiscover answer (the test's own types).
type olResponse struct {
	XMLName  xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response struct {
		XMLName xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Response"`
		Account struct {
			AccountType string `xml:"AccountType"`
			Action      string `xml:"Action"`
			Protocol    []struct {
				Type       string `xml:"Type"`
				Server     string `xml:"Server"`
				Port       int    `xml:"Port"`
				LoginName  string `xml:"LoginName"`
				SSL        string `xml:"SSL"`
				Encryption string `xml:"Encryption"`
				SPA        string `xml:"SPA"`
			} `xml:"Protocol"`
		} `xml:"Account"`
	} `xml:"Response"`
}

// TestOutlookAutodiscover: the POX answer has one Protocol per type with
// the public ports, the same for every address of a local domain, and 404
// for others.
func TestOutlookAutodiscover(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		c.Public.Host = "imap.example.org"
		c.Public.IMAPS = 993
		c.Public.POP3S = -1
		c.Public.POP3 = -1
		c.Public.Submission = 587
	}})
	env.AddUser("erin@"+testenv.Domain, "autodiscover password")
	hc := webClient(t, env)
	base := "https://mx.test.example:" + strconv.Itoa(webPort(t, env.Addr("web")))
	var answers []string
	for _, addr := range []string{"erin@" + testenv.Domain, "nobody@" + testenv.Domain} {
		for _, path := range []string{"/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"} {
			code, body := webPost(t, hc, base+path, strings.ReplaceAll(outlookRequest, "ADDRESS", addr))
			if code != http.StatusOK {
				t.Fatalf("%s %s: %d %s", path, addr, code, body)
			}
			var r olResponse
			if err := xml.Unmarshal(body, &r); err != nil {
				t.Fatalf("parse: %v\n%s", err, body)
			}
			a := r.Response.Account
			if a.AccountType != "email" || a.Action != "settings" || len(a.Protocol) != 2 {
				t.Fatalf("account: %+v\n%s", a, body)
			}
			// Submission (issue 15): the implicit-TLS port, on the
			// listener's own port as [public] names none.
			smtp := a.Protocol[1]
			if smtp.Type != "SMTP" || smtp.Server != "imap.example.org" || smtp.Port != webPort(t, env.Addr("submissions")) ||
				smtp.SSL != "on" || smtp.Encryption != "SSL" || smtp.LoginName != addr {
				t.Errorf("SMTP: %+v", smtp)
			}
			imap := a.Protocol[0]
			if imap.Type != "IMAP" || imap.Server != "imap.example.org" || imap.Port != 993 || imap.SSL != "on" ||
				imap.Encryption != "SSL" || imap.LoginName != addr || imap.SPA != "off" {
				t.Errorf("IMAP: %+v", imap)
			}
			answers = append(answers, strings.ReplaceAll(string(body), addr, "ADDRESS"))
		}
	}
	for _, a := range answers[1:] {
		if a != answers[0] {
			t.Errorf("answers differ:\n%s\n%s", answers[0], a)
		}
	}
	if code, _ := webPost(t, hc, base+"/autodiscover/autodiscover.xml", strings.ReplaceAll(outlookRequest, "ADDRESS", "erin@foreign.example")); code != http.StatusNotFound {
		t.Errorf("foreign domain: %d, want 404", code)
	}
	for _, bad := range []string{"", "not xml", "<Autodiscover><Request><EMailAddress>no-at</EMailAddress></Request></Autodiscover>",
		strings.ReplaceAll(strings.ReplaceAll(outlookRequest, "ADDRESS", "erin@"+testenv.Domain), "outlook/responseschema/2006a", "mobilesync/responseschema/2006")} {
		if code, _ := webPost(t, hc, base+"/autodiscover/autodiscover.xml", bad); code != http.StatusBadRequest {
			t.Errorf("%q: %d, want 400", bad, code)
		}
	}
	if code, _ := webGet(t, hc, base+"/autodiscover/autodiscover.xml"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", code)
	}
}

// TestWebHTTPRedirects: listen.web_http sends everything to the public
// HTTPS address, keeping path and query, whatever Host the request names;
// without ACME the challenge path is redirected too.
func TestWebHTTPRedirects(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		c.Listen.WebHTTP = "127.0.0.1:0"
		c.Web.PublicURL = "https://setup.example.org/"
	}})
	hc := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://" + env.Addr("web_http")
	for _, tt := range []struct {
		method, path, host string
		code               int
	}{
		{"GET", "/mail/config-v1.1.xml?emailaddress=a@example.org", "autoconfig.example.org", http.StatusMovedPermanently},
		{"HEAD", "/", "evil.example", http.StatusMovedPermanently},
		{"POST", "/autodiscover/autodiscover.xml", "autodiscover.example.org", http.StatusPermanentRedirect},
		{"GET", "/.well-known/acme-challenge/token", "mx.test.example", http.StatusMovedPermanently},
	} {
		req, _ := http.NewRequest(tt.method, base+tt.path, nil)
		req.Host = tt.host
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code || resp.Header.Get("Location") != "https://setup.example.org"+tt.path {
			t.Errorf("%s %s (Host %s): %d Location %q", tt.method, tt.path, tt.host, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if !strings.Contains(env.Logs(), "public_url=https://setup.example.org") {
		t.Error("the log does not name the public URL")
	}
}
