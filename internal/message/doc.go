// Package message parses a stored message once, at delivery, into a Summary:
// the MIME structure with byte offsets of every part, the envelope, the
// preview and the header data SEARCH, SORT and THREAD need. The parser is
// streaming (bounded memory whatever the message size), never fails on
// malformed input (it describes what it can, as the RFCs allow), and the
// Summary has a compact binary encoding for the store.
package message
