package imap

// Response codes (the text between "[" and "]", RFC 9051 §7.1) that take no
// arguments, as the RFCs name them. Codes with arguments (UIDNEXT n,
// COPYUID ..., PERMANENTFLAGS (...)) are built by the server.
const (
	CodeAlert                = "ALERT"                // RFC 9051
	CodeAlreadyExists        = "ALREADYEXISTS"        // RFC 5530
	CodeAuthenticationFailed = "AUTHENTICATIONFAILED" // RFC 5530
	CodeAuthorizationFailed  = "AUTHORIZATIONFAILED"  // RFC 5530
	CodeCannot               = "CANNOT"               // RFC 5530
	CodeClientBug            = "CLIENTBUG"            // RFC 5530
	CodeClosed               = "CLOSED"               // RFC 7162 §3.2.11
	CodeContactAdmin         = "CONTACTADMIN"         // RFC 5530
	CodeCorruption           = "CORRUPTION"           // RFC 5530
	CodeExpired              = "EXPIRED"              // RFC 5530
	CodeExpungeIssued        = "EXPUNGEISSUED"        // RFC 5530
	CodeHasChildren          = "HASCHILDREN"          // RFC 9051
	CodeInUse                = "INUSE"                // RFC 5530
	CodeLimit                = "LIMIT"                // RFC 5530
	CodeNoModSeq             = "NOMODSEQ"             // RFC 7162
	CodeNonExistent          = "NONEXISTENT"          // RFC 5530
	CodeNoPerm               = "NOPERM"               // RFC 5530
	CodeNotSaved             = "NOTSAVED"             // RFC 5182
	CodeOverQuota            = "OVERQUOTA"            // RFC 5530
	CodeParse                = "PARSE"                // RFC 9051
	CodePrivacyRequired      = "PRIVACYREQUIRED"      // RFC 5530
	CodeReadOnly             = "READ-ONLY"            // RFC 9051
	CodeReadWrite            = "READ-WRITE"           // RFC 9051
	CodeServerBug            = "SERVERBUG"            // RFC 5530
	CodeTooBig               = "TOOBIG"               // RFC 4469, RFC 7889
	CodeTryCreate            = "TRYCREATE"            // RFC 9051
	CodeUIDNotSticky         = "UIDNOTSTICKY"         // RFC 4315
	CodeUnavailable          = "UNAVAILABLE"          // RFC 5530
	CodeUnknownCTE           = "UNKNOWN-CTE"          // RFC 3516
	CodeUseAttr              = "USEATTR"              // RFC 6154 §3
)

// UsesSequenceNumbers reports whether the search program refers to
// message sequence numbers (a sequence set other than under UID, "$"
// alone being the saved result, not numbers). While such a command runs
// the server must not send EXPUNGE (RFC 9051 §7.5.1).
func (k *SearchKey) UsesSequenceNumbers() bool {
	if k.Op == SearchSeq && !k.Set.IsSaved() {
		return true
	}
	for i := range k.Keys {
		if k.Keys[i].UsesSequenceNumbers() {
			return true
		}
	}
	return false
}
