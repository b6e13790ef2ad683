package imapurl

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postfach/postfach/internal/imap"
)

// Form says how a URL names its message.
type Form uint8

// URL forms (RFC 5092 §7.1, §7.2).
const (
	// Absolute: "imap://[user@]host[:port]/mailbox...".
	Absolute Form = iota + 1
	// PathAbsolute: "/mailbox..." on the server and user of the session.
	PathAbsolute
	// Relative: ";UID=..." in the session's selected mailbox (RFC 4469
	// §5 CATENATE).
	Relative
)

// AccessKind is the kind of a URLAUTH access identifier (RFC 4467 §3).
type AccessKind uint8

// Access identifiers.
const (
	// NoAccess: the URL has no ;URLAUTH=.
	NoAccess AccessKind = iota
	// AccessSubmit ("submit+USER"): the message submission server acting
	// for USER (BURL, RFC 4468).
	AccessSubmit
	// AccessUser ("user+USER"): sessions of USER.
	AccessUser
	// AccessAuthUser ("authuser"): any session of an account of this
	// server.
	AccessAuthUser
	// AccessAnonymous ("anonymous"): anyone; not offered by postfach
	// (Resolver.Authorize refuses it).
	AccessAnonymous
)

func (k AccessKind) String() string {
	switch k {
	case AccessSubmit:
		return "submit+"
	case AccessUser:
		return "user+"
	case AccessAuthUser:
		return "authuser"
	case AccessAnonymous:
		return "anonymous"
	}
	return ""
}

// Partial is the ;PARTIAL=offset[.length] of a URL (RFC 5092 §6).
type Partial struct {
	Offset uint32
	// Length 0: to the end of the section.
	Length uint32
}

// URL is an IMAP URL of a message or of part of one (RFC 5092), with the
// URLAUTH components of RFC 4467 §3. Parse makes one; the fields hold the
// decoded values.
type URL struct {
	// Raw is the URL as given.
	Raw  string
	Form Form

	// The server part of an Absolute URL: the user (percent-decoded; ""
	// when none is named), whether it carries ";AUTH=", the host (without
	// the brackets of an IPv6 address) and the port ("" for none).
	User    string
	HasAuth bool
	Host    string
	Port    string

	// Mailbox is the mailbox name, percent-decoded (UTF-8); "" for a
	// Relative URL.
	Mailbox string
	// UIDValidity is 0 when the URL does not give one.
	UIDValidity uint32
	UID         uint32
	// Section is the section specification, percent-decoded ("1.2",
	// "1.2.HEADER"; "" for the whole message), and Spec the same parsed.
	Section string
	Spec    imap.Section
	// Partial is set when HasPartial.
	Partial    Partial
	HasPartial bool

	// Expire is the ;EXPIRE= time; zero when none.
	Expire time.Time
	// Access is the kind of the URLAUTH access identifier, NoAccess when
	// the URL has no ;URLAUTH=, and AccessUser the user of "submit+" and
	// "user+" (percent-decoded).
	Access     AccessKind
	AccessUser string
	// Mechanism and Token are the verifier ":mechanism:token" of an
	// authorized URL as written; both "" for a rump URL (RFC 4467 §2.5,
	// §9: one that ends with the access identifier).
	Mechanism string
	Token     string

	// rump is the length of the rump URL (Raw[:rump]) when the URL has
	// ;URLAUTH=.
	rump int
}

// Rump returns the rump URL (RFC 4467 §2.5): the URL up to and with its
// access identifier, without the ":mechanism:token"; "" for a URL without
// ;URLAUTH=.
func (u *URL) Rump() string {
	if u.Access == NoAccess {
		return ""
	}
	return u.Raw[:u.rump]
}

// Authorized reports whether the URL carries a URLAUTH verifier.
func (u *URL) Authorized() bool { return u.Access != NoAccess && u.Token != "" }

// MaxLen bounds a URL.
const MaxLen = 8192

// minToken is the shortest token of the grammar: 32 hex digits, 128 bits
// (RFC 4467 §9 enc-urlauth).
const minToken = 32

