package message

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/transform"
)

// lookupCharset returns the decoder that converts text in the named MIME
// charset to UTF-8, and whether the name was known.
//
// The WHATWG names (htmlindex) are tried first because they describe what
// senders actually mean: "iso-8859-1" text is decoded as windows-1252, its
// superset, and "gb2312" as GBK. UTF-8, US-ASCII and unknown or absent
// charsets use utf8Fallback: mislabeled 8-bit text is the most common
// charset error in mail, and it keeps the output valid UTF-8 whatever the
// input.
func lookupCharset(name string) (t transform.Transformer, known bool) {
	name = strings.ToLower(strings.Trim(strings.TrimSpace(name), `"'`))
	switch name {
	case "", "us-ascii", "ascii", "us_ascii", "ansi_x3.4-1968", "iso646-us", "x-unknown",
		"unknown-8bit", "unknown", "default", "x-user-defined":
		return utf8Fallback{}, name != "" && name != "x-unknown" && name != "unknown-8bit" && name != "unknown"
	}
	var enc encoding.Encoding
	if e, err := htmlindex.Get(name); err == nil && e != nil {
		if n, _ := htmlindex.Name(e); n == "utf-8" {
			return utf8Fallback{}, true
		}
		enc = e
	} else if e, err := ianaindex.MIME.Encoding(name); err == nil && e != nil {
		enc = e
	} else if e, err := ianaindex.IANA.Encoding(name); err == nil && e != nil {
		enc = e
	}
	if enc == nil {
		return utf8Fallback{}, false
	}
	return enc.NewDecoder(), true
}

// decodeCharset converts b from the named charset to valid UTF-8. Unknown
// charsets are treated as utf8Fallback describes; known reports whether the
// charset was known.
func decodeCharset(charset string, b []byte) (s string, known bool) {
	t, known := lookupCharset(charset)
	if _, ok := t.(utf8Fallback); ok {
		if utf8.Valid(b) {
			return string(b), known
		}
	}
	out, _, err := transform.Bytes(t, b)
	if err != nil {
		// A decoder that fails on its input: keep what is readable.
		return strings.ToValidUTF8(string(b), "\uFFFD"), known
	}
	return strings.ToValidUTF8(string(out), "\uFFFD"), known
}

// toValidUTF8 returns s unchanged when it is valid UTF-8, else s with every
// invalid byte read as windows-1252 (raw 8-bit header text is nearly always
// UTF-8 or a Latin charset).
func toValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out, _, err := transform.String(utf8Fallback{}, s)
	if err != nil {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return out
}

// utf8Fallback is a transformer that passes valid UTF-8 through and decodes
// each byte that is not part of a valid UTF-8 sequence as windows-1252.
type utf8Fallback struct{ transform.NopResetter }

// Transform implements transform.Transformer.
func (utf8Fallback) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		c := src[nSrc]
		if c < utf8.RuneSelf {
			if nDst >= len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			dst[nDst] = c
			nDst++
			nSrc++
			continue
		}
		r, size := utf8.DecodeRune(src[nSrc:])
		if r == utf8.RuneError && size <= 1 {
			if !atEOF && !utf8.FullRune(src[nSrc:]) {
				return nDst, nSrc, transform.ErrShortSrc
			}
			r = charmap.Windows1252.DecodeByte(c)
			if r == utf8.RuneError || r < 0xa0 && r >= 0x80 {
				r = utf8.RuneError
			}
			if nDst+utf8.RuneLen(r) > len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			nDst += utf8.EncodeRune(dst[nDst:], r)
			nSrc++
			continue
		}
		if nDst+size > len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		copy(dst[nDst:], src[nSrc:nSrc+size])
		nDst += size
		nSrc += size
	}
	return nDst, nSrc, nil
}
