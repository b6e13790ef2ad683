package message

import (
	"slices"
	"strings"
)

// Limits on what one structured header value may expand to.
const (
	maxParams   = 64  // parameters kept per Content-Type or Content-Disposition
	maxSections = 100 // RFC 2231 continuation sections per parameter
)

// isTSpecial reports whether c is a tspecial of RFC 2045 §5.1.
func isTSpecial(c byte) bool {
	return strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0
}

// isTokenChar reports whether c may appear in an RFC 2045 token.
func isTokenChar(c byte) bool {
	return c > ' ' && c < 0x7f && !isTSpecial(c)
}

// skipCFWS skips whitespace and (nested) comments starting at s[i].
func skipCFWS(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
			i++
		case '(':
			i = skipComment(s, i)
		default:
			return i
		}
	}
	return i
}

// skipComment skips a comment starting at s[i] == '(' (RFC 5322 §3.2.2:
// comments nest, and a backslash quotes the next character). An
// unterminated comment runs to the end.
func skipComment(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(s)
}

// readToken reads an RFC 2045 token at s[i].
func readToken(s string, i int) (string, int) {
	j := i
	for j < len(s) && isTokenChar(s[j]) {
		j++
	}
	return s[i:j], j
}

// readQuoted reads a quoted-string starting at s[i] == '"', returning its
// content with quoting backslashes removed. An unterminated string runs to
// the end.
func readQuoted(s string, i int) (string, int) {
	i++
	start := i
	simple := true
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			simple = false
			i++
		case '"':
			if simple {
				return s[start:i], i + 1
			}
			return unquote(s[start:i]), i + 1
		}
	}
	if simple {
		return s[start:], len(s)
	}
	return unquote(s[start:]), len(s)
}

