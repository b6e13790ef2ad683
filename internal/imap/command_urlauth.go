package imap

import (
	"bufio"
	"errors"
	"strings"
)

// GenURLAuth is GENURLAUTH (RFC 4467 §6.2): URLs to sign, each with the
// mechanism to sign it with.
type GenURLAuth struct {
	CommandBase
	URLs []URLAuthRequest
}

// URLAuthRequest is one URL of a GENURLAUTH.
type URLAuthRequest struct {
	// URL is the rump URL as sent (it ends with ";URLAUTH=<access>").
	URL string
	// Mechanism is the mechanism name in upper case ("INTERNAL").
	Mechanism string
}

// ResetKey is RESETKEY (RFC 4467 §6.1).
type ResetKey struct {
	CommandBase
	// Mailbox is the mailbox whose key is reset, as sent; "" with
	// HasMailbox false resets every key of the user.
	Mailbox    string
	HasMailbox bool
	// Mechanisms are the mechanism names in upper case.
	Mechanisms []string
}

// URLFetch is URLFETCH (RFC 4467 §6.3, extended by RFC 5524 §3).
type URLFetch struct {
	CommandBase
	URLs []URLFetchItem
}

// URLFetchItem is one URL of a URLFETCH.
type URLFetchItem struct {
	URL string
	// Extended is set for the RFC 5524 form "(" url *(SP param) ")";
	// the parameters follow.
	Extended bool
	// BodyPartStructure, Body and Binary are the parameters given
	// (RFC 5524 §3.1). Body and Binary are never both set.
	BodyPartStructure, Body, Binary bool
}

// maxURLAuthItems bounds the URLs of one GENURLAUTH or URLFETCH (the
// line limit bounds them too; this keeps a command of tiny URLs from
// making the server open a thousand messages).
const maxURLAuthItems = 100

// parseGenURLAuth parses GENURLAUTH 1*(SP url-rump SP mechanism) (RFC
// 4467 §9).
func parseGenURLAuth(r *Reader, _ bool) Command {
	c := &GenURLAuth{}
	for {
		r.sp()
		if len(c.URLs) == maxURLAuthItems {
			fail("too many URLs")
		}
		u := r.astring("URL")
		r.sp()
		mech := upperString(r.atom("URLAUTH mechanism"))
		c.URLs = append(c.URLs, URLAuthRequest{URL: u, Mechanism: mech})
		if r.peek() != ' ' {
			return c
		}
	}
}

// parseResetKey parses RESETKEY [SP mailbox *(SP mechanism)] (RFC 4467
// §9).
func parseResetKey(r *Reader, _ bool) Command {
	c := &ResetKey{}
	if !r.maybeSP() {
		return c
	}
	c.Mailbox, c.HasMailbox = r.mailboxArg(), true
	for r.maybeSP() {
		if len(c.Mechanisms) == maxURLAuthItems {
			fail("too many mechanisms")
		}
		c.Mechanisms = append(c.Mechanisms, upperString(r.atom("URLAUTH mechanism")))
	}
	return c
}

// parseURLFetch parses URLFETCH 1*(SP url-fetch-arg) (RFC 4467 §9, RFC
// 5524 §5): url-fetch-arg = url-full / "(" url-full *(SP
// url-fetch-param) ")", url-fetch-param = "BODY" / "BINARY" /
// "BODYPARTSTRUCTURE". BODY and BINARY exclude each other (RFC 5524
// §3.1); other parameters are not known here and refused.
func parseURLFetch(r *Reader, _ bool) Command {
	c := &URLFetch{}
	for {
		r.sp()
		if len(c.URLs) == maxURLAuthItems {
			fail("too many URLs")
		}
		var it URLFetchItem
		if r.peek() == '(' {
			r.pos++
			it.Extended = true
			it.URL = r.astring("URL")
			for r.maybeSP() {
				var buf [32]byte
				p := r.keyword(buf[:], "URLFETCH parameter")
				var seen *bool
				switch string(p) {
				case "BODYPARTSTRUCTURE":
					seen = &it.BodyPartStructure
				case "BODY":
					seen = &it.Body
				case "BINARY":
					seen = &it.Binary
				default:
					fail("unknown URLFETCH parameter")
				}
				if *seen {
					fail("URLFETCH parameter given twice")
				}
				*seen = true
			}
			if it.Body && it.Binary {
				fail("BODY and BINARY exclude each other")
			}
			r.expect(')', ") to end the URLFETCH parameters")
		} else {
			it.URL = r.astring("URL")
		}
		c.URLs = append(c.URLs, it)
		if r.peek() != ' ' {
			return c
		}
	}
}

// ErrBadSection is returned by ParseSection for a specification that is
// not a section.
var ErrBadSection = errors.New("invalid section specification")

// ParseSection parses a section specification as a FETCH BODY[...] item
// holds it ("1.2", "1.2.HEADER", "HEADER.FIELDS (SUBJECT)"; RFC 9051
// §6.4.5), for the ;SECTION= of an IMAP URL (RFC 5092 §6).
func ParseSection(spec string) (Section, error) {
	if strings.ContainsAny(spec, "\r\n{[]") || len(spec) > 4096 {
		return Section{}, ErrBadSection
	}
	line := "x FETCH 1 BODY.PEEK[" + spec + "]\r\n"
	r := NewReader(bufio.NewReader(strings.NewReader(line)), nil, Options{})
	cmd, err := r.ReadCommand()
	if err != nil {
		return Section{}, ErrBadSection
	}
	f, ok := cmd.(*Fetch)
	if !ok || len(f.Items) != 1 || f.Items[0].Kind != FetchBodySection || f.Items[0].Partial != (Partial{}) {
		return Section{}, ErrBadSection
	}
	return f.Items[0].Section, nil
}
