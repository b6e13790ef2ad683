package imap

import (
	"github.com/postfach/postfach/internal/mail"
)

// Mailbox arguments (Mailbox, Reference, Patterns, ...) are returned as the
// client sent them: modified UTF-7 in IMAP4rev1 sessions, UTF-8 once
// UTF8=ACCEPT or IMAP4rev2 is enabled. The server turns them into
// postfach names with DecodeMailbox.

// Select is SELECT or EXAMINE (RFC 9051 §6.3.2, §6.3.3) with the select
// parameters of CONDSTORE and QRESYNC (RFC 7162 §3.1.8, §3.2.5). Name tells
// which: "EXAMINE" opens the mailbox read-only.
type Select struct {
	CommandBase
	Mailbox string
	// CondStore reports the CONDSTORE parameter.
	CondStore bool
	// QResync holds the QRESYNC parameter, or nil.
	QResync *QResync
}

// ReadOnly reports EXAMINE.
func (c *Select) ReadOnly() bool { return c.Name == "EXAMINE" }

// QResync is the QRESYNC select parameter (RFC 7162 §3.2.5).
type QResync struct {
	UIDValidity uint32
	ModSeq      mail.ModSeq
	// KnownUIDs is the client's known UIDs, or nil when absent.
	KnownUIDs mail.UIDSet
	// MatchSeqs and MatchUIDs are the sequence match data: message
	// numbers and the UIDs the client believes they have, pairwise in
	// ascending order; nil when absent.
	MatchSeqs mail.UIDSet
	MatchUIDs mail.UIDSet
}

// Create is CREATE (RFC 9051 §6.3.4) with the USE parameter of
// CREATE-SPECIAL-USE (RFC 6154 §3). A Mailbox ending in the separator
// ("owatagusiam/") declares the intent to create children: strip the "/"
// before DecodeMailbox.
type Create struct {
	CommandBase
	Mailbox string
	// SpecialUse holds the USE attributes, with known ones in canonical
	// spelling (`\Sent`); nil when absent.
	SpecialUse []string
}

// Delete is DELETE (RFC 9051 §6.3.5).
type Delete struct {
	CommandBase
	Mailbox string
}

// Subscribe is SUBSCRIBE (RFC 9051 §6.3.7).
type Subscribe struct {
	CommandBase
	Mailbox string
}

// Unsubscribe is UNSUBSCRIBE (RFC 9051 §6.3.8).
type Unsubscribe struct {
	CommandBase
	Mailbox string
}

// Rename is RENAME (RFC 9051 §6.3.6).
type Rename struct {
	CommandBase
	From, To string
}

// List is LIST (RFC 9051 §6.3.9) with the extensions of LIST-EXTENDED
// (RFC 5258), LIST-STATUS (RFC 5819) and SPECIAL-USE (RFC 6154).
// Reference and patterns may be empty and contain the wildcards "*" and
// "%": decode them with DecodeMUTF7 (IMAP4rev1 sessions), combine them
// with ListReference and match names with MatchList.
type List struct {
	CommandBase
	Reference string
	// Patterns holds one pattern, or several (RFC 5258 §3).
	Patterns []string
	Select   ListSelectOptions
	Return   ListReturnOptions
	// Extended reports LIST-EXTENDED syntax: selection options, return
	// options or a parenthesised pattern list (RFC 5258 §3).
	Extended bool
}

// ListSelectOptions are the LIST selection options (RFC 5258 §3.1,
// RFC 6154 §5.1).
type ListSelectOptions struct {
	Subscribed, Remote, RecursiveMatch, SpecialUse bool
}

// ListReturnOptions are the LIST return options (RFC 5258 §3.2, RFC 5819,
// RFC 6154 §5.2).
type ListReturnOptions struct {
	Subscribed, Children, SpecialUse bool
	// Status holds the items of RETURN (STATUS (...)), or 0.
	Status StatusItems
}

// Lsub is LSUB (RFC 3501 §6.3.9; IMAP4rev1 only).
type Lsub struct {
	CommandBase
	Reference, Pattern string
}

// Status is STATUS (RFC 9051 §6.3.11).
type Status struct {
	CommandBase
	Mailbox string
	Items   StatusItems
}

// StatusItems is a set of STATUS data items.
type StatusItems uint16

// STATUS data items.
const (
	StatusMessages       StatusItems = 1 << iota // RFC 9051
	StatusRecent                                 // RFC 3501 only
	StatusUIDNext                                // RFC 9051
	StatusUIDValidity                            // RFC 9051
	StatusUnseen                                 // RFC 9051
	StatusDeleted                                // RFC 9051, RFC 9208
	StatusSize                                   // RFC 8438, RFC 9051
	StatusHighestModSeq                          // RFC 7162
	StatusAppendLimit                            // RFC 7889
	StatusMailboxID                              // RFC 8474
	StatusDeletedStorage                         // RFC 9208
)

