package bench

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Kinds of consistency violation the Checker detects. Each names a rule a
// server breaks, whatever other sessions do to the mailbox at the same
// time.
const (
	// VFetchBeyondExists: "* n FETCH" with n = 0 or n greater than the
	// messages the session was told of (RFC 9051 §2.3.1.2: sequence
	// numbers run from 1 to the number of messages; §7.4.1 EXISTS).
	VFetchBeyondExists = "fetch-beyond-exists"
	// VFetchExpunged: a FETCH carries the UID of a message whose EXPUNGE
	// (or VANISHED) the session already received (RFC 9051 §7.5.1: the
	// message is gone from the session's view; §2.3.1.1: UIDs are not
	// reused).
	VFetchExpunged = "fetch-expunged-uid"
	// VUIDChanged: a FETCH gives sequence number n a UID other than the
	// one it had, with no EXPUNGE in between (RFC 9051 §2.3.1.2). A lower
	// UID for the same number is the typical case.
	VUIDChanged = "uid-changed"
	// VUIDOrder: UIDs do not ascend with sequence numbers (RFC 9051
	// §2.3.1.1: "strictly ascending").
	VUIDOrder = "uid-order"
	// VKeywordNotAnnounced: a keyword in FETCH FLAGS that the last "*
	// FLAGS" response did not list (RFC 3501 §7.2.6, RFC 9051 §7.3.5:
	// the client records the mailbox's flags from FLAGS). PERMANENTFLAGS
	// with \* allows new keywords but announces none.
	VKeywordNotAnnounced = "keyword-not-in-flags"
	// VExistsBackwards: an EXISTS smaller than the messages in the
	// session's view; only EXPUNGE may reduce it (RFC 3501 §7.4.1, RFC
	// 9051 §7.5.1).
	VExistsBackwards = "exists-backwards"
	// VExpungeBeyondExists: "* n EXPUNGE" for a number not in the view.
	VExpungeBeyondExists = "expunge-beyond-exists"
	// VExpungeDuringSeqCommand: an EXPUNGE while the server answers
	// FETCH, STORE or SEARCH by sequence number (RFC 3501 §7.4.1, RFC
	// 9051 §7.5.1); the UID forms may carry one.
	VExpungeDuringSeqCommand = "expunge-during-seq-command"
	// VSearchBeyondExists: SEARCH, SORT or THREAD by sequence number
	// answers a number outside the view.
	VSearchBeyondExists = "search-beyond-exists"
	// VSearchExpunged: UID SEARCH, SORT or THREAD answers the UID of a
	// message whose EXPUNGE the session already received.
	VSearchExpunged = "search-expunged-uid"
	// VVanishedWithoutQResync: a VANISHED response to a session that did
	// not enable QRESYNC (RFC 7162 §3.2.10).
	VVanishedWithoutQResync = "vanished-without-qresync"
)

// ringSize is the number of protocol lines a Checker keeps for the
// transcript of an example.
const ringSize = 24

// ringLine bounds each kept line.
const ringLine = 240

// CheckReport is what one or more Checkers found.
type CheckReport struct {
	// Responses counts the untagged responses checked.
	Responses int64 `json:"responses"`
	// Violations counts consistency violations by kind (the V*
	// constants).
	Violations map[string]int64 `json:"violations,omitempty"`
	// Refusals counts tagged NO and BAD answers by command, result and
	// reason ("UID STORE NO [EXPUNGEISSUED]").
	Refusals map[string]int64 `json:"refusals,omitempty"`
	// Examples are transcripts that led to a violation or refusal.
	Examples []CheckExample `json:"examples,omitempty"`
}

// CheckExample is one violation or refusal with the protocol lines before
// it ("C: " sent, "S: " received; literal contents are not kept).
type CheckExample struct {
	Kind       string   `json:"kind"`
	Session    string   `json:"session"`
	Detail     string   `json:"detail"`
	Transcript []string `json:"transcript"`
}

// ViolationCount returns the number of violations of every kind.
func (r *CheckReport) ViolationCount() int64 {
	var n int64
	for _, v := range r.Violations {
		n += v
	}
	return n
}

// RefusalCount returns the number of tagged NO and BAD answers.
func (r *CheckReport) RefusalCount() int64 {
	var n int64
	for _, v := range r.Refusals {
		n += v
	}
	return n
}

