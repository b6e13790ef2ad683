package abuse

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// devsetupClient is an HTTPS client of listen.web that connects from the
// loopback address from, one connection per request.
func devsetupClient(env *testenv.Env, from string) *http.Client {
	addr := env.Addr("web")
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 30 * time.Second}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func devsetupDo(t *testing.T, c *http.Client, method, link string) int {
	t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = c.PostForm(link, url.Values{"what": {"profile"}})
	} else {
		resp, err = c.Get(link)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, link, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestDeviceSetupGuessing: guessing setup links goes through the guessing
// protection of the sign-ins (issue 14): each unknown or malformed token
// is a failure of the client; at auth.ip_block_after failures the client
// gets 429, even for a real link, which stays unused; another client (the
// phone of the user) opens its link as before. A used link is a real link,
// not a guess: opening it again does not count.
func TestDeviceSetupGuessing(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) {
		c.Auth.IPDelayAfter = 0 // off: no waiting, so the test is quick
		c.Auth.IPBlockAfter = 5
		c.Auth.IPBlockDuration = config.Duration(time.Hour)
	}})
	const addr = "gina@" + testenv.Domain
	env.AddUser(addr, "account password")
	ctx := context.Background()
	used, err := env.Server.Admin().DeviceAdd(ctx, addr, "old")
	if err != nil {
		t.Fatal(err)
	}
	nd, err := env.Server.Admin().DeviceAdd(ctx, addr, "phone")
	if err != nil {
		t.Fatal(err)
	}
	base := nd.SetupLink[:strings.Index(nd.SetupLink, "/setup/")+len("/setup/")]
	guesser := devsetupClient(env, "127.0.0.2")
	user := devsetupClient(env, "127.0.0.3")
	if code := devsetupDo(t, user, http.MethodPost, used.SetupLink); code != http.StatusOK {
		t.Fatalf("use a link: %d", code)
	}
	// Used links are not guesses.
	for range 10 {
		if code := devsetupDo(t, guesser, http.MethodGet, used.SetupLink); code != http.StatusGone {
			t.Fatalf("used link: %d", code)
		}
	}
	for i := range 5 {
		guess := make([]byte, auth.SetupTokenBytes)
		rand.Read(guess)
		link := base + base64.RawURLEncoding.EncodeToString(guess)
		method := http.MethodGet
		if i%2 == 1 {
			method = http.MethodPost
		}
		if i == 4 {
			link = base + "not-a-token"
		}
		if code := devsetupDo(t, guesser, method, link); code != http.StatusNotFound {
			t.Fatalf("guess %d: %d, want 404", i, code)
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		if code := devsetupDo(t, guesser, method, nd.SetupLink); code != http.StatusTooManyRequests {
			t.Fatalf("%s of a real link by a blocked client: %d, want 429", method, code)
		}
	}
	// The real link was not used by the blocked client: its owner gets
	// the profile.
	if code := devsetupDo(t, user, http.MethodGet, nd.SetupLink); code != http.StatusOK {
		t.Fatalf("the user's page: %d", code)
	}
	if code := devsetupDo(t, user, http.MethodPost, nd.SetupLink); code != http.StatusOK {
		t.Fatalf("the user's profile: %d", code)
	}
	if !strings.Contains(env.Logs(), "client blocked after repeated login failures") {
		t.Error("no log line for the blocked client")
	}
}