// Error is a URL that Parse or Resolver.Authorize refuses, with a reason
// that may be shown to the client that sent it.
type Error struct{ Reason string }

func (e *Error) Error() string { return "imap url: " + e.Reason }

func errf(reason string) error { return &Error{reason} }

// Parse parses an IMAP URL of a message or part of one: absolute
// ("imap://user@host/INBOX;UIDVALIDITY=1/;UID=2/;SECTION=1.2"),
// path-absolute ("/INBOX/;UID=2") or relative (";UID=2"), each with
// ;PARTIAL=, and an absolute URL with ;EXPIRE= and ;URLAUTH= (RFC 5092
// §6, RFC 4467 §9). Keys are case-insensitive; values are
// percent-decoded. URLs of a server, a mailbox, a list of mailboxes or a
// search are not message URLs and are refused, as is anything that does
// not follow the grammar. The error is an *Error.
func Parse(raw string) (*URL, error) {
	if raw == "" {
		return nil, errf("empty URL")
	}
	if len(raw) > MaxLen {
		return nil, errf("URL too long")
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f {
			return nil, errf("URL with a space, control or 8-bit character")
		}
	}
	u := &URL{Raw: raw}
	path := raw
	switch {
	case len(raw) >= 7 && strings.EqualFold(raw[:7], "imap://"):
		u.Form = Absolute
		rest := raw[7:]
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return nil, errf("URL of a server, not of a message")
		}
		if err := u.parseServer(rest[:i]); err != nil {
			return nil, err
		}
		path = rest[i+1:]
	case raw[0] == '/':
		u.Form = PathAbsolute
		path = raw[1:]
	case raw[0] == ';':
		u.Form = Relative
	default:
		return nil, errf("not an IMAP URL")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, errf("URL of a search, not of a message")
	}
	if err := u.parsePath(path); err != nil {
		return nil, err
	}
	return u, nil
}

// parseServer parses iserver = [iuserinfo "@"] ihost [":" port], with
// iuserinfo = enc-user [iauth] / [enc-user] iauth (RFC 5092 §11).
func (u *URL) parseServer(s string) error {
	if at := strings.IndexByte(s, '@'); at >= 0 {
		info := s[:at]
		s = s[at+1:]
		if strings.IndexByte(s, '@') >= 0 {
			return errf("URL server with two @")
		}
		if j := strings.IndexByte(info, ';'); j >= 0 {
			auth := info[j:]
			if len(auth) < 7 || !strings.EqualFold(auth[:6], ";AUTH=") || auth[6:] != "*" && !isAchars(auth[6:]) {
				return errf("invalid ;AUTH= in the URL's user")
			}
			u.HasAuth = true
			info = info[:j]
		}
		if info == "" && !u.HasAuth {
			return errf("empty user in the URL")
		}
		if info != "" {
			user, err := decode(info, isAchar)
			if err != nil {
				return errf("invalid user in the URL")
			}
			u.User = user
		}
	}
	var port string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return errf("invalid host in the URL")
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return errf("invalid host in the URL")
		}
		u.Host, s = s[1:end], s[end+1:]
		if s != "" && s[0] != ':' {
			return errf("invalid host in the URL")
		}
	} else {
		host, _, _ := strings.Cut(s, ":")
		if host == "" || len(host) > 255 {
			return errf("invalid host in the URL")
		}
		for i := 0; i < len(host); i++ {
			if c := host[i]; !(isAlnum(c) || c == '-' || c == '.' || c == '_') {
				return errf("invalid host in the URL")
			}
		}
		u.Host, s = host, s[len(host):]
	}
	if s != "" {
		port = s[1:]
		if port == "" || len(port) > 5 || !allDigits(port) {
			return errf("invalid port in the URL")
		}
		if n, _ := strconv.Atoi(port); n > 65535 {
			return errf("invalid port in the URL")
		}
		u.Port = port
	}
	return nil
}

