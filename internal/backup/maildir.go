package backup

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
)

// Maildir (https://cr.yp.to/proto/maildir.html): one file per message in
// cur/ or new/ (tmp/ holds files being written, never read). A file name
// in cur/ ends with ":2," and the flags, one letter each, in ASCII order:
// D draft, F flagged, P passed (no IMAP flag), R replied, S seen, T
// trashed; Dovecot adds a-z for the keywords listed in dovecot-keywords
// ("0 $Label1"). A file in new/ has not been seen by any client: it is
// unseen. Maildir++ keeps the folders as hidden sub-Maildirs of the
// INBOX Maildir, named with "." for the hierarchy and IMAP's modified
// UTF-7 (".Work.2024").

// MaildirUIDLFile is a file postfach migrate leaves in a Maildir it
// writes: "FILENAME UIDL" lines, the POP3 UIDL each message keeps.
const MaildirUIDLFile = "postfach-pop3-uidls"

// maildirUIDLs reads a Maildir's MaildirUIDLFile, if any.
func maildirUIDLs(dir string) map[string]string {
	f, err := os.Open(filepath.Join(dir, MaildirUIDLFile))
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, uidl, ok := strings.Cut(sc.Text(), " ")
		// RFC 1939 §7: 1 to 70 characters 0x21 to 0x7E.
		if ok && len(uidl) >= 1 && len(uidl) <= 70 && !strings.ContainsFunc(uidl, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			out[name] = uidl
		}
	}
	return out
}

// isMaildir reports whether dir holds a Maildir (cur/ or new/).
func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		if fi, err := os.Lstat(filepath.Join(dir, sub)); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// maildirKeywords reads Dovecot's dovecot-keywords file of a Maildir: the
// keyword of each letter (index 0 is "a"). A missing file gives none.
func maildirKeywords(dir string) map[byte]string {
	f, err := os.Open(filepath.Join(dir, "dovecot-keywords"))
	if err != nil {
		return nil
	}
	defer f.Close()
	kw := map[byte]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			continue
		}
		n, err := strconv.Atoi(fields[0])
		if err != nil || n < 0 || n >= 26 || !mail.ValidKeyword(fields[1]) {
			continue
		}
		kw[byte('a'+n)] = fields[1]
	}
	return kw
}

// maildirInfo returns the flag letters of a file name in cur/: what
// follows ":2," (or "!2," and ";2,", which some tools use where ":" is
// not allowed in file names).
func maildirInfo(name string) string {
	for _, sep := range []string{":2,", "!2,", ";2,"} {
		if i := strings.LastIndex(name, sep); i >= 0 {
			return name[i+3:]
		}
	}
	return ""
}

// maildirFlags turns flag letters into flags.
func maildirFlags(info string, kw map[byte]string) mail.Flags {
	var fl []string
	for i := 0; i < len(info); i++ {
		switch c := info[i]; {
		case c == 'D':
			fl = append(fl, mail.FlagDraft)
		case c == 'F':
			fl = append(fl, mail.FlagFlagged)
		case c == 'R':
			fl = append(fl, mail.FlagAnswered)
		case c == 'S':
			fl = append(fl, mail.FlagSeen)
		case c == 'T':
			fl = append(fl, mail.FlagDeleted)
		case c >= 'a' && c <= 'z':
			if k, ok := kw[c]; ok {
				fl = append(fl, k)
			}
		}
	}
	return mail.NewFlags(fl...)
}

// maildirFile is one message file of a Maildir.
type maildirFile struct {
	path string
	new  bool
	info string
}

// maildirFiles lists the message files of a Maildir, new/ and cur/, in
// name order (which is delivery order for the usual time-based names).
// Hidden files and anything that is not a regular file are left out.
func maildirFiles(dir string) ([]maildirFile, error) {
	var out []maildirFile
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
				continue
			}
			f := maildirFile{path: filepath.Join(dir, sub, e.Name()), new: sub == "new"}
			if !f.new {
				f.info = maildirInfo(e.Name())
			}
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return filepath.Base(out[i].path) < filepath.Base(out[j].path) })
	return out, nil
}

// maildirPPFolder turns a Maildir++ folder directory name (".Work.2024")
// into its levels, decoding modified UTF-7 and the exporter's escapes;
// nil when the name is not one.
func maildirPPFolder(name string) []string {
	if len(name) < 2 || name[0] != '.' || name == ".." {
		return nil
	}
	parts := strings.Split(name[1:], ".")
	for i, p := range parts {
		if d, err := imap.DecodeMUTF7(p); err == nil {
			p = d
		}
		parts[i] = unescapeName(p)
	}
	return parts
}

// escapeName makes a mailbox level safe as a file name for the
// exporter: "%" and "." (dot only first, unless all is set) become %25
// and %2E, so that no level is "." or "..", hidden, or (in Maildir++)
// split at a dot. unescapeName undoes it.
func escapeName(s string, all bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			b.WriteString("%25")
		case c == '.' && (all || i == 0):
			b.WriteString("%2E")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescapeName(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	r := strings.NewReplacer("%2E", ".", "%2e", ".", "%25", "%")
	return r.Replace(s)
}
