package imapserver

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/store"
)

// METADATA and METADATA-SERVER (RFC 5464): annotations of the server and
// of mailboxes, kept per account by the store.
//
// Both roots, /private and /shared, are supported. Mailboxes are never
// shared between accounts here, so a /shared entry is visible to the
// sessions of the account that set it, exactly like a /private one; the
// difference is only the name. Server annotations ("" as mailbox) are
// per account too, except the two the server provides itself:
// /shared/admin (a mailto: URL of Options.Postmaster, read-only) and, per
// mailbox, /private/specialuse (the RFC 6154 §4 view of the special-use
// attributes, which SETMETADATA changes like CREATE ... USE would).
//
// Entry names are case-insensitive (RFC 5464 §3.2): they are kept and
// answered in lower case.

// metadataMaxName bounds the length of an entry name.
const metadataMaxName = 1024

// Entries the server provides.
const (
	entryAdmin      = "/shared/admin"
	entrySpecialUse = "/private/specialuse"
)

// metadataName checks an entry name and returns it in lower case (RFC
// 5464 §3.2): it starts with /private or /shared, has no empty component
// and no trailing "/", no "*" or "%", no control or 8-bit characters, and
// vendor entries name a vendor and an entry below it. root allows the
// bare roots, which GETMETADATA may ask for with DEPTH.
func metadataName(name string, root bool) (string, error) {
	bad := bad("", "Invalid entry name")
	if len(name) < 2 || len(name) > metadataMaxName || name[0] != '/' || name[len(name)-1] == '/' {
		return "", bad
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == '*' || c == '%' || c == '/' && i > 0 && name[i-1] == '/' {
			return "", bad
		}
	}
	n := strings.ToLower(name)
	switch {
	case n == "/private" || n == "/shared":
		if !root {
			return "", bad
		}
	case strings.HasPrefix(n, "/private/"), strings.HasPrefix(n, "/shared/"):
	default:
		return "", bad
	}
	// RFC 5464 §3.2: /vendor/<vendor-token>/... (a bare vendor name is
	// not an entry).
	parts := strings.Split(n[1:], "/")
	if !root && len(parts) >= 2 && parts[1] == "vendor" && len(parts) < 4 {
		return "", bad
	}
	return n, nil
}

// metadataTarget resolves the mailbox argument of GETMETADATA and
// SETMETADATA: "" is the server (mailbox 0).
func (s *session) metadataTarget(raw string) (*store.Mailbox, error) {
	if raw == "" {
		return nil, nil
	}
	return s.lookupMailbox(raw, "")
}

// metadataEntries returns the annotations of a mailbox (or the server,
// mb nil), with the ones the server provides.
func (s *session) metadataEntries(mb *store.Mailbox) (map[string][]byte, error) {
	var id store.MailboxID
	if mb != nil {
		id = mb.ID
	}
	m, err := s.srv.opt.Store.Metadata(s.ctx, s.user.Account, id)
	if err != nil {
		return nil, err
	}
	if mb == nil {
		if pm := s.srv.opt.Postmaster; pm != "" {
			m[entryAdmin] = []byte("mailto:" + pm)
		}
	} else if len(mb.SpecialUse) > 0 {
		m[entrySpecialUse] = []byte(strings.Join(mb.SpecialUse, " "))
	}
	return m, nil
}

// cmdGetMetadata: GETMETADATA (RFC 5464 §4.2) with the MAXSIZE (§4.2.1)
// and DEPTH (§4.2.2) options.
func (s *session) cmdGetMetadata(cmd imap.Command) error {
	c := cmd.(*imap.GetMetadata)
	names := make([]string, 0, len(c.Entries))
	for _, e := range c.Entries {
		n, err := metadataName(e, true)
		if err != nil {
			return err
		}
		names = append(names, n)
	}
	mb, err := s.metadataTarget(c.Mailbox)
	if err != nil {
		return err
	}
	all, err := s.metadataEntries(mb)
	if err != nil {
		return err
	}
	var found []string
	longest := int64(-1)
	for name, value := range all {
		if !metadataWanted(name, names, c.Depth) {
			continue
		}
		if c.MaxSize >= 0 && int64(len(value)) > c.MaxSize {
			// RFC 5464 §4.2.1: left out, and the size of the largest
			// one left out goes in LONGENTRIES.
			longest = max(longest, int64(len(value)))
			continue
		}
		found = append(found, name)
	}
	if len(found) > 0 {
		slices.Sort(found)
		e := s.enc
		e.Untagged().Atom("METADATA")
		s.writeMetadataMailbox(mb)
		e.BeginList()
		for _, name := range found {
			e.AString(name)
			writeMetadataValue(e, all[name])
		}
		e.EndList().End()
	}
	if longest >= 0 {
		s.okCode = "METADATA LONGENTRIES " + strconv.FormatInt(longest, 10)
	}
	return nil
}

