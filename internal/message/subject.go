package message

import (
	"strings"
)

// BaseSubject returns the base subject of a Subject header value, as RFC
// 5256 §2.1 defines it for SORT SUBJECT and THREAD: encoded words are
// decoded, whitespace is normalised, and "Re:", "Fw:", "Fwd:" (with
// optional "[blob]"s), leading "[blob]"s, trailing "(fwd)" and the
// "[fwd: ...]" wrapper are removed. Letter case is kept; callers compare
// base subjects case-insensitively (i;ascii-casemap, RFC 5256 §2.1 and §3).
func BaseSubject(subject string) string {
	base, _ := SubjectBase(DecodeHeaderValue(subject))
	return base
}

// SubjectBase is BaseSubject for an already decoded subject; it also
// reports whether the subject marks a reply or forward, which THREAD=
// REFERENCES needs (RFC 5256 §3: the extraction removed a subj-refwd, a
// "(fwd)" subj-trailer, or a subj-fwd-hdr and subj-fwd-trl).
func SubjectBase(decoded string) (base string, replyOrForward bool) {
	// (1) Turn every run of whitespace into one space.
	s := collapseSpace(decoded)
	reply := false
	for {
		// (2) Remove trailing subj-trailer: "(fwd)" and whitespace.
		for {
			if strings.HasSuffix(s, " ") {
				s = s[:len(s)-1]
			} else if len(s) >= 5 && strings.EqualFold(s[len(s)-5:], "(fwd)") {
				s, reply = s[:len(s)-5], true
			} else {
				break
			}
		}
		// (5) Repeat (3) and (4) until nothing changes.
		for {
			// (3) Remove leading subj-leader: whitespace or
			// *subj-blob subj-refwd.
			for {
				if strings.HasPrefix(s, " ") {
					s = s[1:]
				} else if n := leaderLen(s); n > 0 {
					s, reply = s[n:], true
				} else {
					break
				}
			}
			// (4) Remove a leading subj-blob if a non-empty subj-base
			// remains.
			if n := blobLen(s); n > 0 && strings.TrimLeft(s[n:], " ") != "" {
				s = s[n:]
				continue
			}
			break
		}
		// (6) "[fwd:" subject "]": unwrap and start over at (2).
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s, reply = s[5:len(s)-1], true
			continue
		}
		return s, reply
	}
}

// collapseSpace turns tabs, line breaks and runs of spaces into single
// spaces.
func collapseSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteByte(c)
	}
	return b.String()
}

// blobLen returns the length of the subj-blob at the start of s
// ("[" *BLOBCHAR "]" *WSP, RFC 5256 §5), or 0.
func blobLen(s string) int {
	if s == "" || s[0] != '[' {
		return 0
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '[':
			return 0
		case ']':
			i++
			for i < len(s) && s[i] == ' ' {
				i++
			}
			return i
		}
	}
	return 0
}

// leaderLen returns the length of the "*subj-blob subj-refwd" at the start
// of s (RFC 5256 §5: subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob]
// ":"), or 0.
func leaderLen(s string) int {
	i := 0
	for {
		n := blobLen(s[i:])
		if n == 0 {
			break
		}
		i += n
	}
	rest := s[i:]
	switch {
	case len(rest) >= 2 && strings.EqualFold(rest[:2], "re"):
		i += 2
	case len(rest) >= 3 && strings.EqualFold(rest[:3], "fwd"):
		i += 3
	case len(rest) >= 2 && strings.EqualFold(rest[:2], "fw"):
		i += 2
	default:
		return 0
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	i += blobLen(s[i:])
	if i < len(s) && s[i] == ':' {
		return i + 1
	}
	return 0
}

// SortDisplay returns the SORT DISPLAYFROM / DISPLAYTO key of an address
// list: the sort value of its first address structure (RFC 5957 §3, §4).
// That is the decoded display name (a name taken from a comment counts,
// see ParseAddressList) unless it decodes to nothing, else the addr-spec
// (mailbox@host), else the mailbox alone; for a group, whose first
// structure is the start marker (RFC 9051 §7.5.2: NIL name and host), the
// group name. "" for an empty list. Callers compare keys with
// i;unicode-casemap (RFC 5051).
func SortDisplay(addrs []Address) string {
	if len(addrs) == 0 {
		return ""
	}
	a := addrs[0]
	switch {
	case a.IsGroupEnd:
		return ""
	case a.IsGroupStart:
		return a.Mailbox
	}
	if n := strings.TrimSpace(DecodeHeaderValue(a.Name)); n != "" {
		return n
	}
	return AddrSpec(a)
}

// SortMailbox returns the SORT FROM / TO / CC key of an address list: the
// addr-mailbox of its first address structure (RFC 5256 §3), which for a
// group is the start marker's group name (RFC 9051 §7.5.2); "" for an
// empty list. The name, the host and the route play no part.
func SortMailbox(addrs []Address) string {
	if len(addrs) == 0 || addrs[0].IsGroupEnd {
		return ""
	}
	return addrs[0].Mailbox
}

// AddrSpec returns "mailbox@host", or the mailbox alone when the host is
// empty.
func AddrSpec(a Address) string {
	if a.Host == "" {
		return a.Mailbox
	}
	return a.Mailbox + "@" + a.Host
}
