package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postfach/postfach/internal/admin"
	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// setupClock is a clock the test moves forward.
type setupClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *setupClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *setupClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// plistValue is a parsed property list value: string, int, bool,
// []plistValue or map[string]plistValue. The parser is the test's own,
// for the plist elements a profile uses.
type plistValue any

func parsePlist(t *testing.T, data []byte) map[string]plistValue {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	var next func(start xml.StartElement) plistValue
	text := func() string {
		var s strings.Builder
		for {
			tok, err := d.Token()
			if err != nil {
				t.Fatalf("plist: %v", err)
			}
			switch tok := tok.(type) {
			case xml.CharData:
				s.Write(tok)
			case xml.EndElement:
				return s.String()
			default:
				t.Fatalf("plist: unexpected %T in a text element", tok)
			}
		}
	}
	// children reads the elements up to the end of the current one.
	children := func(f func(xml.StartElement)) {
		for {
			tok, err := d.Token()
			if err != nil {
				t.Fatalf("plist: %v", err)
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				f(tok)
			case xml.EndElement:
				return
			}
		}
	}
	next = func(start xml.StartElement) plistValue {
		switch start.Name.Local {
		case "string":
			return text()
		case "integer":
			n, err := strconv.Atoi(text())
			if err != nil {
				t.Fatalf("plist integer: %v", err)
			}
			return n
		case "true", "false":
			d.Skip()
			return start.Name.Local == "true"
		case "array":
			var a []plistValue
			children(func(s xml.StartElement) { a = append(a, next(s)) })
			return a
		case "dict":
			m := map[string]plistValue{}
			var key string
			children(func(s xml.StartElement) {
				if s.Name.Local == "key" {
					key = text()
					return
				}
				if _, dup := m[key]; dup || key == "" {
					t.Fatalf("plist: key %q repeated or missing", key)
				}
				m[key] = next(s)
				key = ""
			})
			return m
		}
		t.Fatalf("plist: unknown element %s", start.Name.Local)
		return nil
	}
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("plist: %v", err)
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Local == "plist" {
			for {
				tok, err := d.Token()
				if err != nil {
					t.Fatalf("plist: %v", err)
				}
				if s, ok := tok.(xml.StartElement); ok {
					m, ok := next(s).(map[string]plistValue)
					if !ok {
						t.Fatal("plist: the top is not a dict")
					}
					return m
				}
			}
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)

// setupPost presses one of the setup page's buttons.
func setupPost(t *testing.T, c *http.Client, link, what string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.PostForm(link, url.Values{"what": {what}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// grepDataDir reports the files under dir that contain any of secrets.
func grepDataDir(t *testing.T, dir string, secrets ...[]byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || de.Type()&fs.ModeSocket != 0 {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if bytes.Contains(data, s) {
				found = append(found, fmt.Sprintf("%s holds %q", path, s))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestDeviceSetupLink: device add gives a link on listen.web; its page
// does not use it; the profile behind it (once) sets up IMAP with the
// device's password, which signs in with go-imap's client; the second
// fetch is refused; the store never holds the token or the password in
// clear; the request log never shows the token.
func TestDeviceSetupLink(t *testing.T) {
	t.Parallel()
	clock := &setupClock{t: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	env := testenv.Start(t, testenv.Options{Now: clock.Now})
	const addr = "dora@" + testenv.Domain
	env.AddUser(addr, "account password")
	ctx := context.Background()
	nd, err := env.Server.Admin().DeviceAdd(ctx, addr, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	webPortN := webPort(t, env.Addr("web"))
	prefix := "https://mx.test.example:" + strconv.Itoa(webPortN) + "/setup/"
	tok, ok := strings.CutPrefix(nd.SetupLink, prefix)
	if !ok || nd.SetupError != "" || !nd.SetupExpires.Equal(clock.Now().Add(24*time.Hour)) {
		t.Fatalf("device add: %+v", nd)
	}
	raw, ok := auth.ParseSetupToken(tok)
	if !ok {
		t.Fatalf("token %q", tok)
	}
	// Neither the token nor the password is in the data directory.
	if found := grepDataDir(t, env.Config.DataDir, []byte(tok), raw, []byte(nd.Password)); len(found) > 0 {
		t.Fatalf("secrets in clear: %v", found)
	}

	hc := webClient(t, env)
	// The page, twice, and HEAD: the link stays unused.
	for range 2 {
		code, body := webGet(t, hc, nd.SetupLink)
		if code != http.StatusOK || !bytes.Contains(body, []byte(addr)) || !bytes.Contains(body, []byte("phone")) ||
			!bytes.Contains(body, []byte(`name="what" value="profile"`)) || !bytes.Contains(body, []byte(`name="what" value="settings"`)) {
			t.Fatalf("page: %d\n%s", code, body)
		}
	}
	if resp, err := hc.Head(nd.SetupLink); err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" ||
		resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("HEAD: %v %+v", err, resp)
	}

	// The profile.
	resp, body := setupPost(t, hc, nd.SetupLink, "profile")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `filename="mx.test.example-phone.mobileconfig"`) {
		t.Fatalf("profile: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	top := parsePlist(t, body)
	content, _ := top["PayloadContent"].([]plistValue)
	if len(content) != 1 {
		t.Fatalf("PayloadContent %v", top["PayloadContent"])
	}
	mail := content[0].(map[string]plistValue)
	imapsPort := webPort(t, env.Addr("imaps"))
	for k, want := range map[string]plistValue{
		"PayloadType": "com.apple.mail.managed", "PayloadVersion": 1,
		"EmailAccountType": "EmailTypeIMAP", "EmailAddress": addr, "EmailAccountDescription": addr,
		"IncomingMailServerHostName": "mx.test.example", "IncomingMailServerPortNumber": imapsPort,
		"IncomingMailServerUseSSL": true, "IncomingMailServerAuthentication": "EmailAuthPassword",
		"IncomingMailServerUsername": addr, "IncomingPassword": nd.Password,
	} {
		if mail[k] != want {
			t.Errorf("mail payload %s = %v, want %v", k, mail[k], want)
		}
	}
	// Submission (issue 15): the outgoing server is the implicit-TLS
	// port, with the same device password.
	for k, want := range map[string]plistValue{
		"OutgoingMailServerHostName": "mx.test.example", "OutgoingMailServerPortNumber": webPort(t, env.Addr("submissions")),
		"OutgoingMailServerUseSSL": true, "OutgoingMailServerAuthentication": "EmailAuthPassword",
		"OutgoingMailServerUsername": addr, "OutgoingPassword": nd.Password, "OutgoingPasswordSameAsIncomingPassword": true,
	} {
		if mail[k] != want {
			t.Errorf("mail payload %s = %v, want %v", k, mail[k], want)
		}
	}
	for k, want := range map[string]plistValue{"PayloadType": "Configuration", "PayloadVersion": 1, "PayloadRemovalDisallowed": false,
		"PayloadOrganization": "mx.test.example"} {
		if top[k] != want {
			t.Errorf("profile %s = %v, want %v", k, top[k], want)
		}
	}
	u1, _ := top["PayloadUUID"].(string)
	u2, _ := mail["PayloadUUID"].(string)
	if !uuidRE.MatchString(u1) || !uuidRE.MatchString(u2) || u1 == u2 {
		t.Errorf("PayloadUUIDs %q %q", u1, u2)
	}
	id, _ := top["PayloadIdentifier"].(string)
	if !strings.HasPrefix(id, "example.test.mx.postfach.") || mail["PayloadIdentifier"] != id+".mail" {
		t.Errorf("PayloadIdentifiers %q %q", id, mail["PayloadIdentifier"])
	}
	if d, _ := top["PayloadDescription"].(string); !strings.Contains(d, "(phone)") {
		t.Errorf("description %q does not name the device", d)
	}

	// Python's plistlib, an independent parser, reads the same.
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed: ", err)
	}
	cmd := exec.Command(py, "-c", `import plistlib, sys
p = plistlib.loads(sys.stdin.buffer.read())
m = p["PayloadContent"][0]
print(p["PayloadType"], m["PayloadType"], m["IncomingMailServerHostName"], m["IncomingMailServerPortNumber"], m["IncomingMailServerUsername"], m["IncomingPassword"])`)
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if want := fmt.Sprintf("Configuration com.apple.mail.managed mx.test.example %d %s %s\n", imapsPort, addr, nd.Password); err != nil || string(out) != want {
		t.Fatalf("plistlib: %v %q, want %q", err, out, want)
	}

	// The password from the profile signs in over IMAPS, as the device.
	pem, err := os.ReadFile(filepath.Join(env.Config.DataDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ic, err := imapclient.DialTLS(env.Addr("imaps"), &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: "mx.test.example"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login(mail["IncomingMailServerUsername"].(string), mail["IncomingPassword"].(string)).Wait(); err != nil {
		t.Fatalf("login with the profile's password: %v", err)
	}
	if _, err := ic.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	ic.Logout().Wait()

	// Used: the second fetch, of either kind, and the page say so.
	for _, what := range []string{"profile", "settings"} {
		resp, body := setupPost(t, hc, nd.SetupLink, what)
		if resp.StatusCode != http.StatusGone || !bytes.Contains(body, []byte("was used on 2026-12-07")) || bytes.Contains(body, []byte(nd.Password)) {
			t.Fatalf("second fetch (%s): %d\n%s", what, resp.StatusCode, body)
		}
	}
	if code, body := webGet(t, hc, nd.SetupLink); code != http.StatusGone || bytes.Contains(body, []byte(addr)) {
		t.Fatalf("page of a used link: %d\n%s", code, body)
	}
	if found := grepDataDir(t, env.Config.DataDir, []byte(tok), raw, []byte(nd.Password)); len(found) > 0 {
		t.Fatalf("secrets in clear: %v", found)
	}
	if strings.Contains(env.Logs(), tok) || strings.Contains(env.Logs(), nd.Password) {
		t.Fatal("the log shows the token or the password")
	}

	// The settings page (Android): the password, once.
	nd2, err := env.Server.Admin().DeviceAdd(ctx, addr, "android")
	if err != nil {
		t.Fatal(err)
	}
	resp, body = setupPost(t, hc, nd2.SetupLink, "settings")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(auth.FormatDevicePassword(nd2.Password))) ||
		!bytes.Contains(body, []byte("port "+strconv.Itoa(imapsPort)+", SSL/TLS")) {
		t.Fatalf("settings: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := setupPost(t, hc, nd2.SetupLink, "profile"); resp.StatusCode != http.StatusGone {
		t.Fatalf("profile after the settings: %d", resp.StatusCode)
	}

	// Unknown and malformed links: 404.
	other := bytes.Clone(raw)
	other[0] ^= 1
	for _, l := range []string{prefix + base64.RawURLEncoding.EncodeToString(other), prefix + strings.Repeat("A", len(tok)), prefix + "short", nd.SetupLink + "/profile", prefix + tok + "x"} {
		if code, _ := webGet(t, hc, l); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", l, code)
		}
	}
}

// TestDeviceSetupLinkExpires: a link expires after 24 hours (an injected
// clock); a new one from device setup replaces the old.
func TestDeviceSetupLinkExpires(t *testing.T) {
	t.Parallel()
	clock := &setupClock{t: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	env := testenv.Start(t, testenv.Options{Now: clock.Now})
	const addr = "erin@" + testenv.Domain
	env.AddUser(addr, "account password")
	ctx := context.Background()
	api := env.Server.Admin()
	nd, err := api.DeviceAdd(ctx, addr, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	hc := webClient(t, env)
	clock.add(24*time.Hour - time.Second)
	if code, _ := webGet(t, hc, nd.SetupLink); code != http.StatusOK {
		t.Fatalf("page a second before expiry: %d", code)
	}
	clock.add(time.Second)
	if code, body := webGet(t, hc, nd.SetupLink); code != http.StatusGone || !bytes.Contains(body, []byte("expired on 2026-12-08")) {
		t.Fatalf("page at expiry: %d\n%s", code, body)
	}
	if resp, body := setupPost(t, hc, nd.SetupLink, "profile"); resp.StatusCode != http.StatusGone || bytes.Contains(body, []byte(nd.Password)) {
		t.Fatalf("profile at expiry: %d\n%s", resp.StatusCode, body)
	}

	// device setup: a new password and link; the old link is unknown.
	nd2, err := api.DeviceSetup(ctx, addr, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := webGet(t, hc, nd.SetupLink); code != http.StatusNotFound {
		t.Fatalf("the replaced link: %d, want 404", code)
	}
	if resp, body := setupPost(t, hc, nd2.SetupLink, "profile"); resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(nd2.Password)) {
		t.Fatalf("profile of the new link: %d\n%s", resp.StatusCode, body)
	}

	// Revoking the device removes a pending link.
	nd3, err := api.DeviceSetup(ctx, addr, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	if err := api.DeviceRevoke(ctx, addr, "tablet"); err != nil {
		t.Fatal(err)
	}
	if code, _ := webGet(t, hc, nd3.SetupLink); code != http.StatusNotFound {
		t.Fatalf("link of a revoked device: %d, want 404", code)
	}
}

// TestDeviceSetupLinkNotOverHTTP: listen.web_http never serves a setup
// link, nor redirects it to HTTPS: it answers 404 and the link stays
// unused. With listen.web off, device add makes no link.
func TestDeviceSetupLinkNotOverHTTP(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.Listen.WebHTTP = "127.0.0.1:0" }})
	const addr = "finn@" + testenv.Domain
	env.AddUser(addr, "account password")
	ctx := context.Background()
	nd, err := env.Server.Admin().DeviceAdd(ctx, addr, "phone")
	if err != nil {
		t.Fatal(err)
	}
	path := nd.SetupLink[strings.Index(nd.SetupLink, "/setup/"):]
	plain := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodHead} {
		req, _ := http.NewRequest(method, "http://"+env.Addr("web_http")+path, strings.NewReader("what=profile"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" || bytes.Contains(body, []byte(nd.Password)) {
			t.Fatalf("%s over plain HTTP: %d %v\n%s", method, resp.StatusCode, resp.Header, body)
		}
	}
	// Other paths are still redirected.
	resp, err := plain.Get("http://" + env.Addr("web_http") + "/mail/config-v1.1.xml")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("redirect: %d", resp.StatusCode)
	}
	hc := webClient(t, env)
	if resp, _ := setupPost(t, hc, nd.SetupLink, "profile"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the link over HTTPS after the plain tries: %d", resp.StatusCode)
	}

	off := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.Listen.Web = "" }})
	off.AddUser(addr, "account password")
	nd, err = off.Server.Admin().DeviceAdd(ctx, addr, "phone")
	if err != nil || nd.SetupLink != "" || nd.SetupError != "" {
		t.Fatalf("device add without listen.web: %+v %v", nd, err)
	}
	if _, err := off.Server.Admin().DeviceSetup(ctx, addr, "phone"); !errors.Is(err, admin.ErrNoSetupLinks) {
		t.Fatalf("device setup without listen.web: %v", err)
	}
}
