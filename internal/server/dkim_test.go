package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/postfach/postfach/internal/store"
	"github.com/postfach/postfach/internal/testenv"
)

// TestDKIMSignerOfServer: keys made through the admin API sign the
// server's outgoing mail (Server.Signer, for the outbound queue), the
// records it prints verify the signatures, and no private key reaches the
// log.
func TestDKIMSignerOfServer(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	keys, err := env.Server.Admin().DKIMKeygen(ctx, "Example.org", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keygen made %+v", keys)
	}
	recs := map[string]string{}
	for _, k := range keys {
		recs[k.DNSName] = k.DNSValue
	}
	if _, err := env.Server.Admin().DKIMKeygen(ctx, "elsewhere.example", ""); err == nil {
		t.Fatal("keys made for a domain that is not local")
	}
	if _, err := env.Server.Admin().DKIMKeygen(ctx, "example.org", ""); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second keygen with the same selector: %v", err)
	}

	msg := "From: alice@example.org\r\nTo: bob@example.com\r\nSubject: hi\r\nDate: Mon, 07 Dec 2026 18:00:00 +0000\r\n\r\nhello\r\n"
	sig, err := env.Server.Signer().Sign(ctx, "example.org", strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := dkim.VerifyWithOptions(strings.NewReader(string(sig)+msg), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		return []string{recs[strings.TrimSuffix(name, ".")]}, nil
	}})
	if err != nil || len(vs) != 2 {
		t.Fatalf("verify: %v, %d signatures", err, len(vs))
	}
	for _, v := range vs {
		if v.Err != nil {
			t.Fatalf("signature of %s: %v", v.Domain, v.Err)
		}
	}
	if sig, err := env.Server.Signer().Sign(ctx, "example.net", strings.NewReader(msg)); err != nil || sig != nil {
		t.Fatalf("domain without keys: %q, %v", sig, err)
	}

	// Secrets stay out of the log.
	stored, err := env.Store().(store.DKIMKeys).DKIMKeys(ctx, "example.org")
	if err != nil {
		t.Fatal(err)
	}
	logs := env.Logs()
	for _, k := range stored {
		b64 := base64.StdEncoding.EncodeToString(k.PrivateKey)
		if strings.Contains(logs, b64[len(b64)-32:]) || bytes.Contains([]byte(logs), k.PrivateKey[len(k.PrivateKey)-24:]) {
			t.Fatalf("private key of %s in the log", k.Selector)
		}
	}
}
