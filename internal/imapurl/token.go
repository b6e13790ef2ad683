package imapurl

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// Mechanism is the one URLAUTH mechanism postfach offers, "INTERNAL" (RFC
// 4467 §2.4.1): the token is made with the mailbox access key, which
// never leaves the server.
const Mechanism = "INTERNAL"

// tokenDomain separates this use of the key from any other one.
const tokenDomain = "postfach urlauth internal 1\x00"

// Sign returns the token of the INTERNAL mechanism for a rump URL of a
// mailbox (RFC 4467 §2.4.1, §5): HMAC-SHA-256 with the mailbox access key
// over the rump URL exactly as written and the mailbox's UIDVALIDITY, in
// lower-case hex (64 digits, 256 bits; RFC 4467 §9 asks for 32 at least).
// The UIDVALIDITY is part of it whether the URL names one or not, so a
// URL signed for one incarnation of a mailbox never reads another. A
// later algorithm would give tokens of another length, which tells them
// apart (RFC 4467 §2.4.1 asks for a way to change the algorithm).
func Sign(key []byte, uidValidity uint32, rump string) string {
	return hex.EncodeToString(mac(key, uidValidity, rump))
}

func mac(key []byte, uidValidity uint32, rump string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tokenDomain))
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uidValidity)
	m.Write(b[:])
	m.Write([]byte(rump))
	return m.Sum(nil)
}

// Verify reports whether u carries a valid INTERNAL token for the
// mailbox whose key and UIDVALIDITY are given (RFC 4467 §6: the token is
// computed again from the rump URL and compared). The comparison takes
// the same time wherever the tokens differ (hmac.Equal), so a client
// cannot find a token byte by byte by timing its guesses.
func Verify(key []byte, uidValidity uint32, u *URL) bool {
	if !u.Authorized() || !strings.EqualFold(u.Mechanism, Mechanism) || len(key) == 0 {
		return false
	}
	got, err := hex.DecodeString(u.Token)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	return hmac.Equal(got, mac(key, uidValidity, u.Rump()))
}
