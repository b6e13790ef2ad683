package web

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func testServer() *Server {
	return New(Options{
		IsLocalDomain: func(d string) bool {
			return strings.EqualFold(d, "example.org") || strings.EqualFold(d, "xn--bcher-kva.example")
		},
		Mail: MailServers{Host: "mail.example.org", IMAPS: 993, IMAP: 143, POP3S: 995, Submissions: 465, Submission: 587},
	})
}

func serve(s *Server, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.srv.Handler.ServeHTTP(w, r)
	return w
}

func TestAutoconfigInternationalDomain(t *testing.T) {
	s := testServer()
	w := serve(s, httptest.NewRequest("GET", "/mail/config-v1.1.xml?emailaddress="+url.QueryEscape("anna@Bücher.example"), nil))
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var c ClientConfig
	if err := xml.Unmarshal(w.Body.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	if c.Provider.Domains[0] != "xn--bcher-kva.example" {
		t.Errorf("domain %q", c.Provider.Domains[0])
	}
}

func TestAutoconfigMethods(t *testing.T) {
	s := testServer()
	get := serve(s, httptest.NewRequest("GET", "/mail/config-v1.1.xml?emailaddress=a@example.org", nil))
	head := serve(s, httptest.NewRequest("HEAD", "/mail/config-v1.1.xml?emailaddress=a@example.org", nil))
	if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("Content-Length") != get.Header().Get("Content-Length") {
		t.Errorf("HEAD: %d, %d bytes, length %q (GET: %q)", head.Code, head.Body.Len(),
			head.Header().Get("Content-Length"), get.Header().Get("Content-Length"))
	}
	if ct := get.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") {
		t.Errorf("Content-Type %q", ct)
	}
	post := serve(s, httptest.NewRequest("POST", "/mail/config-v1.1.xml?emailaddress=a@example.org", nil))
	if post.Code != http.StatusMethodNotAllowed || post.Header().Get("Allow") == "" {
		t.Errorf("POST: %d", post.Code)
	}
}

// TestAutoconfigOffersOnlyListeners: a listener clients are not told about
// is not in the file, and the order is implicit TLS first.
func TestAutoconfigOffersOnlyListeners(t *testing.T) {
	c := MailServers{Host: "h.example", IMAP: 143, Submission: 587}.clientConfig("example.org")
	if len(c.Provider.Incoming) != 1 || c.Provider.Incoming[0].SocketType != SocketSTARTTLS ||
		len(c.Provider.Outgoing) != 1 || c.Provider.Outgoing[0].Port != 587 {
		t.Errorf("%+v", c.Provider)
	}
	a := MailServers{Host: "h.example", IMAP: 143, IMAPS: 993}.autodiscoverAccount("a@example.org")
	if len(a.Protocols) != 1 || a.Protocols[0].Port != 993 || a.Protocols[0].Encryption != "SSL" {
		t.Errorf("%+v", a)
	}
}

func TestAutodiscoverLimits(t *testing.T) {
	s := testServer()
	big := `<Autodiscover><Request><EMailAddress>a@example.org</EMailAddress>` + strings.Repeat("<x/>", maxAutodiscoverRequest) + `</Request></Autodiscover>`
	w := serve(s, httptest.NewRequest("POST", "/autodiscover/autodiscover.xml", strings.NewReader(big)))
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("large request: %d", w.Code)
	}
	// A document that declares entities gets no expansion.
	bomb := `<!DOCTYPE a [<!ENTITY e "a@example.org">]><Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>`
	w = serve(s, httptest.NewRequest("POST", "/autodiscover/autodiscover.xml", strings.NewReader(bomb)))
	if w.Code != http.StatusBadRequest {
		t.Errorf("entity: %d %s", w.Code, w.Body)
	}
}

// TestHandle: pages added with Handle are served next to the built-in
// ones.
func TestHandle(t *testing.T) {
	s := testServer()
	s.Handle("/setup/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "setup page") }))
	if w := serve(s, httptest.NewRequest("GET", "/setup/token", nil)); w.Body.String() != "setup page" {
		t.Errorf("%d %q", w.Code, w.Body)
	}
	if w := serve(s, httptest.NewRequest("GET", "/mail/config-v1.1.xml?emailaddress=a@example.org", nil)); w.Code != http.StatusOK {
		t.Errorf("autoconfig: %d", w.Code)
	}
}

func TestRedirectACMEChallenge(t *testing.T) {
	r := NewRedirect(RedirectOptions{PublicURL: "https://mail.example.org:8443", ACMEChallenge: func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "key authorization for "+strings.TrimPrefix(r.URL.Path, ACMEChallengePrefix))
	}})
	w := httptest.NewRecorder()
	r.srv.Handler.ServeHTTP(w, httptest.NewRequest("GET", "http://mail.example.org/.well-known/acme-challenge/tok", nil))
	if w.Code != http.StatusOK || w.Body.String() != "key authorization for tok" {
		t.Errorf("challenge: %d %q", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	r.srv.Handler.ServeHTTP(w, httptest.NewRequest("GET", "http://mail.example.org//evil.example/x?a=b", nil))
	if loc := w.Header().Get("Location"); w.Code != http.StatusMovedPermanently || loc != "https://mail.example.org:8443//evil.example/x?a=b" {
		t.Errorf("redirect: %d %q", w.Code, loc)
	}
}

// checkAnswer checks what any request may get: a known status, and for
// 200 a well-formed XML document.
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	switch w.Code {
	case http.StatusOK:
		d := xml.NewDecoder(bytes.NewReader(w.Body.Bytes()))
		for {
			_, err := d.Token()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("answer is not XML: %v\n%s", err, w.Body)
			}
		}
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusMethodNotAllowed:
	default:
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

func FuzzAutodiscover(f *testing.F) {
	f.Add([]byte(`<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>a@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`))
	f.Add([]byte(`<Autodiscover><Request><EMailAddress>a&lt;b&gt;@example.org</EMailAddress></Request></Autodiscover>`))
	f.Add([]byte(`<Autodiscover><Request><EMailAddress>a@foreign.example</EMailAddress></Request></Autodiscover>`))
	f.Add([]byte(`<?xml version="1.0"?><Autodiscover>`))
	f.Add([]byte{})
	s := testServer()
	f.Fuzz(func(t *testing.T, body []byte) {
		w := serve(s, httptest.NewRequest("POST", "/autodiscover/autodiscover.xml", bytes.NewReader(body)))
		checkAnswer(t, w)
	})
}

func FuzzAutoconfig(f *testing.F) {
	f.Add("a@example.org", "autoconfig.example.org")
	f.Add("", "autoconfig.example.org:443")
	f.Add("a@b@example.org", "example.org")
	f.Add("\"a b\"@Bücher.example", "")
	f.Add("a@xn--", "[::1]:8443")
	s := testServer()
	f.Fuzz(func(t *testing.T, addr, host string) {
		r := httptest.NewRequest("GET", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress="+url.QueryEscape(addr), nil)
		r.Host = host
		w := serve(s, r)
		checkAnswer(t, w)
		if w.Code == http.StatusOK && strings.Contains(w.Body.String(), "<username>"+addr) && addr != "" {
			t.Fatalf("the address is in the answer:\n%s", w.Body)
		}
	})
}