// parsePath parses what follows the server (or the whole of a
// path-absolute or relative URL): imessagepart [iurlauth] (RFC 5092 §11,
// RFC 4467 §9):
//
//	enc-mailbox [";UIDVALIDITY=" nz-number] "/;UID=" nz-number
//	  ["/;SECTION=" enc-section] ["/;PARTIAL=" number ["." nz-number]]
//	  [";EXPIRE=" date-time] [";URLAUTH=" access [":" mech ":" token]]
//
// A relative URL starts at ";UID=".
func (u *URL) parsePath(path string) error {
	base := len(u.Raw) - len(path)
	mbox, rest, _ := strings.Cut(path, ";")
	if u.Form == Relative {
		if mbox != "" {
			return errf("not an IMAP URL")
		}
	} else {
		enc := strings.TrimSuffix(mbox, "/")
		if enc == "" {
			return errf("URL without a mailbox")
		}
		name, err := decode(enc, isBchar)
		if err != nil || !utf8.ValidString(name) {
			return errf("invalid mailbox name in the URL")
		}
		u.Mailbox = name
		if rest == "" && !strings.Contains(path, ";") {
			return errf("URL of a mailbox, not of a message")
		}
	}
	// The parameters in order; slash says that the text before this
	// one ended with "/" (which separates UID, SECTION and PARTIAL from
	// what precedes them, and nothing else).
	slash := strings.HasSuffix(mbox, "/")
	const (
		pUIDValidity = iota
		pUID
		pSection
		pPartial
		pExpire
		pURLAuth
		pEnd
	)
	next := pUIDValidity
	if u.Form == Relative {
		next = pUID
	}
	off := base + len(mbox) // the ";" before rest
	params := strings.Split(rest, ";")
	for i, p := range params {
		start := off
		off += 1 + len(p)
		key, val, ok := strings.Cut(p, "=")
		if !ok {
			return errf("invalid URL parameter")
		}
		endsSlash := false
		var k int
		switch strings.ToUpper(key) {
		case "UIDVALIDITY":
			k = pUIDValidity
		case "UID":
			k = pUID
		case "SECTION":
			k = pSection
		case "PARTIAL":
			k = pPartial
		case "EXPIRE":
			k = pExpire
		case "URLAUTH":
			k = pURLAuth
		default:
			return errf("unknown URL parameter " + strings.ToUpper(key))
		}
		if k < next {
			return errf("URL parameter " + strings.ToUpper(key) + " out of order or repeated")
		}
		if k > pUID && next <= pUID {
			return errf("URL without ;UID=")
		}
		wantSlash := k == pUID || k == pSection || k == pPartial
		if u.Form == Relative && k == pUID {
			wantSlash = false
		}
		if slash != wantSlash {
			if wantSlash {
				return errf("missing / before ;" + strings.ToUpper(key) + "=")
			}
			return errf("unexpected / before ;" + strings.ToUpper(key) + "=")
		}
		if k == pUIDValidity || k == pUID || k == pSection {
			// These may be followed by "/" and the next parameter.
			if strings.HasSuffix(val, "/") && i+1 < len(params) {
				val, endsSlash = val[:len(val)-1], true
			}
		}
		var err error
		switch k {
		case pUIDValidity:
			u.UIDValidity, err = nzNumber(val)
		case pUID:
			u.UID, err = nzNumber(val)
		case pSection:
			err = u.parseSection(val)
		case pPartial:
			err = u.parsePartial(val)
		case pExpire:
			if i+1 >= len(params) {
				return errf(";EXPIRE= without ;URLAUTH=")
			}
			if u.Expire, err = time.Parse(time.RFC3339, val); err != nil {
				err = errf("invalid ;EXPIRE= time")
			}
		case pURLAuth:
			err = u.parseURLAuth(val, start+len(";URLAUTH="))
		}
		if err != nil {
			if _, ok := err.(*Error); !ok {
				err = errf("invalid ;" + strings.ToUpper(key) + "=")
			}
			return err
		}
		slash = endsSlash
		next = k + 1
	}
	if next <= pUID {
		return errf("URL without ;UID=")
	}
	if slash {
		return errf("URL ends with /")
	}
	return nil
}

