package message

import "strings"

// maxMessageIDs bounds the IDs ParseMessageIDs returns.
const maxMessageIDs = 1000

// ParseMessageIDs returns the message IDs in a References or In-Reply-To
// value (RFC 5322 §3.6.4), in order and without angle brackets, for
// THREAD=REFERENCES (RFC 5256 §2.2). Whitespace inside an ID (from broken
// folding) is removed, and text outside angle brackets, such as comments
// or phrases, is ignored. A value without any angle brackets is read as
// whitespace-separated IDs; only words containing "@" count.
func ParseMessageIDs(raw string) []string {
	var out []string
	s := raw
	for len(out) < maxMessageIDs {
		j := strings.IndexByte(s, '>')
		if j < 0 {
			break
		}
		i := strings.LastIndexByte(s[:j], '<')
		if i >= 0 {
			if id := stripSpace(unfold([]byte(s[i+1 : j]))); id != "" {
				out = append(out, id)
			}
		}
		s = s[j+1:]
	}
	if out == nil && !strings.ContainsAny(raw, "<>") {
		for _, w := range strings.Fields(raw) {
			w = strings.Trim(w, `,;"'`)
			if strings.Contains(w, "@") && len(out) < maxMessageIDs {
				out = append(out, w)
			}
		}
	}
	return out
}

// ParseMessageID returns the first message ID of a Message-ID or
// In-Reply-To value without angle brackets, or "" (see ParseMessageIDs).
func ParseMessageID(raw string) string {
	if ids := ParseMessageIDs(raw); len(ids) > 0 {
		return ids[0]
	}
	return ""
}