// metadataWanted reports whether an entry is asked for: one of names, or
// below one of them within depth (RFC 5464 §4.2.2: 1 means the children,
// infinity every descendant).
func metadataWanted(name string, names []string, depth int) bool {
	for _, n := range names {
		if name == n {
			return true
		}
		if depth == 0 || !strings.HasPrefix(name, n+"/") {
			continue
		}
		if depth == imap.MetadataDepthInfinity || !strings.Contains(name[len(n)+1:], "/") {
			return true
		}
	}
	return false
}

// writeMetadataMailbox writes the mailbox of a METADATA response: "" for
// the server.
func (s *session) writeMetadataMailbox(mb *store.Mailbox) {
	if mb == nil {
		s.enc.String("")
	} else {
		s.enc.Mailbox(mb.Name)
	}
}

// writeMetadataValue writes a value (RFC 5464 §5: nstring / literal8):
// a value with NUL can only be a literal8 (RFC 3516).
func writeMetadataValue(e *imap.Encoder, v []byte) {
	if slices.Contains(v, 0) {
		e.Literal8(int64(len(v)), strings.NewReader(string(v)))
		return
	}
	e.String(string(v))
}

// cmdSetMetadata: SETMETADATA (RFC 5464 §4.3). All entries are set or
// none; NIL removes one.
func (s *session) cmdSetMetadata(cmd imap.Command) error {
	c := cmd.(*imap.SetMetadata)
	mb, err := s.metadataTarget(c.Mailbox)
	if err != nil {
		return err
	}
	entries := make(map[string][]byte, len(c.Entries))
	var specialUse []string
	setSpecialUse := false
	for _, e := range c.Entries {
		name, err := metadataName(e.Name, false)
		if err != nil {
			return err
		}
		if len(e.Value) > s.srv.metaMaxValue {
			// RFC 5464 §4.3: MAXSIZE names the largest value accepted.
			return no("METADATA MAXSIZE "+strconv.Itoa(s.srv.metaMaxValue), "Annotation value too large")
		}
		switch {
		case mb == nil && name == entryAdmin:
			return no("NOPERM", "/shared/admin is set by the server")
		case mb != nil && name == entrySpecialUse:
			// RFC 6154 §4: the special-use attributes as an annotation.
			uses, err := parseSpecialUse(e.Value, e.Nil)
			if err != nil {
				return err
			}
			specialUse, setSpecialUse = uses, true
			continue
		}
		if e.Nil {
			entries[name] = nil
		} else {
			entries[name] = []byte(e.Value)
		}
	}
	st := s.srv.opt.Store
	if len(entries) > 0 {
		var id store.MailboxID
		if mb != nil {
			id = mb.ID
		}
		err := st.SetMetadata(s.ctx, s.user.Account, id, entries, s.srv.metaMaxEntries, s.srv.metaMaxBytes)
		if errors.Is(err, store.ErrOverQuota) {
			// RFC 5464 §4.3: TOOMANY when the annotations of the account
			// would exceed what the server keeps (in number or in
			// bytes).
			return no("METADATA TOOMANY", "Too many annotations for this account")
		}
		if err != nil {
			return err
		}
	}
	if setSpecialUse {
		return st.SetSpecialUse(s.ctx, s.user.Account, mb.ID, specialUse)
	}
	return nil
}

// parseSpecialUse parses a /private/specialuse value: special-use
// attributes separated by spaces; NIL or "" clears them.
func parseSpecialUse(v string, isNil bool) ([]string, error) {
	if isNil {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Fields(v) {
		u := canonicalSpecialUse(f)
		if u == "" {
			return nil, no("USEATTR", "Unsupported special-use attribute")
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// canonicalSpecialUse returns the RFC 6154 spelling of a special-use
// attribute given in any case, or "".
func canonicalSpecialUse(a string) string {
	for _, u := range []string{store.UseAll, store.UseArchive, store.UseDrafts, store.UseFlagged, store.UseJunk, store.UseSent, store.UseTrash} {
		if strings.EqualFold(a, u) {
			return u
		}
	}
	return ""
}
