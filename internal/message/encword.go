package message

import (
	"strings"
)

// maxCharsetName bounds the charset name of an encoded word.
const maxCharsetName = 64

// DecodeHeaderValue returns a header value as UTF-8 text: folding is undone
// (CR and LF removed) and RFC 2047 encoded words are decoded, in any charset
// golang.org/x/text knows. It is lenient in the ways real mail needs:
// encoded words inside other text or inside quoted strings are decoded, Q
// words may contain spaces, base64 padding may be missing, a character split
// across adjacent encoded words is joined (their bytes are concatenated
// before charset conversion), and an encoded word in an unknown charset is
// read as UTF-8 or windows-1252. Whitespace between adjacent encoded words
// is dropped (RFC 2047 §6.2). Text outside encoded words that is not valid
// UTF-8 is read as windows-1252, so the result is always valid UTF-8.
func DecodeHeaderValue(raw string) string {
	s := raw
	if strings.ContainsAny(s, "\r\n") {
		s = unfold([]byte(s))
	}
	if !strings.Contains(s, "=?") {
		return toValidUTF8(s)
	}
	var out strings.Builder
	out.Grow(len(s))
	var pend []byte
	pendCharset := ""
	havePend := false
	flush := func() {
		if havePend {
			t, _ := decodeCharset(pendCharset, pend)
			out.WriteString(t)
			pend = pend[:0]
			havePend = false
		}
	}
	textStart, i := 0, 0
	lastWord := false
	for i < len(s) {
		j := strings.Index(s[i:], "=?")
		if j < 0 {
			break
		}
		j += i
		charset, enc, text, end, ok := parseEncodedWord(s, j)
		if !ok {
			i = j + 2
			continue
		}
		between := s[textStart:j]
		if !lastWord || !isWSPOnly(between) {
			flush()
			out.WriteString(toValidUTF8(between))
		}
		if havePend && !strings.EqualFold(pendCharset, charset) {
			flush()
		}
		if enc == 'b' {
			d := transferDecoder{kind: cteBase64}
			pend = d.flush(d.decode(pend, []byte(text)))
		} else {
			pend = decodeQWord(pend, text)
		}
		pendCharset = charset
		havePend = true
		i, textStart = end, end
		lastWord = true
	}
	flush()
	out.WriteString(toValidUTF8(s[textStart:]))
	return out.String()
}

// parseEncodedWord parses the encoded word "=?charset?enc?text?=" starting
// at s[j] (RFC 2047 §2). enc is 'b' or 'q'; the charset's RFC 2231
// language suffix ("utf-8*en") is removed. end is the offset after "?=".
func parseEncodedWord(s string, j int) (charset string, enc byte, text string, end int, ok bool) {
	i := j + 2
	q := strings.IndexByte(s[i:], '?')
	if q <= 0 || q > maxCharsetName {
		return "", 0, "", 0, false
	}
	charset = s[i : i+q]
	if strings.ContainsAny(charset, " \t\"()<>@,;:/[]=") {
		return "", 0, "", 0, false
	}
	if star := strings.IndexByte(charset, '*'); star >= 0 {
		charset = charset[:star]
	}
	i += q + 1
	if i+1 >= len(s) || s[i+1] != '?' {
		return "", 0, "", 0, false
	}
	switch s[i] {
	case 'b', 'B':
		enc = 'b'
	case 'q', 'Q':
		enc = 'q'
	default:
		return "", 0, "", 0, false
	}
	i += 2
	e := strings.Index(s[i:], "?=")
	if e < 0 {
		return "", 0, "", 0, false
	}
	return charset, enc, s[i : i+e], i + e + 2, true
}

// decodeQWord decodes the text of a Q encoded word (RFC 2047 §4.2): "_" is
// a space, "=XX" a byte; an invalid "=" is kept.
func decodeQWord(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_':
			dst = append(dst, ' ')
		case c == '=' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isWSPOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return false
		}
	}
	return true
}
