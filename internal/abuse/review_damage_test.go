package abuse

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// Found by the review of issue 11, item 11: once a body file was found
// damaged, storing the same content again (a client appending the message
// again after the server refused it, or the same attachment saved twice)
// rewrote the file, but the store kept the body marked damaged, so the old
// message and the new one were both refused with NO [SERVERBUG] until a
// scrub pass or a restart.

// reviewAppend appends raw to mailbox and returns the new UID.
func reviewAppend(t *testing.T, c *imapclient.Client, mailbox string, raw []byte) imap.UID {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	return data.UID
}

// reviewFetchBody returns the BODY[] of the message with UID uid, or the
// command's error.
func reviewFetchBody(t *testing.T, c *imapclient.Client, uid imap.UID) ([]byte, error) {
	t.Helper()
	sec := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if m.UID == uid {
			return m.FindBodySection(sec), nil
		}
	}
	return nil, nil
}

func TestReviewDamagedBodyHealedByStoringItAgain(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.Scrub.Rate = 0 }})
	env.AddUser("alice@example.org", "secret password")
	c := opsIMAP(t, env, "alice@example.org", "secret password")
	raw := []byte(damageMessage("phoenix"))
	sum := sha256.Sum256(raw)
	h := hex.EncodeToString(sum[:])
	path := filepath.Join(env.Config.DataDir, "blobs", h[:2], h[2:4], h)

	first := reviewAppend(t, c, "INBOX", raw)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatalf("the body file is not where expected: %v", err)
	}
	if _, err := reviewFetchBody(t, c, first); opsCode(err) != imap.ResponseCodeServerBug {
		t.Fatalf("FETCH of the message whose file is gone: %v, want NO [SERVERBUG]", err)
	}

	// The same content again: its file is written anew, and both
	// messages are whole.
	second := reviewAppend(t, c, "INBOX", raw)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the second APPEND did not write the body file: %v", err)
	}
	for _, uid := range []imap.UID{second, first} {
		got, err := reviewFetchBody(t, c, uid)
		if err != nil {
			t.Fatalf("FETCH UID %d after the body was stored again: %v", uid, err)
		}
		if !bytes.Equal(got, raw) {
			t.Fatalf("FETCH UID %d: %d bytes, want the %d appended", uid, len(got), len(raw))
		}
	}
}
