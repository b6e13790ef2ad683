package imapserver

import "github.com/postfach/postfach/internal/imap"

// What IMAP4rev2 removed (RFC 9051 Appendix E): the \Recent flag is gone
// from a session that enabled IMAP4rev2 (RFC 9051 §2.3.2), and with it
// the RECENT response of SELECT and of new mail (select.go,
// announceAdded), the STATUS item RECENT (§6.3.11 lists MESSAGES,
// UIDNEXT, UIDVALIDITY, UNSEEN, DELETED and SIZE) and the search keys
// RECENT, NEW and OLD (§6.4.4). In such a session they are not part of
// the grammar (§9), so a command that uses them gets BAD with the reason;
// answering it as IMAP4rev1 would would give numbers that mean nothing
// there (no message is \Recent for the session). A session that did not
// enable IMAP4rev2 keeps all of them (RFC 3501).

// rev2StatusItems refuses the STATUS items IMAP4rev2 removed, in STATUS
// and in LIST's RETURN (STATUS ...) (RFC 5819).
func (s *session) rev2StatusItems(items imap.StatusItems) error {
	if s.rev2 && items.Has(imap.StatusRecent) {
		return bad("CLIENTBUG", "RECENT is not a STATUS item in IMAP4rev2 (RFC 9051 section 6.3.11)")
	}
	return nil
}

// rev2SearchKeys refuses the search keys IMAP4rev2 removed, in SEARCH,
// SORT, THREAD and their contexts.
func (s *session) rev2SearchKeys(key *imap.SearchKey) error {
	if !s.rev2 || !usesRecent(key) {
		return nil
	}
	return bad("CLIENTBUG", "RECENT, NEW and OLD are not search keys in IMAP4rev2 (RFC 9051 appendix E)")
}

// usesRecent reports whether a search program has a key about \Recent.
func usesRecent(key *imap.SearchKey) bool {
	switch key.Op {
	case imap.SearchRecent, imap.SearchNew, imap.SearchOld:
		return true
	case imap.SearchFlag, imap.SearchNoFlag:
		if key.Text == `\Recent` {
			return true
		}
	}
	for i := range key.Keys {
		if usesRecent(&key.Keys[i]) {
			return true
		}
	}
	return false
}
