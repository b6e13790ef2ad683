package abuse

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/postfach/postfach/internal/config"
	"github.com/postfach/postfach/internal/testenv"
)

// TestMailboxLimit (issue 11, item 9: 88,000 mailboxes were created in
// 110 s): an account gets at most limits.mailboxes, counting the parent
// levels CREATE makes; past it CREATE, and a RENAME that would create
// levels, get NO [LIMIT] and create nothing. Two sessions creating at the
// same time do not pass the limit together.
func TestMailboxLimit(t *testing.T) {
	t.Parallel()
	if def := config.Default().Limits.Mailboxes; def != 5000 {
		t.Errorf("default limits.mailboxes = %d, want 5000", def)
	}
	const limit = 20
	env := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.Limits.Mailboxes = limit }})
	env.AddUser("alice@example.org", "secret password")
	c := opsIMAP(t, env, "alice@example.org", "secret password")
	// Six mailboxes come with the account.
	for i := range limit - 6 {
		if err := c.Create(fmt.Sprintf("f%d", i), nil).Wait(); err != nil {
			t.Fatalf("create f%d: %v", i, err)
		}
	}
	if err := c.Create("one-too-many", nil).Wait(); opsCode(err) != imap.ResponseCodeLimit {
		t.Fatalf("create past the limit: %v, want NO [LIMIT]", err)
	}
	if err := c.Delete("f0").Wait(); err != nil {
		t.Fatal(err)
	}
	// One slot: "p/q" needs two, and creates neither.
	if err := c.Create("p/q", nil).Wait(); opsCode(err) != imap.ResponseCodeLimit {
		t.Fatalf("create of two levels with room for one: %v, want NO [LIMIT]", err)
	}
	if err := c.Rename("f1", "new/sub/f1", nil).Wait(); opsCode(err) != imap.ResponseCodeLimit {
		t.Fatalf("rename that creates two levels with room for one: %v, want NO [LIMIT]", err)
	}
	names := opsMailboxes(t, c)
	for _, n := range []string{"p", "p/q", "new", "new/sub", "new/sub/f1"} {
		if slices.Contains(names, n) {
			t.Errorf("%s exists after a refused CREATE or RENAME: %q", n, names)
		}
	}
	if !slices.Contains(names, "f1") || len(names) != limit-1 {
		t.Fatalf("mailboxes after refusals: %q", names)
	}
	if err := c.Rename("f1", "g1", nil).Wait(); err != nil {
		t.Fatalf("a rename that creates nothing: %v", err)
	}
	if err := c.Create("last", nil).Wait(); err != nil {
		t.Fatalf("create of the last one: %v", err)
	}
	if n := len(opsMailboxes(t, c)); n != limit {
		t.Fatalf("%d mailboxes, want %d", n, limit)
	}

	// Two sessions of another account create at the same time.
	env.AddUser("bob@example.org", "secret password")
	var wg sync.WaitGroup
	for s := range 2 {
		bc := opsIMAP(t, env, "bob@example.org", "secret password")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range limit {
				err := bc.Create(fmt.Sprintf("s%d-%d", s, i), nil).Wait()
				if err != nil && opsCode(err) != imap.ResponseCodeLimit {
					t.Errorf("session %d: create: %v", s, err)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(opsMailboxes(t, opsIMAP(t, env, "bob@example.org", "secret password"))); n != limit {
		t.Fatalf("%d mailboxes after two concurrent sessions, want exactly %d", n, limit)
	}
}
