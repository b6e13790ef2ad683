package msgauth

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// BenchmarkSign: the signer's cost for a 64 kB message with both keys of
// `postfach dkim keygen` (RSA 2048 and ed25519), as the queue pays it
// per outgoing message (issue 15). go test -bench Sign ./internal/msgauth
func BenchmarkSign(b *testing.B) {
	keys, err := GenerateKeys("example.org", "postfach")
	if err != nil {
		b.Fatal(err)
	}
	s := NewSigner(memKeys{"example.org": keys}, nil)
	line := strings.Repeat("The body of a message of ordinary length, ", 2) + "\r\n"
	msg := []byte(testMsg + strings.Repeat(line, 64<<10/len(line)))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(context.Background(), "example.org", bytes.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
}
