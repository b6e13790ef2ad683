// Package message parses a stored message once, at delivery, into a Summary:
// the MIME structure with byte offsets of every part, the envelope, the
// preview and the header data SEARCH, SORT and THREAD need. The parser is
// streaming (bounded memory whatever the message size), never fails on
// malformed input (it describes what it can, as the RFCs allow), and the
// Summary has a compact binary encoding for the store.
//
// # Parsing
//
// Parse reads a message once and returns its Summary. Slicing the stored
// message with a Part's offsets gives exactly that part's header
// ([HeaderStart, BodyStart)) and body ([BodyStart, End)), which is what
// FETCH BODY[n.MIME], BODY[n.TEXT], BODY[n] and BINARY[n] need: protocol
// code streams those ranges from the blob and never re-parses. The CRLF
// before a delimiter line belongs to the delimiter (RFC 2046 §5.1.1), so a
// multipart child's body ends before it. Messages should be stored with
// CRLF line endings (NewCRLFReader converts), but bare LF is understood.
//
// What Parse keeps is bounded: at most 64 KiB of each header field it
// uses, a few KiB for the preview, MaxParts parts and MaxDepth levels of
// nesting. Beyond those limits the rest is described less finely, never
// rejected. Parse returns an error only when reading fails.
//
// # Helpers for the protocol layers
//
//   - NewCRLFReader: line-ending normalisation before storing (bare LF
//     and bare CR become CRLF).
//   - ReadHeader, ParseHeader, Header.AppendFields: raw header fields for
//     SEARCH HEADER and FETCH BODY[HEADER.FIELDS (...)] / .NOT.
//   - DecodeHeaderValue: RFC 2047 decoding to UTF-8.
//   - NewTextReader: a part body as UTF-8 text, for SEARCH BODY and TEXT.
//   - NewBinaryReader: transfer decoding for FETCH BINARY[]; an unknown
//     encoding is ErrUnknownEncoding, answered with [UNKNOWN-CTE].
//   - ParseAddressList, ParseDate, ParseMessageIDs: the pieces Parse uses.
//   - BaseSubject, SortDisplay, SortMailbox: SORT and THREAD keys
//     (RFC 5256, RFC 5957).
//
// Everything decoded for people (DecodeHeaderValue, NewTextReader, the
// preview, RFC 2231 parameter values) is valid UTF-8: unknown charsets and
// bytes that are not valid in the declared charset are read as UTF-8
// where valid and windows-1252 elsewhere.
//
// # Concurrency
//
// The package has no mutable package-level state; every function may be
// called from any number of goroutines. A Summary is not safe for
// concurrent modification, and the parts of one message share Envelope
// pointers (see Part.Envelope), so treat a parsed Summary as read-only.
package message
