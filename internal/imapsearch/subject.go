package imapsearch

import "strings"

// baseSubject applies the base subject extraction of RFC 5256 §2.1 to a
// decoded subject and also reports whether the subject marks a reply or
// forward: RFC 5256 §3 REFERENCES calls a message a reply or forward "if
// the base subject extraction rules, applied to the original subject,
// remove any of the following: a subj-refwd, a "(fwd)" subj-trailer, or a
// subj-fwd-hdr and subj-fwd-trl". message.BaseSubject computes the same
// base (the tests check that they agree) but cannot say which artifacts
// it removed.
func baseSubject(decoded string) (base string, reply bool) {
	// (1) Tabs, line breaks and runs of spaces become one space.
	s := strings.Join(strings.FieldsFunc(decoded, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n'
	}), " ")
	for {
		// (2) Remove trailing WSP and "(fwd)".
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
			// (3) Remove leading subj-leader: WSP, or *subj-blob
			// subj-refwd.
			for {
				if strings.HasPrefix(s, " ") {
					s = s[1:]
				} else if n := refwdLen(s); n > 0 {
					s, reply = s[n:], true
				} else {
					break
				}
			}
			// (4) Remove a leading subj-blob if a non-empty subj-base
			// remains.
			if n := subjBlobLen(s); n > 0 && strings.TrimLeft(s[n:], " ") != "" {
				s = s[n:]
				continue
			}
			break
		}
		// (6) subj-fwd-hdr subject subj-fwd-trl: unwrap, repeat from (2).
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s, reply = s[5:len(s)-1], true
			continue
		}
		return s, reply
	}
}

// subjBlobLen is the length of the subj-blob ("[" *BLOBCHAR "]" *WSP,
// RFC 5256 §5) that s starts with, or 0.
func subjBlobLen(s string) int {
	if !strings.HasPrefix(s, "[") {
		return 0
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return 0
	}
	n := end + 2
	for n < len(s) && s[n] == ' ' {
		n++
	}
	return n
}

// refwdLen is the length of *subj-blob subj-refwd at the start of s, or 0
// (RFC 5256 §5: subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":").
func refwdLen(s string) int {
	n := 0
	for {
		b := subjBlobLen(s[n:])
		if b == 0 {
			break
		}
		n += b
	}
	r := s[n:]
	switch {
	case len(r) >= 3 && strings.EqualFold(r[:3], "fwd"):
		n += 3
	case len(r) >= 2 && (strings.EqualFold(r[:2], "re") || strings.EqualFold(r[:2], "fw")):
		n += 2
	default:
		return 0
	}
	for n < len(s) && s[n] == ' ' {
		n++
	}
	n += subjBlobLen(s[n:])
	if n < len(s) && s[n] == ':' {
		return n + 1
	}
	return 0
}