// Merge adds o to r, keeping at most perKind examples of each kind.
func (r *CheckReport) Merge(o *CheckReport, perKind int) {
	r.Responses += o.Responses
	for k, v := range o.Violations {
		if r.Violations == nil {
			r.Violations = map[string]int64{}
		}
		r.Violations[k] += v
	}
	for k, v := range o.Refusals {
		if r.Refusals == nil {
			r.Refusals = map[string]int64{}
		}
		r.Refusals[k] += v
	}
	have := map[string]int{}
	for _, e := range r.Examples {
		have[e.Kind]++
	}
	for _, e := range o.Examples {
		if have[e.Kind] < perKind {
			r.Examples = append(r.Examples, e)
			have[e.Kind]++
		}
	}
}

// Write prints the counts and the examples for a human.
func (r *CheckReport) Write(w io.Writer) {
	fmt.Fprintf(w, "   consistency: %d untagged responses checked, %d violations, %d refused\n",
		r.Responses, r.ViolationCount(), r.RefusalCount())
	for _, k := range slices.Sorted(maps.Keys(r.Violations)) {
		fmt.Fprintf(w, "     violation %s: %d\n", k, r.Violations[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.Refusals)) {
		fmt.Fprintf(w, "     refused %s: %d\n", k, r.Refusals[k])
	}
	for _, e := range r.Examples {
		fmt.Fprintf(w, "   example %s (%s): %s\n", e.Kind, e.Session, e.Detail)
		for _, l := range e.Transcript {
			fmt.Fprintf(w, "     %s\n", l)
		}
	}
}

// Checker follows one IMAP session's view of its selected mailbox from
// the responses the server sends (EXISTS, EXPUNGE, VANISHED, FETCH, FLAGS,
// SEARCH, SORT, THREAD) and counts every response that contradicts that
// view (the V* kinds) and every tagged NO or BAD. The session feeds it
// each command it sends (Command), each untagged response (Untagged) and
// each tagged result (Tagged), in the order they happen. It keeps the last
// lines of the conversation so that a violation comes with a transcript.
//
// The view is a list of UIDs by sequence number, 0 where the session has
// not learnt the UID yet; the checks that need a UID are skipped there.
// Not safe for concurrent use: one Checker per session.
type Checker struct {
	// Session names the session in examples.
	Session string
	// QResync is set when the session enabled QRESYNC, which allows
	// VANISHED responses (RFC 7162 §3.2.10).
	QResync bool
	// MaxExamples bounds the examples kept per kind; 0 means 1.
	MaxExamples int

	count    uint32
	uids     []uint32
	expunged map[uint32]struct{}
	// keywords holds the lower-cased keywords of the last FLAGS response.
	keywords  map[string]struct{}
	lastFlags string
	// lost is set when the view can no longer be followed exactly (a
	// VANISHED response naming UIDs the session never learnt); the
	// checks that depend on sequence numbers then wait for the next
	// SELECT.
	lost bool
	// cmd is the command in progress ("UID FETCH"), "" between commands.
	cmd string
	// noExpunge: the command in progress is FETCH, STORE or SEARCH by
	// sequence number.
	noExpunge bool
	report    CheckReport
	examples  map[string]int
	ring      [ringSize][]byte
	ringNext  int
	ringLen   int
	lower     []byte
}

// Report returns what the checker found so far. The report stays owned by
// the checker: merge it into another before feeding the checker more.
func (c *Checker) Report() *CheckReport { return &c.report }

// Count returns the number of messages in the session's view.
func (c *Checker) Count() uint32 { return c.count }

// UID returns the UID of sequence number seq, 0 when not known.
func (c *Checker) UID(seq uint32) uint32 {
	if seq == 0 || seq > uint32(len(c.uids)) {
		return 0
	}
	return c.uids[seq-1]
}

// Keywords returns the number of keywords the last FLAGS response listed.
func (c *Checker) Keywords() int { return len(c.keywords) }

// keep records one line of the conversation.
func (c *Checker) keep(prefix string, parts ...[]byte) {
	b := append(c.ring[c.ringNext][:0], prefix...)
	for _, p := range parts {
		b = append(b, p...)
	}
	if len(b) > ringLine {
		b = append(b[:ringLine], "..."...)
	}
	c.ring[c.ringNext] = b
	c.ringNext = (c.ringNext + 1) % ringSize
	c.ringLen = min(c.ringLen+1, ringSize)
}

func (c *Checker) transcript() []string {
	out := make([]string, 0, c.ringLen)
	for i := range c.ringLen {
		out = append(out, string(c.ring[(c.ringNext-c.ringLen+i+ringSize)%ringSize]))
	}
	return out
}

func (c *Checker) example(kind, detail string) {
	if c.examples == nil {
		c.examples = map[string]int{}
	}
	if c.examples[kind] >= max(c.MaxExamples, 1) {
		return
	}
	c.examples[kind]++
	c.report.Examples = append(c.report.Examples, CheckExample{Kind: kind, Session: c.Session, Detail: detail, Transcript: c.transcript()})
}

func (c *Checker) violation(kind, format string, args ...any) {
	if c.report.Violations == nil {
		c.report.Violations = map[string]int64{}
	}
	c.report.Violations[kind]++
	c.example(kind, fmt.Sprintf(format, args...))
}

// Command notes a command the session sends: tag and the command line
// without the tag (for APPEND without the literal).
func (c *Checker) Command(tag, line string) {
	c.keep("C: ", []byte(tag), []byte(" "), []byte(line))
	name, rest, _ := strings.Cut(line, " ")
	name = strings.ToUpper(name)
	if name == "UID" {
		sub, _, _ := strings.Cut(rest, " ")
		name += " " + strings.ToUpper(sub)
	}
	c.cmd = name
	// RFC 3501 §7.4.1, RFC 9051 §7.5.1.
	c.noExpunge = name == "FETCH" || name == "STORE" || name == "SEARCH"
	if name == "SELECT" || name == "EXAMINE" {
		c.reset()
	}
}

// reset empties the view for a new SELECT.
func (c *Checker) reset() {
	c.count = 0
	c.uids = c.uids[:0]
	clear(c.expunged)
	clear(c.keywords)
	c.lastFlags = ""
	c.lost = false
}

// Tagged notes the tagged result of the command in progress; NO and BAD
// are counted by command and reason.
func (c *Checker) Tagged(tag string, st Status, text []byte) {
	c.keep("S: ", []byte(tag), []byte(" "), []byte(st), []byte(" "), text)
	if st != OK {
		key := c.cmd + " " + string(st) + " " + refusalReason(text)
		if c.report.Refusals == nil {
			c.report.Refusals = map[string]int64{}
		}
		c.report.Refusals[key]++
		c.example("refused "+key, string(text))
	}
	c.cmd = ""
	c.noExpunge = false
}

// refusalReason is the response code of a NO or BAD ("[EXPUNGEISSUED]"),
// or the start of its text.
func refusalReason(text []byte) string {
	text = bytes.TrimSpace(text)
	if len(text) > 0 && text[0] == '[' {
		end := bytes.IndexAny(text, " ]")
		if end > 0 {
			return string(text[:end]) + "]"
		}
	}
	if len(text) > 48 {
		text = text[:48]
	}
	return string(text)
}

// Untagged checks one untagged response ("* ..."), literal contents
// removed as IMAPClient delivers them.
func (c *Checker) Untagged(line []byte) {
	c.keep("S: ", line)
	if !bytes.HasPrefix(line, []byte("* ")) {
		return
	}
	c.report.Responses++
	if n, word, ok := untaggedNum(line); ok {
		rest := line[2:]
		rest = rest[bytes.IndexByte(rest, ' ')+1:]
		switch strings.ToUpper(string(word)) {
		case "EXISTS":
			c.exists(n)
		case "EXPUNGE":
			c.expunge(n)
		case "FETCH":
			c.fetch(n, rest[len(word):])
		}
		return
	}
	word, rest, _ := bytes.Cut(line[2:], []byte(" "))
	switch strings.ToUpper(string(word)) {
	case "FLAGS":
		c.flags(line, rest)
	case "SEARCH", "SORT":
		// "* SEARCH 2 5 (MODSEQ 9)": the numbers before any list.
		if i := bytes.IndexByte(rest, '('); i >= 0 {
			rest = rest[:i]
		}
		c.results(rest)
	case "THREAD":
		c.results(rest)
	case "VANISHED":
		c.vanished(rest)
	}
}

func (c *Checker) exists(n uint32) {
	if n < c.count {
		if !c.lost {
			c.violation(VExistsBackwards, "EXISTS %d while the view holds %d messages and no EXPUNGE came between", n, c.count)
		}
		c.uids = c.uids[:n]
	}
	c.count = n
	if n > maxView {
		// Not followed UID by UID: a bound on the checker's memory.
		c.lost = true
		c.uids = c.uids[:0]
		return
	}
	for uint32(len(c.uids)) < n {
		c.uids = append(c.uids, 0)
	}
}

// maxView is the largest mailbox whose UIDs a Checker follows.
const maxView = 1 << 20

func (c *Checker) expunge(n uint32) {
	if n == 0 || n > c.count {
		if c.lost {
			return
		}
		c.violation(VExpungeBeyondExists, "EXPUNGE %d with %d messages in the view", n, c.count)
		return
	}
	if c.noExpunge {
		c.violation(VExpungeDuringSeqCommand, "EXPUNGE %d while answering %s", n, c.cmd)
	}
	if int(n) <= len(c.uids) {
		if uid := c.uids[n-1]; uid != 0 {
			c.addExpunged(uid)
		}
		c.uids = slices.Delete(c.uids, int(n-1), int(n))
	}
	c.count--
}

func (c *Checker) addExpunged(uid uint32) {
	if c.expunged == nil {
		c.expunged = map[uint32]struct{}{}
	}
	c.expunged[uid] = struct{}{}
}

func (c *Checker) fetch(n uint32, items []byte) {
	var fi fetchItems
	scanFetch(items, &fi)
	if fi.hasFlags {
		for _, f := range fi.flags {
			if len(f) == 0 || f[0] == '\\' {
				continue // system flags need no announcement
			}
			if _, ok := c.keywords[string(c.lowerCase(f))]; !ok {
				c.violation(VKeywordNotAnnounced, "keyword %s in FETCH; last FLAGS: %s", f, c.lastFlagsText())
				break
			}
		}
	}
	if c.lost {
		return
	}
	if n == 0 || n > c.count {
		c.violation(VFetchBeyondExists, "FETCH %d with %d messages in the view", n, c.count)
		return
	}
	if !fi.hasUID {
		return
	}
	uid := fi.uid
	if _, gone := c.expunged[uid]; gone {
		// Not also a changed UID: one fault, counted once.
		c.violation(VFetchExpunged, "FETCH %d carries UID %d, expunged earlier in this session", n, uid)
		return
	}
	switch cur := c.uids[n-1]; {
	case cur == uid:
	case cur != 0:
		c.violation(VUIDChanged, "sequence number %d had UID %d, now UID %d, with no EXPUNGE between", n, cur, uid)
		c.uids[n-1] = uid
	default:
		if n >= 2 && c.uids[n-2] != 0 && c.uids[n-2] >= uid {
			c.violation(VUIDOrder, "UID %d at %d follows UID %d at %d", uid, n, c.uids[n-2], n-1)
		} else if n < c.count && c.uids[n] != 0 && c.uids[n] <= uid {
			c.violation(VUIDOrder, "UID %d at %d precedes UID %d at %d", uid, n, c.uids[n], n+1)
		}
		c.uids[n-1] = uid
	}
}

func (c *Checker) lastFlagsText() string {
	if c.lastFlags == "" {
		return "(none since SELECT)"
	}
	return c.lastFlags
}

// lowerCase returns an ASCII lower-case copy of b in a reused buffer:
// flags compare case-insensitively.
func (c *Checker) lowerCase(b []byte) []byte {
	c.lower = c.lower[:0]
	for _, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		c.lower = append(c.lower, ch)
	}
	return c.lower
}

