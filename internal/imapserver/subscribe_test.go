package imapserver_test

import (
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// TestAutoSubscribe: a folder created on one device is subscribed, so a
// client that shows subscribed folders only (Thunderbird) shows it on the
// others; RENAME moves the subscriptions, children included; DELETE
// leaves them (RFC 3501 §6.3.6). imap.auto_subscribe = false turns the
// subscribing off.
func TestAutoSubscribe(t *testing.T) {
	t.Parallel()
	for _, auto := range []bool{true, false} {
		env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.IMAP.AutoSubscribe = auto }})
		env.AddUser("alice@"+testenv.Domain, "secret password")
		login := func() *imapclient.Client {
			c, err := imapclient.DialInsecure(env.Addr("imap"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if err := c.Login("alice@"+testenv.Domain, "secret password").Wait(); err != nil {
				t.Fatal(err)
			}
			return c
		}
		subscribed := func(c *imapclient.Client) []string {
			data, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, d := range data {
				if !slices.Contains(d.Attrs, imap.MailboxAttrNonExistent) {
					out = append(out, d.Mailbox)
				}
			}
			slices.Sort(out)
			return out
		}
		laptop, phone := login(), login()
		if err := laptop.Create("Projects/2026", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		subs := subscribed(phone)
		if got := slices.Contains(subs, "Projects") && slices.Contains(subs, "Projects/2026"); got != auto {
			t.Fatalf("auto_subscribe=%v: the other device's subscribed folders are %q", auto, subs)
		}
		if !auto {
			continue
		}
		if err := laptop.Rename("Projects", "Work", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		subs = subscribed(phone)
		if !slices.Contains(subs, "Work") || !slices.Contains(subs, "Work/2026") || slices.Contains(subs, "Projects/2026") {
			t.Fatalf("after RENAME the subscribed folders are %q", subs)
		}
		if err := laptop.Rename("Work/2026", "Archive/Old/2026", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if subs = subscribed(phone); !slices.Contains(subs, "Archive/Old") || !slices.Contains(subs, "Archive/Old/2026") {
			t.Fatalf("the levels RENAME created are not subscribed: %q", subs)
		}
		if err := laptop.Delete("Archive/Old/2026").Wait(); err != nil {
			t.Fatal(err)
		}
		data, err := phone.List("", "Archive/Old/2026", &imap.ListOptions{SelectSubscribed: true}).Collect()
		if err != nil || len(data) != 1 {
			t.Fatalf("DELETE removed the subscription: %v %v", data, err)
		}
	}
}