// unquote removes quoting backslashes.
func unquote(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseContentType parses a Content-Type value (RFC 2045 §5.1) into a
// lower-case type and subtype and the parameters. ok is false when the
// value has no valid type/subtype; the caller then uses the default type.
func parseContentType(v string) (typ, sub string, params []Param, ok bool) {
	i := skipCFWS(v, 0)
	typ, i = readToken(v, i)
	i = skipCFWS(v, i)
	if typ == "" || i >= len(v) || v[i] != '/' {
		return "", "", nil, false
	}
	i = skipCFWS(v, i+1)
	sub, i = readToken(v, i)
	if sub == "" {
		return "", "", nil, false
	}
	return strings.ToLower(typ), strings.ToLower(sub), parseParams(v, i), true
}

// parseDisposition parses a Content-Disposition value (RFC 2183 §2).
func parseDisposition(v string) (disp string, params []Param) {
	i := skipCFWS(v, 0)
	disp, i = readToken(v, i)
	if disp == "" {
		return "", nil
	}
	return strings.ToLower(disp), parseParams(v, i)
}

// rawParam is a parameter as written, before RFC 2231 processing.
type rawParam struct {
	name, value string
}

// parseParams parses the parameter list of a structured MIME header
// starting at v[i] (RFC 2045 §5.1, RFC 2231), leniently: a missing
// semicolon, unquoted values with spaces (common in file names) and
// trailing comments are accepted; a parameter without "=" is skipped; of
// repeated parameters the first is kept.
func parseParams(v string, i int) []Param {
	var raw []rawParam
	ext := false
	for i < len(v) && len(raw) < maxParams*2 {
		i = skipCFWS(v, i)
		if i >= len(v) {
			break
		}
		if v[i] == ';' {
			i++
			continue
		}
		// Name: up to "=" (or the end of this parameter).
		j := i
		for j < len(v) && v[j] != '=' && v[j] != ';' {
			j++
		}
		name := strings.ToLower(strings.TrimSpace(v[i:j]))
		if j >= len(v) || v[j] == ';' {
			i = j // no "=": not a parameter
			continue
		}
		if name == "" || strings.ContainsAny(name, " \t\"") {
			i = j + 1 // skip the "=" and read on
			continue
		}
		i = skipCFWS(v, j+1)
		var value string
		if i < len(v) && v[i] == '"' {
			value, i = readQuoted(v, i)
			// Ignore anything else up to the next parameter.
			for i < len(v) && v[i] != ';' {
				i++
			}
		} else {
			j = i
			for j < len(v) && v[j] != ';' {
				if v[j] == '"' {
					// A stray quote: start of a new, quoted value.
					break
				}
				j++
			}
			value = strings.TrimSpace(v[i:j])
			if k := strings.Index(value, " ("); k >= 0 {
				value = strings.TrimSpace(value[:k])
			}
			i = j
			if i < len(v) && v[i] == '"' {
				// "name=foo"bar": keep foo, drop the rest of this parameter.
				_, i = readQuoted(v, i)
			}
		}
		if strings.IndexByte(name, '*') >= 0 {
			ext = true
		}
		raw = append(raw, rawParam{name, value})
	}
	if len(raw) == 0 {
		return nil
	}
	if !ext {
		out := make([]Param, 0, len(raw))
		for _, p := range raw {
			if len(out) < maxParams && !hasParam(out, p.name) {
				out = append(out, Param{Name: p.name, Value: p.value})
			}
		}
		return out
	}
	return rfc2231(raw)
}

func hasParam(ps []Param, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// section is one piece of an RFC 2231 parameter.
type section struct {
	index   int // -1: "name*" (not continued)
	encoded bool
	value   string
}

// rfc2231 merges RFC 2231 continuations ("name*0", "name*1*", ...) and
// decodes extended values ("name*=charset'lang'%XX") into plain UTF-8
// parameters. The order is that of each name's first appearance. When a
// parameter has both forms, the RFC 2231 one wins (RFC 2231 §4.1 allows
// senders to give both for old readers); if it cannot be assembled (no
// section 0), the plain one is used.
func rfc2231(raw []rawParam) []Param {
	var names []string
	plain := map[string]string{}
	ext := map[string][]section{}
	for _, p := range raw {
		base, idx, enc, ok := splitExtName(p.name)
		if !ok {
			continue
		}
		if !slices.Contains(names, base) {
			if len(names) >= maxParams {
				continue
			}
			names = append(names, base)
		}
		if idx == -2 {
			if _, dup := plain[base]; !dup {
				plain[base] = p.value
			}
			continue
		}
		if len(ext[base]) < maxSections {
			ext[base] = append(ext[base], section{idx, enc, p.value})
		}
	}
	var out []Param
	for _, n := range names {
		if v, ok := assemble(ext[n]); ok {
			out = append(out, Param{Name: n, Value: v})
		} else if v, ok := plain[n]; ok {
			out = append(out, Param{Name: n, Value: v})
		}
	}
	return out
}

// splitExtName splits an RFC 2231 parameter name: "title" gives index -2
// (plain), "title*" index -1 and encoded, "title*2" index 2, "title*2*"
// index 2 and encoded.
func splitExtName(name string) (base string, idx int, encoded, ok bool) {
	star := strings.IndexByte(name, '*')
	if star < 0 {
		return name, -2, false, true
	}
	base, rest := name[:star], name[star+1:]
	if base == "" {
		return "", 0, false, false
	}
	if rest == "" {
		return base, -1, true, true
	}
	if strings.HasSuffix(rest, "*") {
		encoded = true
		rest = rest[:len(rest)-1]
	}
	if rest == "" || len(rest) > 3 {
		return "", 0, false, false
	}
	idx = 0
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return "", 0, false, false
		}
		idx = idx*10 + int(rest[i]-'0')
	}
	return base, idx, encoded, true
}

// assemble joins the sections of one RFC 2231 parameter (RFC 2231 §3: in
// index order from 0, stopping at the first gap; only the first section
// carries charset'language') and decodes the result to UTF-8.
func assemble(secs []section) (string, bool) {
	if len(secs) == 0 {
		return "", false
	}
	var first *section
	for i := range secs {
		if secs[i].index == -1 {
			first = &secs[i]
			break
		}
	}
	var ordered []section
	if first != nil {
		ordered = []section{*first}
	} else {
		for want := 0; ; want++ {
			found := false
			for _, s := range secs {
				if s.index == want {
					ordered = append(ordered, s)
					found = true
					break
				}
			}
			if !found {
				break
			}
		}
		if len(ordered) == 0 {
			return "", false
		}
	}
	charset := ""
	var b []byte
	for i, s := range ordered {
		v := s.value
		if s.encoded {
			if i == 0 {
				// RFC 2231 §4: charset'language'value. Tolerate a missing
				// language part.
				if q := strings.IndexByte(v, '\''); q >= 0 {
					charset = v[:q]
					v = v[q+1:]
					if q2 := strings.IndexByte(v, '\''); q2 >= 0 {
						v = v[q2+1:]
					}
				}
			}
			b = percentDecode(b, v)
		} else {
			b = append(b, v...)
		}
	}
	s, _ := decodeCharset(charset, b)
	return s, true
}

// percentDecode appends s with %XX escapes decoded; an invalid escape is
// kept as written.
func percentDecode(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}

// ParamValue returns the value of the named parameter (lower-case name) in
// ps, or "".
func ParamValue(ps []Param, name string) string {
	for _, p := range ps {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}
