package imapserver

import "github.com/postfach/postfach/internal/imap"

// searchCapabilities lists the search-related capabilities; empty until
// the evaluator is wired in.
const searchCapabilities = ""

// cmdSearch: SEARCH and UID SEARCH (RFC 9051 §6.4.4).
func (s *session) cmdSearch(cmd imap.Command) error {
	return bad("", "SEARCH not available yet")
}

// cmdSort: SORT (RFC 5256).
func (s *session) cmdSort(cmd imap.Command) error {
	return bad("", "SORT not available yet")
}

// cmdThread: THREAD (RFC 5256).
func (s *session) cmdThread(cmd imap.Command) error {
	return bad("", "THREAD not available yet")
}
