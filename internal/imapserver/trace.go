package imapserver

import (
	"context"
	"log/slog"

	"github.com/postfach/postfach/internal/imap"
)

// The protocol trace: at debug level, every command is logged by name
// ("imap command", cmd=UID FETCH), a FETCH with its data item names, and
// after a FETCH how many messages it returned and how many of them had
// message text in the response ("imap fetch", bodies=n; the interop tests
// count these to prove that a resync without changes downloads nothing).
// Arguments are never logged, so the passwords of LOGIN and AUTHENTICATE
// (and any other client data) cannot reach the log.

// tracing reports whether the protocol trace is on.
func (s *session) tracing() bool {
	return s.log.Enabled(context.Background(), slog.LevelDebug)
}

// trace logs a command before it runs.
func (s *session) trace(cmd imap.Command) {
	if !s.tracing() {
		return
	}
	b := cmd.Base()
	if f, ok := cmd.(*imap.Fetch); ok {
		s.log.Debug("imap command", "cmd", traceName(b), "items", fetchItemNames(f.Items))
		return
	}
	s.log.Debug("imap command", "cmd", traceName(b))
}

// traceFetch logs what a FETCH returned.
func (s *session) traceFetch(c *imap.Fetch, messages, bodies int) {
	if s.tracing() {
		s.log.Debug("imap fetch", "cmd", traceName(&c.CommandBase), "messages", messages, "bodies", bodies)
	}
}

func traceName(b *imap.CommandBase) string {
	if b.UID {
		return "UID " + b.Name
	}
	return b.Name
}

func fetchItemNames(items []imap.FetchItem) string {
	var buf []byte
	for i := range items {
		if i > 0 {
			buf = append(buf, ' ')
		}
		// As the client asked: BODY.PEEK[] is not BODY[] (which sets
		// \Seen), and a partial keeps its count.
		buf = items[i].AppendRequest(buf)
	}
	return string(buf)
}

// hasMessageText reports whether a FETCH returns message text (a whole
// message or part, or a body text), not only headers or metadata.
func hasMessageText(items []imap.FetchItem) bool {
	for i := range items {
		it := &items[i]
		switch it.Kind {
		case imap.FetchRFC822, imap.FetchRFC822Text, imap.FetchBinary:
			return true
		case imap.FetchBodySection:
			if it.Section.Text == imap.SectionAll || it.Section.Text == imap.SectionTextBody {
				return true
			}
		}
	}
	return false
}
