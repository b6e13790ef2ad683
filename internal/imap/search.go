package imap

import (
	"time"

	"github.com/postfach/postfach/internal/mail"
)

// Search is SEARCH or UID SEARCH (RFC 9051 §6.4.4) with the RETURN options
// of ESEARCH (RFC 4731), SEARCHRES (RFC 5182) and PARTIAL (RFC 9394).
type Search struct {
	CommandBase
	Return SearchReturn
	// Charset is the CHARSET argument in upper case, or "". String
	// arguments of Key are in this charset (RFC 9051 §6.4.4).
	Charset string
	// Key is the search program: several keys are one SearchAnd key.
	Key SearchKey
}

// SearchReturn holds the RETURN options of SEARCH and SORT.
type SearchReturn struct {
	// Given reports that RETURN was sent: the answer is an ESEARCH
	// response (RFC 4731 §3.1), even for "RETURN ()", which means ALL.
	Given                      bool
	Min, Max, All, Count, Save bool
	// Partial is the PARTIAL range (RFC 9394), or nil.
	Partial *PartialRange
	// Context is the CONTEXT hint (RFC 5267 §4.2): the client is likely
	// to search with these criteria again. Servers may ignore it.
	Context bool
	// Update asks the server to keep the result up to date with
	// unsolicited ESEARCH ADDTO and REMOVEFROM responses (RFC 5267
	// §4.3).
	Update bool
}

// HasResultOption reports whether a return option other than the
// CONTEXT hint was given: MIN, MAX, ALL, COUNT, SAVE, PARTIAL or UPDATE.
// Without one the ESEARCH response returns ALL (RFC 4731 §3.1: "RETURN
// ()" means ALL; CONTEXT is a hint a server may ignore, RFC 5267 §4.2,
// and ignoring it leaves the list empty). RETURN (UPDATE) alone returns
// no result data, only the updates that follow.
func (r SearchReturn) HasResultOption() bool {
	return r.Min || r.Max || r.All || r.Count || r.Save || r.Partial != nil || r.Update
}

// PartialRange is the range of PARTIAL (RFC 9394 §3): First:Last, both
// positive (counting from the first result) or both negative (counting
// from the last, -1 being the last).
type PartialRange struct {
	First, Last int64
}

// CancelUpdate is CANCELUPDATE (RFC 5267 §4.3.5): the client no longer
// wants updates of the search contexts created by the commands with
// these tags.
type CancelUpdate struct {
	CommandBase
	// Tags are the tags of the searching commands, as the client quoted
	// them; at least one.
	Tags []string
}

// parseCancelUpdate parses "CANCELUPDATE" 1*(SP quoted) (RFC 5267 §5).
func parseCancelUpdate(r *Reader, _ bool) Command {
	c := &CancelUpdate{}
	for {
		r.sp()
		if r.peek() != '"' {
			fail("expected a quoted tag")
		}
		c.Tags = append(c.Tags, r.quoted())
		if r.atEnd() {
			return c
		}
	}
}

// SearchOp is the kind of a search key.
type SearchOp uint8

// Search keys (RFC 9051 §6.4.4, RFC 3501, and extensions). Flag keys are
// normalised: SEEN, UNSEEN, KEYWORD and UNKEYWORD become SearchFlag and
// SearchNoFlag with the flag in Text (`\Seen`, or the keyword).
const (
	SearchAll               SearchOp = iota + 1
	SearchAnd                        // every key of Keys
	SearchOr                         // either of Keys[0], Keys[1]
	SearchNot                        // not Keys[0]
	SearchSeq                        // sequence set in Set
	SearchUID                        // UID set in Set
	SearchFlag                       // flag Text is set
	SearchNoFlag                     // flag Text is not set
	SearchRecent                     // RFC 3501 RECENT
	SearchNew                        // RFC 3501 NEW: RECENT UNSEEN
	SearchOld                        // RFC 3501 OLD: NOT RECENT
	SearchBcc                        // Text in Bcc
	SearchBody                       // Text in the body
	SearchCc                         // Text in Cc
	SearchFrom                       // Text in From
	SearchSubject                    // Text in Subject
	SearchText                       // Text in header or body
	SearchTo                         // Text in To
	SearchHeader                     // Text in header field Field
	SearchBefore                     // internal date before Date
	SearchOn                         // internal date on Date
	SearchSince                      // internal date on or after Date
	SearchSentBefore                 // Date header before Date
	SearchSentOn                     // Date header on Date
	SearchSentSince                  // Date header on or after Date
	SearchLarger                     // size > Number
	SearchSmaller                    // size < Number
	SearchModSeq                     // MODSEQ >= Number (RFC 7162 §3.1.5)
	SearchOlder                      // internal date older than Number seconds (RFC 5032)
	SearchYounger                    // internal date at most Number seconds old (RFC 5032)
	SearchSavedBefore                // save date before Date (RFC 8514)
	SearchSavedOn                    // save date on Date (RFC 8514)
	SearchSavedSince                 // save date on or after Date (RFC 8514)
	SearchSaveDateSupported          // RFC 8514 SAVEDATESUPPORTED
	SearchEmailID                    // EMAILID Text (RFC 8474)
	SearchThreadID                   // THREADID Text (RFC 8474)
)