// statusItemNames are the item names in bit order.
var statusItemNames = [...]string{
	"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED",
	"SIZE", "HIGHESTMODSEQ", "APPENDLIMIT", "MAILBOXID", "DELETED-STORAGE",
}

// Has reports whether the set includes item.
func (s StatusItems) Has(item StatusItems) bool { return s&item != 0 }

// Names returns the item names of the set in a fixed order.
func (s StatusItems) Names() []string {
	var out []string
	for i, n := range statusItemNames {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// GetMetadata is GETMETADATA (RFC 5464 §4.2).
type GetMetadata struct {
	CommandBase
	// Mailbox is "" for server annotations.
	Mailbox string
	Entries []string
	// MaxSize is the MAXSIZE option, or -1.
	MaxSize int64
	// Depth is the DEPTH option: 0 (the default), 1, or
	// MetadataDepthInfinity.
	Depth int
}

// MetadataDepthInfinity is GETMETADATA (DEPTH infinity).
const MetadataDepthInfinity = -1

// SetMetadata is SETMETADATA (RFC 5464 §4.3).
type SetMetadata struct {
	CommandBase
	// Mailbox is "" for server annotations.
	Mailbox string
	Entries []MetadataEntry
}

// MetadataEntry is one entry of SETMETADATA.
type MetadataEntry struct {
	Name  string
	Value string
	// Nil reports NIL: remove the entry.
	Nil bool
}

// GetQuota is GETQUOTA (RFC 9208 §4.2).
type GetQuota struct {
	CommandBase
	Root string
}

// GetQuotaRoot is GETQUOTAROOT (RFC 9208 §4.3).
type GetQuotaRoot struct {
	CommandBase
	Mailbox string
}

// SetQuota is SETQUOTA (RFC 9208 §4.1).
type SetQuota struct {
	CommandBase
	Root   string
	Limits []QuotaLimit
}

// QuotaLimit is one resource limit of SETQUOTA.
type QuotaLimit struct {
	// Resource in upper case ("STORAGE", "MESSAGE").
	Resource string
	Limit    uint64
}

// mailboxArg consumes a mailbox (RFC 9051 §9: "INBOX" / astring).
func (r *Reader) mailboxArg() string {
	m := r.astring("mailbox name")
	if len(m) == 5 && equalFold([]byte(m), "INBOX") {
		return "INBOX"
	}
	return m
}

// parseSelect parses SELECT/EXAMINE SP mailbox [SP "(" select-param
// *(SP select-param) ")"] (RFC 4466 §2.1, RFC 7162 §7).
func parseSelect(r *Reader, _ bool) Command {
	c := &Select{}
	r.sp()
	c.Mailbox = r.mailboxArg()
	if !r.maybeSP() {
		return c
	}
	if r.listStart("select parameters") {
		return c
	}
	for {
		var buf [16]byte
		switch string(r.keyword(buf[:], "select parameter")) {
		case "CONDSTORE":
			c.CondStore = true
		case "QRESYNC":
			if c.QResync != nil {
				fail("QRESYNC given twice")
			}
			r.sp()
			c.QResync = r.qresync()
		default:
			fail("unknown select parameter")
		}
		if !r.listNext("select parameters") {
			return c
		}
	}
}

// qresync parses "(" uidvalidity SP mod-sequence-value [SP known-uids]
// [SP seq-match-data] ")" (RFC 7162 §7).
func (r *Reader) qresync() *QResync {
	q := &QResync{}
	r.expect('(', "( after QRESYNC")
	q.UIDValidity = r.nzNumber("UIDVALIDITY")
	r.sp()
	q.ModSeq = mail.ModSeq(r.number64("mod-sequence"))
	if q.ModSeq == 0 {
		fail("mod-sequence must not be zero")
	}
	if r.maybeSP() {
		if r.peek() != '(' {
			q.KnownUIDs = r.uidSetNoStar("known UIDs")
			if !r.maybeSP() {
				r.expect(')', ") after QRESYNC parameters")
				return q
			}
		}
		r.expect('(', "( before sequence match data")
		q.MatchSeqs = r.uidSetNoStar("known sequence set")
		r.sp()
		q.MatchUIDs = r.uidSetNoStar("known UID set")
		r.expect(')', ") after sequence match data")
		if q.MatchSeqs.Len() != q.MatchUIDs.Len() {
			fail("sequence match data of different sizes")
		}
	}
	r.expect(')', ") after QRESYNC parameters")
	return q
}

// specialUses are the RFC 6154 §2 attributes in canonical spelling.
var specialUses = [...]string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`}

// canonicalSpecialUse returns the canonical spelling of a known special-use
// attribute, or a unchanged.
func canonicalSpecialUse(a string) string {
	for _, s := range specialUses {
		if equalFold([]byte(a), upperStringS(s)) {
			return s
		}
	}
	return a
}

// upperStringS upper-cases an ASCII string.
func upperStringS(s string) string { return upperString([]byte(s)) }

// parseCreate parses CREATE SP mailbox [SP "(" create-param ... ")"]
// (RFC 4466 §2.2, RFC 6154 §3).
func parseCreate(r *Reader, _ bool) Command {
	c := &Create{}
	r.sp()
	c.Mailbox = r.mailboxArg()
	if !r.maybeSP() {
		return c
	}
	if r.listStart("create parameters") {
		return c
	}
	for {
		var buf [8]byte
		switch string(r.keyword(buf[:], "create parameter")) {
		case "USE":
			r.sp()
			c.SpecialUse = []string{}
			if !r.listStart("USE attributes") {
				for {
					c.SpecialUse = append(c.SpecialUse, canonicalSpecialUse(r.flag()))
					if !r.listNext("USE attributes") {
						break
					}
				}
			}
		default:
			fail("unknown create parameter")
		}
		if !r.listNext("create parameters") {
			return c
		}
	}
}

// parseMailboxCmd parses the commands whose only argument is a mailbox.
func parseMailboxCmd(r *Reader, _ bool) Command {
	r.sp()
	m := r.mailboxArg()
	switch r.cmdName {
	case "DELETE":
		return &Delete{Mailbox: m}
	case "SUBSCRIBE":
		return &Subscribe{Mailbox: m}
	case "UNSUBSCRIBE":
		return &Unsubscribe{Mailbox: m}
	default: // GETQUOTAROOT
		return &GetQuotaRoot{Mailbox: m}
	}
}

// parseRename parses RENAME SP mailbox SP mailbox.
func parseRename(r *Reader, _ bool) Command {
	c := &Rename{}
	r.sp()
	c.From = r.mailboxArg()
	r.sp()
	c.To = r.mailboxArg()
	return c
}

// parseList parses LIST [SP list-select-opts] SP mailbox SP mbox-or-pat
// [SP list-return-opts] (RFC 5258 §6, RFC 9051 §9).
func parseList(r *Reader, _ bool) Command {
	c := &List{}
	r.sp()
	if r.peek() == '(' {
		c.Extended = true
		if !r.listStart("selection options") {
			for {
				var buf [16]byte
				switch string(r.keyword(buf[:], "selection option")) {
				case "SUBSCRIBED":
					c.Select.Subscribed = true
				case "REMOTE":
					c.Select.Remote = true
				case "RECURSIVEMATCH":
					c.Select.RecursiveMatch = true
				case "SPECIAL-USE":
					c.Select.SpecialUse = true
				default:
					// RFC 5258 §3: unrecognised selection options
					// are an error.
					fail("unknown LIST selection option")
				}
				if !r.listNext("selection options") {
					break
				}
			}
		}
		if c.Select.RecursiveMatch && !c.Select.Subscribed && !c.Select.SpecialUse {
			// RFC 5258 §3.1: RECURSIVEMATCH needs a base option.
			fail("RECURSIVEMATCH requires another selection option")
		}
		r.sp()
	}
	c.Reference = r.mailboxArg()
	r.sp()
	if r.peek() == '(' {
		c.Extended = true
		r.pos++
		for {
			c.Patterns = append(c.Patterns, r.listMailbox())
			if !r.listNext("mailbox patterns") {
				break
			}
		}
	} else {
		c.Patterns = []string{r.listMailbox()}
	}
	if !r.maybeSP() {
		return c
	}
	var buf [8]byte
	if string(r.keyword(buf[:], "RETURN")) != "RETURN" {
		fail("expected RETURN")
	}
	c.Extended = true
	r.sp()
	if r.listStart("return options") {
		return c
	}
	for {
		var buf [16]byte
		switch string(r.keyword(buf[:], "return option")) {
		case "SUBSCRIBED":
			c.Return.Subscribed = true
		case "CHILDREN":
			c.Return.Children = true
		case "SPECIAL-USE":
			c.Return.SpecialUse = true
		case "STATUS":
			r.sp()
			c.Return.Status = r.statusItems()
		default:
			fail("unknown LIST return option")
		}
		if !r.listNext("return options") {
			return c
		}
	}
}

// parseLsub parses LSUB SP mailbox SP list-mailbox.
func parseLsub(r *Reader, _ bool) Command {
	c := &Lsub{}
	r.sp()
	c.Reference = r.mailboxArg()
	r.sp()
	c.Pattern = r.listMailbox()
	return c
}

// parseStatus parses STATUS SP mailbox SP "(" status-att *(SP status-att) ")".
func parseStatus(r *Reader, _ bool) Command {
	c := &Status{}
	r.sp()
	c.Mailbox = r.mailboxArg()
	r.sp()
	c.Items = r.statusItems()
	return c
}

// statusItems consumes "(" status-att *(SP status-att) ")".
func (r *Reader) statusItems() StatusItems {
	var items StatusItems
	if r.listStart("status items") {
		fail("empty status item list")
	}
	for {
		var buf [16]byte
		name := r.keyword(buf[:], "status item")
		found := false
		for i, n := range statusItemNames {
			if n == string(name) {
				items |= 1 << i
				found = true
				break
			}
		}
		if !found {
			fail("unknown status item")
		}
		if !r.listNext("status items") {
			return items
		}
	}
}

// parseGetMetadata parses GETMETADATA [SP getmetadata-options] SP mailbox
// SP entries (RFC 5464 §5).
func parseGetMetadata(r *Reader, _ bool) Command {
	c := &GetMetadata{MaxSize: -1}
	r.sp()
	if r.peek() == '(' {
		if !r.listStart("GETMETADATA options") {
			for {
				var buf [16]byte
				switch string(r.keyword(buf[:], "GETMETADATA option")) {
				case "MAXSIZE":
					r.sp()
					c.MaxSize = int64(r.number("MAXSIZE"))
				case "DEPTH":
					r.sp()
					var b2 [16]byte
					switch string(r.keyword(b2[:], "depth")) {
					case "0":
						c.Depth = 0
					case "1":
						c.Depth = 1
					case "INFINITY":
						c.Depth = MetadataDepthInfinity
					default:
						fail("invalid DEPTH")
					}
				default:
					fail("unknown GETMETADATA option")
				}
				if !r.listNext("GETMETADATA options") {
					break
				}
			}
		}
		r.sp()
	}
	c.Mailbox = r.mailboxArg()
	r.sp()
	if r.peek() == '(' {
		r.pos++
		for {
			c.Entries = append(c.Entries, r.metadataEntryName())
			if !r.listNext("entries") {
				break
			}
		}
	} else {
		c.Entries = []string{r.metadataEntryName()}
	}
	return c
}

// metadataEntryName consumes an entry name (RFC 5464 §5: an astring
// without "*" or "%").
func (r *Reader) metadataEntryName() string {
	e := r.astring("entry name")
	for i := 0; i < len(e); i++ {
		if e[i] == '*' || e[i] == '%' {
			fail("invalid entry name")
		}
	}
	return e
}

// parseSetMetadata parses SETMETADATA SP mailbox SP "(" entry SP value
// *(SP entry SP value) ")" (RFC 5464 §5).
func parseSetMetadata(r *Reader, _ bool) Command {
	c := &SetMetadata{}
	r.sp()
	c.Mailbox = r.mailboxArg()
	r.sp()
	if r.listStart("entry values") {
		fail("empty entry list")
	}
	for {
		var e MetadataEntry
		e.Name = r.metadataEntryName()
		r.sp()
		switch {
		case r.isNIL():
			r.pos += 3
			e.Nil = true
		case r.atLiteral():
			e.Value = r.literalString(true) // value = nstring / literal8
		default:
			e.Value = r.str("entry value")
		}
		c.Entries = append(c.Entries, e)
		if !r.listNext("entry values") {
			return c
		}
	}
}

// parseGetQuota parses GETQUOTA SP quota-root-name.
func parseGetQuota(r *Reader, _ bool) Command {
	c := &GetQuota{}
	r.sp()
	c.Root = r.astring("quota root")
	return c
}

// parseSetQuota parses SETQUOTA SP quota-root-name SP "(" [resource SP
// limit *(SP resource SP limit)] ")" (RFC 9208 §7).
func parseSetQuota(r *Reader, _ bool) Command {
	c := &SetQuota{}
	r.sp()
	c.Root = r.astring("quota root")
	r.sp()
	c.Limits = []QuotaLimit{}
	if r.listStart("quota limits") {
		return c
	}
	for {
		var l QuotaLimit
		l.Resource = upperString(r.atom("resource name"))
		r.sp()
		l.Limit = r.number64("resource limit")
		c.Limits = append(c.Limits, l)
		if !r.listNext("quota limits") {
			return c
		}
	}
}
