package imap

import (
	"strings"

	"github.com/postfach/postfach/internal/mail"
)

// StoreOp says how STORE combines flags.
type StoreOp uint8

// STORE operations (RFC 9051 §6.4.6).
const (
	StoreReplace StoreOp = iota // FLAGS
	StoreAdd                    // +FLAGS
	StoreRemove                 // -FLAGS
)

// Store is STORE or UID STORE (RFC 9051 §6.4.6) with the UNCHANGEDSINCE
// modifier of CONDSTORE (RFC 7162 §3.1.3).
type Store struct {
	CommandBase
	Set SeqSet
	Op  StoreOp
	// Silent reports ".SILENT".
	Silent bool
	// Flags are the flags to set, add or remove: system flags in
	// canonical spelling. Unknown "\" flags (and `\Recent`) are passed
	// on for the server to refuse.
	Flags mail.Flags
	// HasUnchangedSince reports the UNCHANGEDSINCE modifier;
	// UnchangedSince is its value (0 is valid: RFC 7162 §3.1.3).
	HasUnchangedSince bool
	UnchangedSince    mail.ModSeq
}

// Copy is COPY or UID COPY (RFC 9051 §6.4.7).
type Copy struct {
	CommandBase
	Set     SeqSet
	Mailbox string
}

// Move is MOVE or UID MOVE (RFC 9051 §6.4.8, RFC 6851).
type Move struct {
	CommandBase
	Set     SeqSet
	Mailbox string
}

// SortKey is a SORT criterion (RFC 5256 §3, RFC 5957).
type SortKey uint8

// SORT keys.
const (
	SortArrival SortKey = iota + 1
	SortCc
	SortDate
	SortFrom
	SortSize
	SortSubject
	SortTo
	SortDisplayFrom // RFC 5957
	SortDisplayTo   // RFC 5957
)

var sortKeyNames = map[string]SortKey{
	"ARRIVAL": SortArrival, "CC": SortCc, "DATE": SortDate, "FROM": SortFrom,
	"SIZE": SortSize, "SUBJECT": SortSubject, "TO": SortTo,
	"DISPLAYFROM": SortDisplayFrom, "DISPLAYTO": SortDisplayTo,
}

// SortCriterion is one sort key, possibly reversed.
type SortCriterion struct {
	Key     SortKey
	Reverse bool
}

// Sort is SORT or UID SORT (RFC 5256 §3), with the RETURN options of ESORT
// (RFC 5267 §3).
type Sort struct {
	CommandBase
	// Return holds the RETURN options; Return.Given is false for the
	// plain SORT response.
	Return   SearchReturn
	Criteria []SortCriterion
	Charset  string
	Key      SearchKey
}

// Thread is THREAD or UID THREAD (RFC 5256 §3).
type Thread struct {
	CommandBase
	// Algorithm in upper case ("REFERENCES", "ORDEREDSUBJECT").
	Algorithm string
	Charset   string
	Key       SearchKey
}

// canonicalFlag returns the canonical spelling of a system flag or of
// `\Recent`, and f unchanged otherwise.
func canonicalFlag(f string) string {
	if strings.EqualFold(f, `\Recent`) {
		return `\Recent`
	}
	return mail.CanonicalFlag(f)
}

