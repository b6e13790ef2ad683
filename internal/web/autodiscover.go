package web

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
)

// Outlook's autodiscover in its "plain old XML" form ([MS-OXDSCLI]): the
// client POSTs a Request naming the address and the response schema it
// accepts, and gets an Account of type email with one Protocol element per
// protocol (IMAP, POP3, SMTP). Outlook takes the first Protocol of each
// Type, so each gets one: implicit TLS when it is offered, else STARTTLS.

// Autodiscover namespaces.
const (
	AutodiscoverRequestNS  = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	AutodiscoverNS         = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	AutodiscoverOutlookNS  = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	maxAutodiscoverRequest = 16 << 10
)

// AutodiscoverRequest is the body Outlook POSTs.
type AutodiscoverRequest struct {
	XMLName xml.Name `xml:"Autodiscover"`
	Request struct {
		EMailAddress             string `xml:"EMailAddress"`
		AcceptableResponseSchema string `xml:"AcceptableResponseSchema"`
	} `xml:"Request"`
}

// AutodiscoverResponse is the answer.
type AutodiscoverResponse struct {
	XMLName  xml.Name            `xml:"Autodiscover"`
	Xmlns    string              `xml:"xmlns,attr"`
	Response AutodiscoverOutlook `xml:"Response"`
}

// AutodiscoverOutlook is the Response element in the Outlook schema.
type AutodiscoverOutlook struct {
	Xmlns   string              `xml:"xmlns,attr"`
	Account AutodiscoverAccount `xml:"Account"`
}

// AutodiscoverAccount is the Account element.
type AutodiscoverAccount struct {
	AccountType string                 `xml:"AccountType"`
	Action      string                 `xml:"Action"`
	Protocols   []AutodiscoverProtocol `xml:"Protocol"`
}

// AutodiscoverProtocol is one Protocol element. SSL says whether to use
// TLS at all; Encryption, which newer Outlooks read first, says which
// kind: "SSL" (implicit TLS) or "TLS" (STARTTLS).
type AutodiscoverProtocol struct {
	Type           string `xml:"Type"`
	Server         string `xml:"Server"`
	Port           int    `xml:"Port"`
	DomainRequired string `xml:"DomainRequired"`
	LoginName      string `xml:"LoginName"`
	SPA            string `xml:"SPA"`
	SSL            string `xml:"SSL"`
	Encryption     string `xml:"Encryption"`
	AuthRequired   string `xml:"AuthRequired"`
}

// autodiscoverAccount builds the Account for an address. It depends only
// on the configuration and echoes the address as the login name, so it is
// the same for an existing and a made-up address.
func (m MailServers) autodiscoverAccount(addr string) AutodiscoverAccount {
	acct := AutodiscoverAccount{AccountType: "email", Action: "settings"}
	add := func(typ string, implicit, starttls int) {
		p := AutodiscoverProtocol{Type: typ, Server: m.Host, DomainRequired: "off", LoginName: addr,
			SPA: "off", SSL: "on", AuthRequired: "on"}
		switch {
		case implicit != 0:
			p.Port, p.Encryption = implicit, "SSL"
		case starttls != 0:
			p.Port, p.Encryption = starttls, "TLS"
		default:
			return
		}
		acct.Protocols = append(acct.Protocols, p)
	}
	add("IMAP", m.IMAPS, m.IMAP)
	add("POP3", m.POP3S, m.POP3)
	add("SMTP", m.Submissions, m.Submission)
	return acct
}

// autodiscover answers POST /autodiscover/autodiscover.xml.
func (s *Server) autodiscover(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "autodiscover takes a POST of an Autodiscover request", http.StatusMethodNotAllowed)
		return
	}
	var req AutodiscoverRequest
	err := xml.NewDecoder(http.MaxBytesReader(w, r.Body, maxAutodiscoverRequest)).Decode(&req)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	case err == io.EOF:
		http.Error(w, "empty request: want an Autodiscover request", http.StatusBadRequest)
		return
	case err != nil:
		http.Error(w, "the request is not an Autodiscover XML document", http.StatusBadRequest)
		return
	}
	if schema := strings.TrimSpace(req.Request.AcceptableResponseSchema); schema != "" && schema != AutodiscoverOutlookNS {
		// The mobilesync schema asks for Exchange ActiveSync, which
		// postfach does not speak.
		http.Error(w, "only the Outlook response schema ("+AutodiscoverOutlookNS+") is offered", http.StatusBadRequest)
		return
	}
	addr := strings.TrimSpace(req.Request.EMailAddress)
	domain, ok := addressDomain(addr)
	if !ok {
		http.Error(w, "EMailAddress is not an address", http.StatusBadRequest)
		return
	}
	if !s.local(domain) {
		http.NotFound(w, r)
		return
	}
	writeXML(w, r, AutodiscoverResponse{Xmlns: AutodiscoverNS, Response: AutodiscoverOutlook{
		Xmlns: AutodiscoverOutlookNS, Account: s.opt.Mail.autodiscoverAccount(addr)}})
}