// flags records the keywords of "* FLAGS (...)" (RFC 9051 §7.3.5).
func (c *Checker) flags(line, rest []byte) {
	if c.keywords == nil {
		c.keywords = map[string]struct{}{}
	}
	clear(c.keywords)
	c.lastFlags = string(line)
	if len(c.lastFlags) > ringLine {
		c.lastFlags = c.lastFlags[:ringLine] + "..."
	}
	list := bytes.Trim(bytes.TrimSpace(rest), "()")
	for _, f := range bytes.Fields(list) {
		if f[0] != '\\' {
			c.keywords[string(c.lowerCase(f))] = struct{}{}
		}
	}
}

// results checks the numbers of a SEARCH, SORT or THREAD response
// against the view: sequence numbers must be in it, UIDs must not have
// been expunged.
func (c *Checker) results(b []byte) {
	uidForm := strings.HasPrefix(c.cmd, "UID ")
	switch strings.TrimPrefix(c.cmd, "UID ") {
	case "SEARCH", "SORT", "THREAD":
	default:
		return // unsolicited, or a command whose answer is not checked
	}
	for i := 0; i < len(b); {
		if b[i] < '0' || b[i] > '9' {
			i++
			continue
		}
		n, ok := parseUint32(b[i:])
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if !ok {
			continue
		}
		if uidForm {
			if _, gone := c.expunged[n]; gone {
				c.violation(VSearchExpunged, "%s answers UID %d, expunged earlier in this session", c.cmd, n)
				return
			}
		} else if !c.lost && (n == 0 || n > c.count) {
			c.violation(VSearchBeyondExists, "%s answers %d with %d messages in the view", c.cmd, n, c.count)
			return
		}
	}
}