// flag consumes a flag: "\" atom or a keyword atom (RFC 9051 §9).
func (r *Reader) flag() string {
	if r.peek() == '\\' {
		r.pos++
		a := r.atom("flag name")
		return canonicalFlag(`\` + string(a))
	}
	return string(r.atom("flag"))
}

// flagList consumes "(" [flag *(SP flag)] ")"; nil for "()".
func (r *Reader) flagList() mail.Flags {
	if r.listStart("flag list") {
		return nil
	}
	var fl mail.Flags
	for {
		fl = fl.With(r.flag())
		if !r.listNext("flag list") {
			return fl
		}
	}
}

// parseStore parses STORE SP sequence-set [SP store-modifiers] SP
// store-att-flags (RFC 4466 §2.5, RFC 7162 §7).
func parseStore(r *Reader, _ bool) Command {
	c := &Store{}
	r.sp()
	c.Set = r.seqSet(true)
	r.sp()
	if r.peek() == '(' {
		r.pos++
		for {
			var buf [16]byte
			switch string(r.keyword(buf[:], "store modifier")) {
			case "UNCHANGEDSINCE":
				if c.HasUnchangedSince {
					fail("UNCHANGEDSINCE given twice")
				}
				r.sp()
				c.HasUnchangedSince = true
				c.UnchangedSince = mail.ModSeq(r.number64("mod-sequence"))
			default:
				fail("unknown store modifier")
			}
			if !r.listNext("store modifiers") {
				break
			}
		}
		r.sp()
	}
	var buf [16]byte
	switch string(r.keyword(buf[:], "FLAGS")) {
	case "FLAGS":
		c.Op = StoreReplace
	case "FLAGS.SILENT":
		c.Op, c.Silent = StoreReplace, true
	case "+FLAGS":
		c.Op = StoreAdd
	case "+FLAGS.SILENT":
		c.Op, c.Silent = StoreAdd, true
	case "-FLAGS":
		c.Op = StoreRemove
	case "-FLAGS.SILENT":
		c.Op, c.Silent = StoreRemove, true
	default:
		fail("expected FLAGS, +FLAGS or -FLAGS")
	}
	r.sp()
	if r.peek() == '(' {
		c.Flags = r.flagList()
	} else {
		for {
			c.Flags = c.Flags.With(r.flag())
			if !r.maybeSP() {
				break
			}
		}
	}
	return c
}

// parseCopyMove parses COPY/MOVE SP sequence-set SP mailbox.
func parseCopyMove(r *Reader, _ bool) Command {
	r.sp()
	set := r.seqSet(true)
	r.sp()
	mbox := r.mailboxArg()
	if r.cmdName == "MOVE" {
		return &Move{Set: set, Mailbox: mbox}
	}
	return &Copy{Set: set, Mailbox: mbox}
}

// parseSort parses SORT [search-return-opts] SP sort-criteria SP charset
// 1*(SP search-key) (RFC 5256 §5, RFC 5267 §5).
func parseSort(r *Reader, _ bool) Command {
	c := &Sort{}
	r.sp()
	if r.peekKeyword("RETURN") {
		c.Return = r.searchReturn()
		r.sp()
	}
	if r.listStart("sort criteria") {
		fail("empty sort criteria")
	}
	for {
		var sc SortCriterion
		var buf [16]byte
		k := r.keyword(buf[:], "sort key")
		if string(k) == "REVERSE" {
			sc.Reverse = true
			r.sp()
			k = r.keyword(buf[:], "sort key")
		}
		key, ok := sortKeyNames[string(k)]
		if !ok {
			fail("unknown sort key")
		}
		sc.Key = key
		c.Criteria = append(c.Criteria, sc)
		if !r.listNext("sort criteria") {
			break
		}
	}
	r.sp()
	c.Charset = upperString(r.charset())
	r.sp()
	c.Key = r.searchProgram()
	return c
}

// parseThread parses THREAD SP thread-alg SP search-criteria (RFC 5256 §5).
func parseThread(r *Reader, _ bool) Command {
	c := &Thread{}
	r.sp()
	c.Algorithm = upperString(r.atom("threading algorithm"))
	r.sp()
	c.Charset = upperString(r.charset())
	r.sp()
	c.Key = r.searchProgram()
	return c
}

// charset consumes charset = atom / quoted.
func (r *Reader) charset() []byte {
	if r.peek() == '"' {
		return []byte(r.quoted())
	}
	return r.atom("charset")
}

// peekKeyword reports whether the next token is the keyword kw (upper
// case), followed by a space, ")" or the end of the line.
func (r *Reader) peekKeyword(kw string) bool {
	end := r.pos + len(kw)
	if end > len(r.line) || !equalFold(r.line[r.pos:end], kw) {
		return false
	}
	return end == len(r.line) || r.line[end] == ' ' || r.line[end] == ')'
}
