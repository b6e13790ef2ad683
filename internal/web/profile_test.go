package web

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// profilePairs reads a profile's keys and values in document order, as
// "key=value" with the element name for booleans ("true", "false");
// container values are left out.
func profilePairs(t *testing.T, data []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	var out []string
	var key, text string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("profile is not XML: %v\n%s", err, data)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			text = ""
			if key != "" && (tok.Name.Local == "true" || tok.Name.Local == "false") {
				out = append(out, key+"="+tok.Name.Local)
				key = ""
			}
			if tok.Name.Local == "dict" || tok.Name.Local == "array" {
				key = ""
			}
		case xml.CharData:
			text += string(tok)
		case xml.EndElement:
			switch tok.Name.Local {
			case "key":
				key = text
			case "string", "integer":
				out = append(out, key+"="+text)
				key = ""
			}
		}
	}
}

func has(pairs []string, p string) bool {
	for _, q := range pairs {
		if q == p {
			return true
		}
	}
	return false
}

// TestProfileServers: the profile names only the listeners it is given:
// IMAP with TLS, else with STARTTLS; submission only when it is served.
// Text is escaped; the identifier is stable for a device, the UUIDs new.
func TestProfileServers(t *testing.T) {
	a := profileAccount{Address: "a&b@example.org", Device: "phone", Password: "pw<>&",
		Mail: MailServers{Host: "mail.example.org", IMAP: 143, IMAPS: 993}}
	p := profilePairs(t, a.mobileconfig())
	for _, want := range []string{"IncomingMailServerPortNumber=993", "IncomingMailServerUseSSL=true",
		"IncomingPassword=pw<>&", "EmailAddress=a&b@example.org", "IncomingMailServerUsername=a&b@example.org"} {
		if !has(p, want) {
			t.Errorf("missing %s in %v", want, p)
		}
	}
	for _, q := range p {
		if strings.HasPrefix(q, "Outgoing") {
			t.Errorf("%s without submission", q)
		}
	}

	a.Mail.IMAPS = 0
	a.Mail.Submission = 587
	p = profilePairs(t, a.mobileconfig())
	for _, want := range []string{"IncomingMailServerPortNumber=143", "IncomingMailServerUseSSL=false",
		"OutgoingMailServerHostName=mail.example.org", "OutgoingMailServerPortNumber=587", "OutgoingMailServerUseSSL=false",
		"OutgoingMailServerAuthentication=EmailAuthPassword", "OutgoingPassword=pw<>&", "OutgoingPasswordSameAsIncomingPassword=true"} {
		if !has(p, want) {
			t.Errorf("missing %s in %v", want, p)
		}
	}
	a.Mail.Submissions = 465
	p2 := profilePairs(t, a.mobileconfig())
	if !has(p2, "OutgoingMailServerPortNumber=465") || !has(p2, "OutgoingMailServerUseSSL=true") {
		t.Errorf("submissions not preferred: %v", p2)
	}
	ids := func(p []string, prefix string) (out []string) {
		for _, q := range p {
			if v, ok := strings.CutPrefix(q, prefix+"="); ok {
				out = append(out, v)
			}
		}
		return out
	}
	if i1, i2 := ids(p, "PayloadIdentifier"), ids(p2, "PayloadIdentifier"); len(i1) != 2 || strings.Join(i1, " ") != strings.Join(i2, " ") ||
		!strings.HasPrefix(i1[1], "org.example.mail.postfach.") {
		t.Errorf("identifiers %v %v", i1, i2)
	}
	if u1, u2 := ids(p, "PayloadUUID"), ids(p2, "PayloadUUID"); len(u1) != 2 || u1[0] == u1[1] || u1[0] == u2[0] || u1[1] == u2[1] {
		t.Errorf("UUIDs %v %v", u1, u2)
	}
	other := profileAccount{Address: "a&b@example.org", Device: "laptop", Mail: a.Mail}
	if ids(profilePairs(t, other.mobileconfig()), "PayloadIdentifier")[1] == ids(p, "PayloadIdentifier")[1] {
		t.Error("two devices share a profile identifier")
	}
	if (MailServers{Host: "h", POP3S: 995}).canProfile() {
		t.Error("a profile without IMAP")
	}
}