// vanished applies "* VANISHED [(EARLIER)] uid-set" (RFC 7162 §3.2.10).
func (c *Checker) vanished(rest []byte) {
	if !c.QResync {
		c.violation(VVanishedWithoutQResync, "VANISHED without ENABLE QRESYNC")
	}
	rest = bytes.TrimSpace(rest)
	if len(rest) > 0 && rest[0] == '(' {
		return // EARLIER: UIDs expunged before, the view is unchanged
	}
	ranges, ok := parseUIDSet(rest)
	if !ok {
		return
	}
	in := func(u uint32) bool {
		for _, r := range ranges {
			if r[0] <= u && u <= r[1] {
				return true
			}
		}
		return false
	}
	kept := c.uids[:0]
	for _, u := range c.uids {
		switch {
		case u == 0:
			// Not known: whether it vanished cannot be told.
			c.lost = true
			kept = append(kept, u)
		case in(u):
			c.addExpunged(u)
		default:
			kept = append(kept, u)
		}
	}
	c.uids = kept
	c.count = uint32(len(kept))
}

// parseUIDSet parses "1:3,7,9:8" into ordered ranges.
func parseUIDSet(b []byte) ([][2]uint32, bool) {
	var out [][2]uint32
	for _, part := range bytes.Split(b, []byte(",")) {
		lo, hi, isRange := bytes.Cut(part, []byte(":"))
		a, ok := parseUint32(lo)
		if !ok || len(lo) == 0 {
			return nil, false
		}
		z := a
		if isRange {
			if z, ok = parseUint32(hi); !ok {
				return nil, false
			}
		}
		out = append(out, [2]uint32{min(a, z), max(a, z)})
	}
	return out, len(out) > 0
}

