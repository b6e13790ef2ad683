package abuse

import (
	"strconv"
	"strings"
	"testing"
)

// keywordsAppend appends a small message with flags to mailbox over c
// and returns the tagged response.
func keywordsAppend(c *harden2Conn, tag, mailbox, flags string) string {
	c.t.Helper()
	msg := "From: bob@example.net\r\nSubject: kw\r\n\r\nbody\r\n"
	return c.tagged(tag, "APPEND "+mailbox+" ("+flags+") {"+strconv.Itoa(len(msg))+"+}\r\n"+msg)
}

// keywordsList returns n distinct keywords starting at from, as a flag
// list's contents.
func keywordsList(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("kw" + strconv.Itoa(i))
	}
	return b.String()
}

// TestKeywordsLimit: a client cannot grow a mailbox's keywords without
// bound (every device would get them in FLAGS and in every FETCH). Up
// to 256 are taken; past that STORE and APPEND get NO [LIMIT], whether
// the mailbox is selected or not, PERMANENTFLAGS drops "\*", and the
// keywords already there can still be set and cleared.
func TestKeywordsLimit(t *testing.T) {
	t.Parallel()
	env := harden2Env(t, nil)
	c := harden2Dial(t, env, "imap")
	harden2IMAP(t, c)
	if l := keywordsAppend(c, "a1", "INBOX", `\Seen`); !strings.HasPrefix(l, "a1 OK") {
		t.Fatalf("APPEND: %q", l)
	}

	// One list longer than the limit.
	if l := c.tagged("s0", "STORE 1 +FLAGS.SILENT ("+keywordsList(0, 257)+")"); !strings.HasPrefix(l, "s0 NO [LIMIT]") {
		t.Fatalf("STORE of 257 keywords: %q", l)
	}
	// 256 in four steps are fine.
	for i := range 4 {
		tag := "s" + strconv.Itoa(i+1)
		if l := c.tagged(tag, "STORE 1 +FLAGS.SILENT ("+keywordsList(i*64, 64)+")"); !strings.HasPrefix(l, tag+" OK") {
			t.Fatalf("STORE of keywords %d..: %q", i*64, l)
		}
	}
	if l := c.tagged("s5", "STORE 1 +FLAGS.SILENT (kw256)"); !strings.HasPrefix(l, "s5 NO [LIMIT]") {
		t.Fatalf("STORE of the 257th keyword: %q", l)
	}
	if l := keywordsAppend(c, "a2", "INBOX", "kw999"); !strings.HasPrefix(l, "a2 NO [LIMIT]") {
		t.Fatalf("APPEND with a new keyword to the selected mailbox: %q", l)
	}
	// Known keywords still work, and removing is always allowed.
	for tag, cmd := range map[string]string{
		"k1": "STORE 1 -FLAGS.SILENT (kw0 kw1)",
		"k2": "STORE 1 +FLAGS.SILENT (kw0 KW1)",
		"k3": "STORE 1 FLAGS.SILENT (\\Seen kw5)",
	} {
		if l := c.tagged(tag, cmd); !strings.HasPrefix(l, tag+" OK") {
			t.Fatalf("%s: %q", cmd, l)
		}
	}
	if l := keywordsAppend(c, "a3", "INBOX", "kw7 \\Flagged"); !strings.HasPrefix(l, "a3 OK") {
		t.Fatalf("APPEND with a known keyword: %q", l)
	}

	// A second session, INBOX not selected: the store's keywords count.
	// The first session's view still announces all 256, so its FLAGS
	// keeps them; the mailbox now has kw5 and kw7 in use.
	d := harden2Dial(t, env, "imap")
	d.expect("* OK ")
	d.send(`a LOGIN alice@example.org "alice pw"`)
	d.expect("a OK ")
	if l := d.tagged("c", "CREATE Tags"); !strings.HasPrefix(l, "c OK") {
		t.Fatalf("CREATE: %q", l)
	}
	if l := keywordsAppend(d, "b1", "Tags", keywordsList(1000, 200)); !strings.HasPrefix(l, "b1 OK") {
		t.Fatalf("APPEND of 200 keywords to an unselected mailbox: %q", l)
	}
	if l := keywordsAppend(d, "b2", "Tags", keywordsList(1200, 100)); !strings.HasPrefix(l, "b2 NO [LIMIT]") {
		t.Fatalf("APPEND taking an unselected mailbox past the limit: %q", l)
	}
	if l := keywordsAppend(d, "b3", "Tags", keywordsList(1000, 100)); !strings.HasPrefix(l, "b3 OK") {
		t.Fatalf("APPEND of known keywords: %q", l)
	}
	if l := keywordsAppend(d, "b4", "Tags", keywordsList(1200, 56)); !strings.HasPrefix(l, "b4 OK") {
		t.Fatalf("APPEND up to the limit: %q", l)
	}

	// At the limit, SELECT offers no new keywords.
	d.write("s SELECT Tags\r\n")
	for {
		l := d.line()
		if strings.Contains(l, "PERMANENTFLAGS") {
			if strings.Contains(l, `\*`) {
				t.Errorf("PERMANENTFLAGS at the limit still allows new keywords: %.80q", l)
			}
		}
		if strings.HasPrefix(l, "s ") {
			if !strings.HasPrefix(l, "s OK") {
				t.Fatalf("SELECT: %q", l)
			}
			break
		}
	}
	if l := d.tagged("s2", "STORE 1 +FLAGS (other)"); !strings.HasPrefix(l, "s2 NO [LIMIT]") {
		t.Fatalf("STORE of a new keyword in a full mailbox: %q", l)
	}
	if l := c.tagged("n", "NOOP"); !strings.HasPrefix(l, "n OK") {
		t.Fatalf("NOOP: %q", l)
	}
}