// SearchKey is one node of a search program.
type SearchKey struct {
	Op SearchOp
	// Text is the string argument: the flag of SearchFlag/SearchNoFlag,
	// the text to find, an object ID, or the entry name of MODSEQ.
	// Strings are in the command's charset.
	Text string
	// Field is the header field name of HEADER, or the entry type
	// ("priv", "shared", "all") of MODSEQ.
	Field string
	// Date is the day of the date keys, at 00:00 UTC; the server
	// interprets it in its time zone (RFC 9051 §6.4.4).
	Date time.Time
	// Number is the argument of LARGER, SMALLER, MODSEQ, OLDER, YOUNGER.
	Number uint64
	// Set is the set of SearchSeq and SearchUID.
	Set SeqSet
	// Keys are the operands of SearchAnd, SearchOr and SearchNot.
	Keys []SearchKey
}

// flagKeys maps the flag search keys to their flag and sense.
var flagKeys = map[string]struct {
	flag string
	op   SearchOp
}{
	"ANSWERED": {mail.FlagAnswered, SearchFlag}, "UNANSWERED": {mail.FlagAnswered, SearchNoFlag},
	"DELETED": {mail.FlagDeleted, SearchFlag}, "UNDELETED": {mail.FlagDeleted, SearchNoFlag},
	"DRAFT": {mail.FlagDraft, SearchFlag}, "UNDRAFT": {mail.FlagDraft, SearchNoFlag},
	"FLAGGED": {mail.FlagFlagged, SearchFlag}, "UNFLAGGED": {mail.FlagFlagged, SearchNoFlag},
	"SEEN": {mail.FlagSeen, SearchFlag}, "UNSEEN": {mail.FlagSeen, SearchNoFlag},
}

// simpleKeys are the search keys without arguments (besides flags).
var simpleKeys = map[string]SearchOp{
	"ALL": SearchAll, "RECENT": SearchRecent, "NEW": SearchNew, "OLD": SearchOld,
	"SAVEDATESUPPORTED": SearchSaveDateSupported,
}

// stringKeys take one astring.
var stringKeys = map[string]SearchOp{
	"BCC": SearchBcc, "BODY": SearchBody, "CC": SearchCc, "FROM": SearchFrom,
	"SUBJECT": SearchSubject, "TEXT": SearchText, "TO": SearchTo,
}

// dateKeys take one date.
var dateKeys = map[string]SearchOp{
	"BEFORE": SearchBefore, "ON": SearchOn, "SINCE": SearchSince,
	"SENTBEFORE": SearchSentBefore, "SENTON": SearchSentOn, "SENTSINCE": SearchSentSince,
	"SAVEDBEFORE": SearchSavedBefore, "SAVEDON": SearchSavedOn, "SAVEDSINCE": SearchSavedSince,
}

// parseSearch parses SEARCH [search-return-opts] SP search-program
// (RFC 9051 §9, RFC 4466 §2.6).
func parseSearch(r *Reader, _ bool) Command {
	c := &Search{}
	r.sp()
	if r.peekKeyword("RETURN") {
		c.Return = r.searchReturn()
		r.sp()
	}
	if r.peekKeyword("CHARSET") {
		r.pos += len("CHARSET")
		r.sp()
		c.Charset = upperString(r.charset())
		r.sp()
	}
	c.Key = r.searchProgram()
	return c
}

// searchReturn consumes "RETURN" SP "(" [search-return-opt *(SP
// search-return-opt)] ")", with the options of RFC 4731, RFC 5182, RFC
// 5267 §5 (modifier-context, modifier-update, modifier-partial) and RFC
// 9394.
func (r *Reader) searchReturn() SearchReturn {
	ret := SearchReturn{Given: true}
	r.pos += len("RETURN")
	r.sp()
	if r.listStart("return options") {
		return ret
	}
	for {
		var buf [16]byte
		switch string(r.keyword(buf[:], "return option")) {
		case "MIN":
			ret.Min = true
		case "MAX":
			ret.Max = true
		case "ALL":
			ret.All = true
		case "COUNT":
			ret.Count = true
		case "SAVE":
			ret.Save = true
		case "CONTEXT":
			// RFC 5267 §4.2.
			ret.Context = true
		case "UPDATE":
			// RFC 5267 §4.3.
			ret.Update = true
		case "PARTIAL":
			r.sp()
			ret.Partial = r.partialRange()
		default:
			fail("unknown search return option")
		}
		if !r.listNext("return options") {
			return ret
		}
	}
}