// fetchItems are the FETCH items the checker looks at.
type fetchItems struct {
	uid      uint32
	hasUID   bool
	flags    [][]byte
	hasFlags bool
}

// scanFetch reads the item list of "* n FETCH (...)" (b starts after
// "FETCH"): the UID and the FLAGS, skipping every other item's value
// (quoted strings, nested lists, section names with brackets, literal
// markers whose content the reader removed). It stops at the first
// thing it does not understand.
func scanFetch(b []byte, fi *fetchItems) {
	i := skipSpaces(b, 0)
	if i >= len(b) || b[i] != '(' {
		return
	}
	i++
	for {
		i = skipSpaces(b, i)
		if i >= len(b) || b[i] == ')' {
			return
		}
		// The item name, with "[section]" and "<partial>" as part of it.
		start, depth := i, 0
		for i < len(b) {
			ch := b[i]
			if ch == '[' {
				depth++
			} else if ch == ']' && depth > 0 {
				depth--
			} else if depth == 0 && (ch == ' ' || ch == ')') {
				break
			}
			i++
		}
		name := b[start:i]
		i = skipSpaces(b, i)
		vstart := i
		end, ok := skipValue(b, i)
		if !ok {
			return
		}
		val := b[vstart:end]
		switch {
		case bytes.EqualFold(name, []byte("UID")):
			fi.uid, fi.hasUID = parseUint32(val)
		case bytes.EqualFold(name, []byte("FLAGS")):
			fi.hasFlags = true
			fi.flags = bytes.Fields(bytes.Trim(val, "()"))
		}
		if end == i {
			return // no progress
		}
		i = end
	}
}

func skipSpaces(b []byte, i int) int {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	return i
}

// skipValue returns the end of the value starting at b[i]: an atom or
// number, a quoted string, a literal marker "{n}" or "~{n}" (content
// removed), or a parenthesised list of these.
func skipValue(b []byte, i int) (int, bool) {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '(':
			depth++
			i++
			continue
		case ')':
			if depth == 0 {
				return i, true
			}
			depth--
			i++
			if depth == 0 {
				return i, true
			}
			continue
		case ' ':
			if depth == 0 {
				return i, true
			}
			i++
			continue
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(b) {
				return len(b), false
			}
			i++
		case '~', '{':
			j := bytes.IndexByte(b[i:], '}')
			if j < 0 {
				return len(b), false
			}
			i += j + 1
		default:
			for i < len(b) && b[i] != ' ' && b[i] != '(' && b[i] != ')' && b[i] != '"' {
				i++
			}
		}
		if depth == 0 {
			return i, true
		}
	}
	return i, depth == 0
}
