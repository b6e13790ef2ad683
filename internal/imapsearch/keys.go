package imapsearch

import (
	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/message"
)

// Keys are what SORT and THREAD derive from one message's summary:
// collation keys of its subject and addresses, and its normalised
// Message-ID and references. They depend on the summary alone, so a
// server that keeps summaries may keep them alongside and hand them to
// Sort and BuildThreads in Item.Keys; an item without them gets them
// computed, the same way, for each call.
type Keys struct {
	sort          [imap.SortDisplayTo + 1]string // string keys by imap.SortKey
	threadSubject string
	reply         bool
	msgID         string
	refs          []string
}

// sortStringKeys are the SORT keys whose key is a string.
var sortStringKeys = []imap.SortKey{imap.SortSubject, imap.SortFrom, imap.SortTo, imap.SortCc, imap.SortDisplayFrom, imap.SortDisplayTo}

// NewKeys computes the keys of a message from its summary (nil: a
// message without headers).
func NewKeys(sum *message.Summary) *Keys {
	it := &Item{Summary: sum}
	k := &Keys{}
	for _, sk := range sortStringKeys {
		k.sort[sk] = stringKey(it, sk)
	}
	k.threadSubject, k.reply = threadSubject(it)
	k.msgID, k.refs = idsOf(sum)
	return k
}

// Size is about the memory the keys take.
func (k *Keys) Size() int {
	n := 200 + len(k.threadSubject) + len(k.msgID)
	for _, s := range k.sort {
		n += len(s)
	}
	for _, r := range k.refs {
		n += 16 + len(r)
	}
	return n
}