// partialRange consumes nz-number ":" nz-number or "-" nz-number ":" "-"
// nz-number (RFC 9394 §3).
func (r *Reader) partialRange() *PartialRange {
	neg := r.peek() == '-'
	if neg {
		r.pos++
	}
	first := int64(r.nzNumber("partial range"))
	r.expect(':', ": in partial range")
	if neg {
		r.expect('-', "negative partial range")
	}
	last := int64(r.nzNumber("partial range"))
	if neg {
		first, last = -first, -last
	}
	if first > last {
		first, last = last, first
	}
	return &PartialRange{First: first, Last: last}
}

// searchProgram consumes search-key *(SP search-key).
func (r *Reader) searchProgram() SearchKey {
	k := r.searchKey()
	if !r.maybeSP() {
		return k
	}
	and := SearchKey{Op: SearchAnd, Keys: []SearchKey{k}}
	for {
		and.Keys = append(and.Keys, r.searchKey())
		if !r.maybeSP() {
			return and
		}
	}
}

// searchKey consumes one search-key.
func (r *Reader) searchKey() SearchKey {
	r.enter()
	defer r.leave()
	c := r.peek()
	switch {
	case c == '(':
		r.pos++
		and := SearchKey{Op: SearchAnd}
		for {
			and.Keys = append(and.Keys, r.searchKey())
			if !r.listNext("search key list") {
				break
			}
		}
		if len(and.Keys) == 1 {
			return and.Keys[0]
		}
		return and
	case c == '*' || c == '$' || c >= '0' && c <= '9':
		return SearchKey{Op: SearchSeq, Set: r.seqSet(true)}
	}
	var buf [24]byte
	name := r.keyword(buf[:], "search key")
	if f, ok := flagKeys[string(name)]; ok {
		return SearchKey{Op: f.op, Text: f.flag}
	}
	if op, ok := simpleKeys[string(name)]; ok {
		return SearchKey{Op: op}
	}
	if op, ok := stringKeys[string(name)]; ok {
		r.sp()
		return SearchKey{Op: op, Text: r.astring("search string")}
	}
	if op, ok := dateKeys[string(name)]; ok {
		r.sp()
		return SearchKey{Op: op, Date: r.searchDate()}
	}
	switch string(name) {
	case "KEYWORD", "UNKEYWORD":
		r.sp()
		k := SearchKey{Op: SearchFlag, Text: r.flag()}
		if name[0] == 'U' {
			k.Op = SearchNoFlag
		}
		return k
	case "HEADER":
		r.sp()
		k := SearchKey{Op: SearchHeader}
		k.Field = r.astring("header field name")
		if !validFieldName(k.Field) {
			fail("invalid header field name")
		}
		r.sp()
		k.Text = r.astring("search string")
		return k
	case "LARGER", "SMALLER":
		r.sp()
		k := SearchKey{Op: SearchLarger, Number: r.number64("size")}
		if name[0] == 'S' {
			k.Op = SearchSmaller
		}
		return k
	case "OLDER", "YOUNGER":
		r.sp()
		k := SearchKey{Op: SearchOlder, Number: uint64(r.nzNumber("interval"))}
		if name[0] == 'Y' {
			k.Op = SearchYounger
		}
		return k
	case "UID":
		r.sp()
		return SearchKey{Op: SearchUID, Set: r.seqSet(true)}
	case "NOT":
		r.sp()
		return SearchKey{Op: SearchNot, Keys: []SearchKey{r.searchKey()}}
	case "OR":
		r.sp()
		a := r.searchKey()
		r.sp()
		b := r.searchKey()
		return SearchKey{Op: SearchOr, Keys: []SearchKey{a, b}}
	case "MODSEQ":
		// RFC 7162 §3.1.5: "MODSEQ" [SP entry-name SP entry-type-req]
		// SP mod-sequence-valzer.
		r.sp()
		k := SearchKey{Op: SearchModSeq}
		if r.peek() == '"' || r.atLiteral() {
			k.Text = r.str("entry name")
			r.sp()
			var b2 [8]byte
			switch t := string(r.keyword(b2[:], "entry type")); t {
			case "PRIV", "SHARED", "ALL":
				k.Field = map[string]string{"PRIV": "priv", "SHARED": "shared", "ALL": "all"}[t]
			default:
				fail("invalid entry type")
			}
			r.sp()
		}
		k.Number = r.number64("mod-sequence")
		return k
	case "EMAILID", "THREADID":
		r.sp()
		k := SearchKey{Op: SearchEmailID, Text: r.objectID()}
		if name[0] == 'T' {
			k.Op = SearchThreadID
		}
		return k
	}
	fail("unknown search key")
	return SearchKey{}
}

// objectID consumes objectid = 1*255(ALPHA / DIGIT / "_" / "-") (RFC 8474
// §7).
func (r *Reader) objectID() string {
	start := r.pos
	for r.pos < len(r.line) {
		c := r.line[r.pos]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			break
		}
		r.pos++
	}
	if n := r.pos - start; n == 0 || n > 255 {
		fail("invalid object id")
	}
	return string(r.line[start:r.pos])
}