func (u *URL) parseSection(val string) error {
	s, err := decode(val, isBchar)
	if err != nil || s == "" {
		return errf("invalid ;SECTION=")
	}
	spec, err := imap.ParseSection(s)
	if err != nil {
		return errf("invalid ;SECTION=")
	}
	u.Section, u.Spec = s, spec
	return nil
}

func (u *URL) parsePartial(val string) error {
	o, l, hasLen := strings.Cut(val, ".")
	off, err := number(o)
	if err != nil {
		return err
	}
	u.Partial.Offset = off
	if hasLen {
		if u.Partial.Length, err = nzNumber(l); err != nil {
			return err
		}
	}
	u.HasPartial = true
	return nil
}

// parseURLAuth parses access [":" mechanism ":" token]; at is the
// offset of val in Raw.
func (u *URL) parseURLAuth(val string, at int) error {
	if u.Form != Absolute {
		return errf(";URLAUTH= in a URL without a server")
	}
	access, verifier, hasVerifier := strings.Cut(val, ":")
	lower := strings.ToLower(access)
	switch {
	case strings.HasPrefix(lower, "submit+"):
		u.Access = AccessSubmit
	case strings.HasPrefix(lower, "user+"):
		u.Access = AccessUser
	case lower == "authuser":
		u.Access = AccessAuthUser
	case lower == "anonymous":
		u.Access = AccessAnonymous
	default:
		return errf("unknown URLAUTH access identifier (known: submit+USER, user+USER, authuser, anonymous)")
	}
	if u.Access == AccessSubmit || u.Access == AccessUser {
		enc := access[strings.IndexByte(access, '+')+1:]
		user, err := decode(enc, isAchar)
		if err != nil || enc == "" {
			return errf("invalid user in the URLAUTH access identifier")
		}
		u.AccessUser = user
	}
	u.rump = at + len(access)
	if !hasVerifier {
		return nil
	}
	mech, token, ok := strings.Cut(verifier, ":")
	if !ok || mech == "" || token == "" {
		return errf("invalid URLAUTH verifier (want :mechanism:token)")
	}
	for i := 0; i < len(mech); i++ {
		if c := mech[i]; !(isAlnum(c) || c == '-' || c == '.') {
			return errf("invalid URLAUTH mechanism")
		}
	}
	if len(token) < minToken {
		return errf("URLAUTH token too short")
	}
	for i := 0; i < len(token); i++ {
		if !isHex(token[i]) {
			return errf("URLAUTH token is not hexadecimal")
		}
	}
	u.Mechanism, u.Token = mech, token
	return nil
}

// nzNumber parses nz-number (RFC 9051 §9): 1 to 4294967295, no leading
// zero.
func nzNumber(s string) (uint32, error) {
	if s == "" || s[0] == '0' {
		return 0, errf("invalid number")
	}
	return number(s)
}

// number parses number: 0 to 4294967295, digits only.
func number(s string) (uint32, error) {
	if s == "" || len(s) > 10 || !allDigits(s) || len(s) > 1 && s[0] == '0' {
		return 0, errf("invalid number")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errf("invalid number")
	}
	return uint32(n), nil
}

// decode percent-decodes s, whose literal characters must pass ok.
func decode(s string, ok func(byte) bool) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		for i := 0; i < len(s); i++ {
			if !ok(s[i]) {
				return "", errf("invalid character")
			}
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", errf("invalid percent-encoding")
			}
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		if !ok(c) {
			return "", errf("invalid character")
		}
		b = append(b, c)
	}
	return string(b), nil
}

// isAchar: achar = uchar / "&" / "=" / "~", uchar = unreserved /
// sub-delims-sh (RFC 5092 §11; pct-encoded is handled by decode).
func isAchar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("-._~!$'()*+,&=", c) >= 0
}

// isBchar: bchar = achar / ":" / "@" / "/".
func isBchar(c byte) bool { return isAchar(c) || c == ':' || c == '@' || c == '/' }

func isAchars(s string) bool {
	_, err := decode(s, isAchar)
	return err == nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
