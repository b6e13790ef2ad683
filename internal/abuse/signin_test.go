package abuse

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/xdg-go/scram"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// signinSCRAM runs AUTHENTICATE SCRAM-SHA-256 with an independent client
// and returns the tagged response.
func signinSCRAM(c *guardConn, tag, user, password string) string {
	c.t.Helper()
	cl, err := scram.SHA256.NewClient(user, password, "")
	if err != nil {
		c.t.Fatal(err)
	}
	conv := cl.NewConversation()
	first, _ := conv.Step("")
	c.send(tag + " AUTHENTICATE SCRAM-SHA-256 " + base64.StdEncoding.EncodeToString([]byte(first)))
	for {
		l := c.line()
		if !strings.HasPrefix(l, "+ ") {
			return l
		}
		ch, _ := base64.StdEncoding.DecodeString(l[2:])
		resp, err := conv.Step(string(ch))
		if err != nil {
			// A server signature the client cannot verify: say so to
			// the test, and cancel.
			c.send("*")
			return "client: " + err.Error() + " / " + c.line()
		}
		c.send(base64.StdEncoding.EncodeToString([]byte(resp)))
	}
}

// TestSigninGuessesAreCounted: wrong SCRAM proofs and wrong device
// passwords from one client count as failures and block it, the right
// device password included, by SCRAM and by LOGIN alike; the owner's
// device on another address still signs in.
func TestSigninGuessesAreCounted(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, guardConfig(func(c *config.Config) {
		c.Auth.IPDelayAfter = 0 // no waits: only the block is looked at
		c.Auth.IPBlockAfter = 4
		c.Auth.AccountDelayAfter = 0
	}))
	api := env.Server.Admin()
	ctx := context.Background()
	if err := api.UserAdd(ctx, "alice@example.org", "correct horse"); err != nil {
		t.Fatal(err)
	}
	nd, err := api.DeviceAdd(ctx, "alice@example.org", "phone")
	if err != nil {
		t.Fatal(err)
	}
	// A near miss of the device password: its last character changed
	// (to one that differs from it, or the guess would be right).
	last := "2"
	if strings.HasSuffix(nd.Password, last) {
		last = "3"
	}
	nearMiss := nd.Password[:len(nd.Password)-1] + last
	guesser := guardIMAP(t, env, "127.0.0.2")
	for i, pw := range []string{"wrong", "correct horse!", nearMiss, "hunter2"} {
		if i%2 == 0 {
			if got := signinSCRAM(guesser, "g", "alice@example.org", pw); !strings.HasPrefix(got, "g NO [AUTHENTICATIONFAILED]") {
				t.Fatalf("SCRAM guess %d: %q", i, got)
			}
		} else if got := guardLogin(guesser, "g", "alice@example.org", pw); !strings.HasPrefix(got, "g NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("LOGIN guess %d: %q", i, got)
		}
	}
	// Blocked now, whatever it gives.
	if got := signinSCRAM(guesser, "h", "alice@example.org", nd.Password); !strings.HasPrefix(got, "h NO [UNAVAILABLE]") {
		t.Fatalf("SCRAM from the blocked client: %q", got)
	}
	if got := guardLogin(guesser, "i", "alice@example.org", nd.Password); !strings.HasPrefix(got, "i NO [UNAVAILABLE]") {
		t.Fatalf("LOGIN from the blocked client: %q", got)
	}
	// The phone, on its own address, is not locked out.
	phone := guardIMAP(t, env, "127.0.0.3")
	if got := signinSCRAM(phone, "p", "alice@example.org", nd.Password); !strings.HasPrefix(got, "p OK") {
		t.Fatalf("the phone: %q", got)
	}
	// Malformed SCRAM exchanges count too.
	other := guardIMAP(t, env, "127.0.0.4")
	for i := 0; i < 4; i++ {
		other.send("m AUTHENTICATE SCRAM-SHA-256 " + base64.StdEncoding.EncodeToString([]byte("nonsense")))
		if got := other.expect("m "); !strings.HasPrefix(got, "m NO") && !strings.HasPrefix(got, "m BAD") {
			t.Fatalf("malformed %d: %q", i, got)
		}
	}
	if got := guardLogin(other, "n", "alice@example.org", nd.Password); !strings.HasPrefix(got, "n NO [UNAVAILABLE]") {
		t.Fatalf("after malformed exchanges: %q", got)
	}
}
