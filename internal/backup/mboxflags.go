package backup

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/postfach/postfach/internal/mail"
)

// Flags in mbox files live in header fields that the programs which wrote
// them added: Status and X-Status (mutt, Dovecot, Pine), X-Keywords
// (Dovecot), X-Mozilla-Status and X-Mozilla-Keys (Thunderbird). They are
// the mbox's bookkeeping, not part of the message: the importer reads the
// flags from them and leaves them out of the stored message, and the
// exporter writes Status, X-Status and X-Keywords.

// mboxBookkeeping are the fields the importer takes out.
var mboxBookkeeping = map[string]bool{
	"status": true, "x-status": true, "x-keywords": true, "x-uid": true, "x-imap": true, "x-imapbase": true,
	"x-mozilla-status": true, "x-mozilla-status2": true, "x-mozilla-keys": true,
}

// Thunderbird's X-Mozilla-Status bits.
const (
	mozRead     = 0x0001
	mozReplied  = 0x0002
	mozMarked   = 0x0004
	mozExpunged = 0x0008 // deleted, the file not yet compacted
)

// mboxHeaderFlags reads the flags of an mbox message's header section and
// returns the section without the bookkeeping fields (and without
// Content-Length when dropLength, for mboxcl2, whose writer added it).
// expunged reports a message Thunderbird deleted but left in the file.
func mboxHeaderFlags(hdr []byte, dropLength bool) (out []byte, flags mail.Flags, expunged bool) {
	out = make([]byte, 0, len(hdr))
	// Split into fields, each with its continuation lines.
	var fields [][]byte
	for len(hdr) > 0 {
		i := bytes.IndexByte(hdr, '\n')
		line := hdr
		if i >= 0 {
			line = hdr[:i+1]
		}
		if len(fields) > 0 && len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			last := fields[len(fields)-1]
			fields[len(fields)-1] = last[:len(last)+len(line)]
		} else {
			fields = append(fields, line)
		}
		hdr = hdr[len(line):]
	}
	for _, field := range fields {
		colon := bytes.IndexByte(field, ':')
		if colon <= 0 {
			out = append(out, field...)
			continue
		}
		name := strings.ToLower(strings.TrimSpace(string(field[:colon])))
		if !mboxBookkeeping[name] && !(dropLength && name == "content-length") {
			out = append(out, field...)
			continue
		}
		value := strings.Join(strings.Fields(string(field[colon+1:])), " ")
		switch name {
		case "status":
			if strings.ContainsRune(value, 'R') {
				flags = append(flags, mail.FlagSeen)
			}
		case "x-status":
			for _, c := range value {
				switch c {
				case 'A':
					flags = append(flags, mail.FlagAnswered)
				case 'F':
					flags = append(flags, mail.FlagFlagged)
				case 'T':
					flags = append(flags, mail.FlagDraft)
				case 'D':
					flags = append(flags, mail.FlagDeleted)
				}
			}
		case "x-keywords", "x-mozilla-keys":
			for _, k := range strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
				if mail.ValidKeyword(k) {
					flags = append(flags, k)
				}
			}
		case "x-mozilla-status":
			v, err := strconv.ParseUint(value, 16, 32)
			if err != nil {
				break
			}
			if v&mozRead != 0 {
				flags = append(flags, mail.FlagSeen)
			}
			if v&mozReplied != 0 {
				flags = append(flags, mail.FlagAnswered)
			}
			if v&mozMarked != 0 {
				flags = append(flags, mail.FlagFlagged)
			}
			if v&mozExpunged != 0 {
				expunged = true
			}
		}
	}
	return out, mail.NewFlags(flags...), expunged
}

// mboxStatusFields writes the bookkeeping fields for flags, as the
// importer reads them.
func mboxStatusFields(flags mail.Flags) []byte {
	var status, xstatus string
	var kws []string
	for _, f := range flags {
		switch f {
		case mail.FlagSeen:
			status += "R"
		case mail.FlagAnswered:
			xstatus += "A"
		case mail.FlagFlagged:
			xstatus += "F"
		case mail.FlagDraft:
			xstatus += "T"
		case mail.FlagDeleted:
			xstatus += "D"
		default:
			if !strings.HasPrefix(f, `\`) {
				kws = append(kws, f)
			}
		}
	}
	var b bytes.Buffer
	b.WriteString("Status: " + status + "O\n")
	if xstatus != "" {
		b.WriteString("X-Status: " + xstatus + "\n")
	}
	if len(kws) > 0 {
		b.WriteString("X-Keywords: " + strings.Join(kws, " ") + "\n")
	}
	return b.Bytes()
}
