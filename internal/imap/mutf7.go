package imap

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Modified UTF-7 (RFC 3501 §5.1.3): printable US-ASCII except "&" stands
// for itself, "&" is "&-", and every run of other characters is "&", the
// UTF-16BE form of the run in a base64 variant ("," for "/", no padding),
// and "-".

// ErrInvalidMUTF7 is returned by DecodeMUTF7 for a string that is not in
// canonical modified UTF-7.
var ErrInvalidMUTF7 = errors.New("imap: invalid modified UTF-7 mailbox name")

const mutf7Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

// mutf7Values maps an alphabet byte to its value, or 0xFF.
var mutf7Values = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i := 0; i < len(mutf7Alphabet); i++ {
		t[mutf7Alphabet[i]] = byte(i)
	}
	return t
}()

// printable reports the characters that represent themselves (and "&").
func printable(r rune) bool { return r >= 0x20 && r <= 0x7e }

// EncodeMUTF7 encodes a UTF-8 mailbox name in modified UTF-7. Invalid
// UTF-8 is encoded as U+FFFD.
func EncodeMUTF7(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '&':
			b.WriteString("&-")
			i++
		case printable(r):
			b.WriteByte(byte(r))
			i++
		default:
			// Collect the run of characters to shift.
			var units []uint16
			for i < len(s) {
				r, n = utf8.DecodeRuneInString(s[i:])
				if printable(r) {
					break
				}
				if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
					units = append(units, uint16(r1), uint16(r2))
				} else {
					units = append(units, uint16(r))
				}
				i += n
			}
			b.WriteByte('&')
			writeMBase64(&b, units)
			b.WriteByte('-')
		}
	}
	return b.String()
}

// writeMBase64 writes UTF-16 units in modified base64.
func writeMBase64(b *strings.Builder, units []uint16) {
	var acc uint32
	bits := 0
	for _, u := range units {
		acc = acc<<16 | uint32(u)
		bits += 16
		for bits >= 6 {
			bits -= 6
			b.WriteByte(mutf7Alphabet[(acc>>bits)&0x3F])
		}
	}
	if bits > 0 {
		b.WriteByte(mutf7Alphabet[(acc<<(6-bits))&0x3F])
	}
}

// DecodeMUTF7 decodes a mailbox name from modified UTF-7 into UTF-8. It
// accepts only the canonical encoding, so that every name has exactly one
// encoded form: it rejects 8-bit and control bytes, a missing "-", empty
// or non-canonical base64 (non-zero padding bits, a partial UTF-16 unit),
// shifted printable characters, unpaired surrogates, and two adjacent
// shifted runs.
func DecodeMUTF7(s string) (string, error) {
	if strings.IndexByte(s, '&') < 0 {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] > 0x7e {
				return "", ErrInvalidMUTF7
			}
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	lastShiftEnd := -1 // index after the "-" of the previous shifted run
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", ErrInvalidMUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '-' {
			b.WriteByte('&')
			i += 2
			continue
		}
		if i == lastShiftEnd {
			// Two adjacent runs must be one.
			return "", ErrInvalidMUTF7
		}
		j := i + 1
		for j < len(s) && mutf7Values[s[j]] != 0xFF {
			j++
		}
		if j == i+1 || j >= len(s) || s[j] != '-' {
			return "", ErrInvalidMUTF7
		}
		if err := decodeMBase64(&b, s[i+1:j]); err != nil {
			return "", err
		}
		i = j + 1
		lastShiftEnd = i
	}
	return b.String(), nil
}

// decodeMBase64 decodes one shifted run and appends it as UTF-8.
func decodeMBase64(b *strings.Builder, run string) error {
	var acc uint32
	bits := 0
	var high uint16 // pending high surrogate
	for i := 0; i < len(run); i++ {
		acc = acc<<6 | uint32(mutf7Values[run[i]])
		bits += 6
		if bits < 16 {
			continue
		}
		bits -= 16
		u := uint16(acc >> bits)
		acc &= 1<<bits - 1
		switch {
		case high != 0:
			if u < 0xDC00 || u > 0xDFFF {
				return ErrInvalidMUTF7
			}
			b.WriteRune(utf16.DecodeRune(rune(high), rune(u)))
			high = 0
		case u >= 0xD800 && u <= 0xDBFF:
			high = u
		case u >= 0xDC00 && u <= 0xDFFF:
			return ErrInvalidMUTF7
		case printable(rune(u)):
			// RFC 3501 §5.1.3: printable US-ASCII must represent
			// itself.
			return ErrInvalidMUTF7
		default:
			b.WriteRune(rune(u))
		}
	}
	// Leftover bits: fewer than 6, all zero (canonical padding).
	if high != 0 || bits >= 6 || acc != 0 {
		return ErrInvalidMUTF7
	}
	return nil
}
