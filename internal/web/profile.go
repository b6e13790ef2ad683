package web

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"strings"
)

// An Apple configuration profile (.mobileconfig): an XML property list
// whose PayloadContent holds one com.apple.mail.managed payload, the mail
// account (Apple's Device Management reference, "Mail"). iOS, iPadOS and
// macOS install it after the user confirms in Settings; the profile is not
// signed, so they show it as "Not Verified" (a signature would need a
// certificate for code signing that most servers do not have).
//
// IncomingPassword and OutgoingPassword carry the device's password: the
// profile is fetched once, over HTTPS, from the device's setup link.

// ProfileContentType is the media type under which Safari offers a
// profile for installation.
const ProfileContentType = "application/x-apple-aspen-config"

// profileAccount is what goes into a profile.
type profileAccount struct {
	Address  string // the user name too
	Device   string
	Password string
	Mail     MailServers
}

// canProfile reports whether a profile can be made: it needs an IMAP
// server to point at.
func (m MailServers) canProfile() bool { return m.IMAPS != 0 || m.IMAP != 0 }

// plist writes an XML property list (Apple's PropertyList-1.0 DTD).
type plist struct {
	b     bytes.Buffer
	depth int
}

func (p *plist) indent() { p.b.WriteString(strings.Repeat("\t", p.depth)) }

func (p *plist) key(k string) { p.indent(); p.elem("key", k) }

func (p *plist) elem(name, text string) {
	p.b.WriteString("<" + name + ">")
	xml.EscapeText(&p.b, []byte(text))
	p.b.WriteString("</" + name + ">\n")
}

func (p *plist) str(k, v string) { p.key(k); p.indent(); p.elem("string", v) }

func (p *plist) integer(k string, v int) { p.key(k); p.indent(); p.elem("integer", fmt.Sprint(v)) }

func (p *plist) boolean(k string, v bool) {
	p.key(k)
	p.indent()
	if v {
		p.b.WriteString("<true/>\n")
	} else {
		p.b.WriteString("<false/>\n")
	}
}

func (p *plist) open(tag string) { p.indent(); p.b.WriteString("<" + tag + ">\n"); p.depth++ }

func (p *plist) close(tag string) { p.depth--; p.indent(); p.b.WriteString("</" + tag + ">\n") }

// newUUID returns a random (version 4) UUID in upper case, as profiles
// write them.
func newUUID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := strings.ToUpper(hex.EncodeToString(u[:]))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// profileIdentifier is the profile's PayloadIdentifier: the host name
// reversed (as identifiers are written), then a hash of the address and
// the device. It is the same for every profile of one device, so
// installing a newer one (`postfach device setup`) replaces the old
// instead of adding a second account.
func profileIdentifier(host, address, device string) string {
	labels := strings.Split(strings.ToLower(strings.TrimSuffix(host, ".")), ".")
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	h := sha256.Sum256([]byte(strings.ToLower(address) + "\x00" + device))
	return strings.Join(labels, ".") + ".postfach." + hex.EncodeToString(h[:8])
}

// mobileconfig builds the profile of a device. Only servers postfach
// serves are in it (MailServers has 0 for the others): IMAP with implicit
// TLS, else IMAP with STARTTLS (the device upgrades the connection itself;
// postfach takes no password before it); submission the same way, and no
// outgoing server at all while postfach does not serve submission, so the
// device is never sent to a port that cannot take its mail.
func (a profileAccount) mobileconfig() []byte {
	m := a.Mail
	id := profileIdentifier(m.Host, a.Address, a.Device)
	p := &plist{}
	p.b.WriteString(xml.Header)
	p.b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	p.b.WriteString(`<plist version="1.0">` + "\n")
	p.open("dict")
	p.key("PayloadContent")
	p.open("array")
	p.open("dict")
	p.str("PayloadType", "com.apple.mail.managed")
	p.integer("PayloadVersion", 1)
	p.str("PayloadIdentifier", id+".mail")
	p.str("PayloadUUID", newUUID())
	p.str("PayloadDisplayName", "Mail: "+a.Address)
	p.str("PayloadDescription", fmt.Sprintf("The mail account %s on the device %s, with the password of that device.", a.Address, a.Device))
	p.str("EmailAccountDescription", a.Address)
	p.str("EmailAccountType", "EmailTypeIMAP")
	p.str("EmailAddress", a.Address)
	p.str("IncomingMailServerHostName", m.Host)
	if m.IMAPS != 0 {
		p.integer("IncomingMailServerPortNumber", m.IMAPS) // RFC 8314 §3.2
		p.boolean("IncomingMailServerUseSSL", true)
	} else {
		p.integer("IncomingMailServerPortNumber", m.IMAP) // STARTTLS, RFC 9051 §6.2.1
		p.boolean("IncomingMailServerUseSSL", false)
	}
	p.str("IncomingMailServerAuthentication", "EmailAuthPassword")
	p.str("IncomingMailServerUsername", a.Address)
	p.str("IncomingPassword", a.Password)
	if m.Submissions != 0 || m.Submission != 0 {
		p.str("OutgoingMailServerHostName", m.Host)
		if m.Submissions != 0 {
			p.integer("OutgoingMailServerPortNumber", m.Submissions) // RFC 8314 §3.3
			p.boolean("OutgoingMailServerUseSSL", true)
		} else {
			p.integer("OutgoingMailServerPortNumber", m.Submission) // RFC 6409, STARTTLS
			p.boolean("OutgoingMailServerUseSSL", false)
		}
		p.str("OutgoingMailServerAuthentication", "EmailAuthPassword")
		p.str("OutgoingMailServerUsername", a.Address)
		p.str("OutgoingPassword", a.Password)
		p.boolean("OutgoingPasswordSameAsIncomingPassword", true)
	}
	p.close("dict")
	p.close("array")
	p.str("PayloadType", "Configuration")
	p.integer("PayloadVersion", 1)
	p.str("PayloadIdentifier", id)
	p.str("PayloadUUID", newUUID())
	p.str("PayloadDisplayName", "Mail for "+a.Address)
	p.str("PayloadDescription", fmt.Sprintf("Sets up %s on this device (%s) to read mail from %s.", a.Address, a.Device, m.Host))
	p.str("PayloadOrganization", m.Host)
	p.boolean("PayloadRemovalDisallowed", false)
	p.close("dict")
	p.b.WriteString("</plist>\n")
	return p.b.Bytes()
}
