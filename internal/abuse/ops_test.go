package abuse

import (
	"errors"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postfach/postfach/internal/testenv"
)

// Helpers shared by the ops area's files (mailboxes_test.go,
// damage_test.go, disk_test.go).

// opsIMAP logs in over plain IMAP on loopback with go-imap v2's client.
func opsIMAP(t *testing.T, env *testenv.Env, user, password string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(env.Addr("imap"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// opsCode returns the response code of a NO or BAD answer ("" for none or
// another error).
func opsCode(err error) imap.ResponseCode {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

// opsMailboxes lists every mailbox name of the logged-in account.
func opsMailboxes(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	data, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range data {
		out = append(out, d.Mailbox)
	}
	return out
}
