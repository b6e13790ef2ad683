package abuse

import (
	"fmt"
	"strings"
	"testing"

	"github.com/postfach/postfach/internal/testenv"
)

// Found by the review of issue 11, item 6: a successful login cleared all
// of its client's failures, so a guesser with an account of its own (any
// user of the server, or one stolen password) logged into it after every
// few wrong guesses and was never slowed past the first delays nor
// blocked, guessing at another account without end. A success now
// forgives only the failures for the account it logged into (the owner's
// own typos).
func TestReviewGuesserWithItsOwnAccountIsBlocked(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, guardConfig(guardFastDelays))
	guardUser(t, env, "mallory@example.org", guardOwnerPW)
	guardUser(t, env, "bob@example.org", guardOwnerPW)
	const from = "127.0.0.31"
	limit := env.Config.Auth.IPBlockAfter
	failures := 0
	for round := 0; failures <= limit; round++ {
		c := guardIMAP(t, env, from)
		for i := range 4 {
			tag := fmt.Sprintf("g%d", i)
			l := guardLogin(c, tag, "bob@example.org", guardGuessPW)
			if strings.HasPrefix(l, tag+" NO [UNAVAILABLE]") {
				if failures < limit {
					t.Fatalf("refused after %d failures, before the limit of %d", failures, limit)
				}
				// Blocked: the owner of the other account still
				// gets in from an address of their own.
				guardOwnerIn(t, env, "127.0.0.32", "bob@example.org")
				return
			}
			if !strings.HasPrefix(l, tag+" NO [AUTHENTICATIONFAILED]") {
				t.Fatalf("guess: %q", l)
			}
			failures++
		}
		if l := guardLogin(c, "m", "mallory@example.org", guardOwnerPW); !strings.HasPrefix(l, "m OK ") {
			if strings.HasPrefix(l, "m NO [UNAVAILABLE]") && failures >= limit {
				return // blocked at the login into its own account
			}
			t.Fatalf("the guesser's own login after %d failures: %q", failures, l)
		}
		c.send("q LOGOUT")
		c.expectClosed()
	}
	t.Fatalf("%d wrong passwords for bob from %s, with a login of its own after every 4, and it is not blocked (limit %d)",
		failures, from, limit)
}

// TestReviewTyposForgivenBySuccess: the owner who mistypes a few times and
// then logs in starts afresh, as before.
func TestReviewTyposForgivenBySuccess(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, guardConfig(guardFastDelays))
	guardUser(t, env, "bob@example.org", guardOwnerPW)
	const from = "127.0.0.33"
	limit := env.Config.Auth.IPBlockAfter
	for round := 0; round*4 <= 2*limit; round++ {
		c := guardIMAP(t, env, from)
		for i := range 4 {
			tag := fmt.Sprintf("t%d", i)
			if l := guardLogin(c, tag, "bob@example.org", guardGuessPW); !strings.HasPrefix(l, tag+" NO [AUTHENTICATIONFAILED]") {
				t.Fatalf("round %d, typo %d: %q", round, i, l)
			}
		}
		if l := guardLogin(c, "o", "bob@example.org", guardOwnerPW); !strings.HasPrefix(l, "o OK ") {
			t.Fatalf("round %d: the owner after 4 typos: %q", round, l)
		}
		c.send("q LOGOUT")
		c.expectClosed()
	}
}
