package imapurl_test

import (
	"context"
	"errors"
	"io"

	"github.com/postfach/postfach/internal/imapurl"
	"github.com/postfach/postfach/internal/store"
)

// A submission server carrying out BURL (RFC 4468) for a user it has
// authenticated: the URL must be one that user signed for submit+USER
// (or user+USER, or authuser); any other answer is ErrInvalid, for which
// RFC 4468 §6 has 554 5.7.0.
func ExampleResolver_Fetch() {
	var st imapurl.Store // the server's store (*sqlite.Store)
	r := imapurl.New(imapurl.Options{Store: st, Hostname: "mail.example.org"})
	var acct *store.Account // the account the submission session signed in to
	url := "imap://alice%40example.org@mail.example.org/Drafts/;UID=7/;SECTION=2;URLAUTH=submit+alice%40example.org:internal:…"
	rc, n, err := r.Fetch(context.Background(), url, imapurl.Requester{Account: acct.ID, Name: acct.Name, Submit: true})
	if errors.Is(err, imapurl.ErrInvalid) {
		return // 554 5.7.0 Invalid URL
	}
	if err != nil {
		return // 451 4.4.0: try again later
	}
	defer rc.Close()
	_, _ = io.CopyN(io.Discard, rc, n) // into the message being submitted
}
