// Package imapsearch evaluates IMAP SEARCH programs, SORT and THREAD for
// internal/imapserver, and shapes their results (ESEARCH, ESORT, PARTIAL,
// SEARCHRES). It works on what the parser (internal/imap) produces and on
// the data the store keeps per message (store.Message, message.Summary,
// the stored body); it does no I/O of its own beyond reading the bodies a
// Source opens.
//
// # Searching
//
//	prog, err := imapsearch.Compile(cmd.Key, imapsearch.Options{
//		Charset: cmd.Charset, NumMessages: n, MaxUID: maxUID, Saved: saved,
//	})
//	// errors.Is(err, imapsearch.ErrBadCharset): NO [BADCHARSET (UTF-8 US-ASCII)]
//	switch prog.Need() { ... } // load summaries only for NeedSummary and up
//	var m imapsearch.Message // reused for every message
//	for each message {
//		m.Seq, m.Meta, m.Recent, m.Source = seq, meta, recent, src
//		ok, err := prog.Match(ctx, &m)
//		// close the body if src opened one
//	}
//
// Need tells the server what the program reads: NeedMeta programs (flags,
// UID and sequence sets, dates, sizes, MODSEQ, EMAILID) never call the
// Source, so the server need not load summaries or open bodies, and Match
// allocates nothing. AND and OR evaluate their cheapest operands first, so
// "UNSEEN BODY x" opens only the bodies of unseen messages.
//
// Semantics chosen where the RFCs leave room:
//
//   - Dates. BEFORE, ON, SINCE and the SAVED* keys compare calendar dates,
//     "disregarding time and timezone" (RFC 9051 §6.4.4): the date of the
//     timestamp in the zone it carries (the store keeps the offset given at
//     APPEND or delivery), or in Options.Location when the server sets one.
//     SENTBEFORE, SENTON and SENTSINCE use the date written in the Date
//     header (the sender's calendar day); a message without a parseable
//     Date header matches none of them. SAVED* fall back to the internal
//     date when there is no save date (RFC 8514 §4.3). OLDER and YOUNGER
//     count seconds from Options.Now (RFC 5032).
//   - Strings match as substrings, case-insensitively by Unicode simple
//     case folding (the equivalence of strings.EqualFold), over decoded
//     text: RFC 2047 words in headers are decoded, bodies are transfer
//     decoded and converted to UTF-8. Search strings are converted from the
//     command's CHARSET, which may be any charset golang.org/x/text knows.
//   - FROM, TO, CC, BCC and SUBJECT use the envelope (the first field of
//     that name); address lists match as written out: decoded display
//     names and addr-specs, "Name <local@domain>, ...", group names
//     included. RFC 9051 §6.4.4 speaks of the field's contents; matching
//     the parsed form (as Dovecot does) makes "Name <addr>" and a folded
//     or encoded field match alike. A name given as a comment
//     ("addr (Name)", see message.ParseAddressList) is the display name;
//     other comments are not searched.
//   - HEADER matches the unfolded, decoded value of every field of that
//     name; HEADER name "" matches messages that have the field.
//   - BODY searches text/* parts and message/* parts (an encapsulated
//     message's header and body); parts of other media types are skipped,
//     as RFC 9051 §6.4.4 allows. TEXT searches the message's header
//     fields ("Name: value") and then BODY. Bodies are streamed through a
//     fixed buffer and reading stops at the first match.
//   - MODSEQ ignores the entry name and type: postfach keeps one MODSEQ
//     per message (RFC 7162 §3.1.5 allows this).
//
// # Sorting and threading
//
// Sort orders Items by SORT criteria (RFC 5256, RFC 5957); BuildThreads
// threads them by ORDEREDSUBJECT or REFERENCES (RFC 5256 §3); WriteThread
// writes the THREAD response. Strings collate by i;unicode-casemap as RFC
// 5256 §7 requires (for ASCII this is i;ascii-casemap). Both compute each
// message's keys once and run in O(n log n) (REFERENCES walks ancestor
// chains to avoid loops, which costs the thread depth per link).
//
// # Results
//
// Shape turns the matching messages and the RETURN options into ESEARCH
// data (MIN, MAX, ALL, COUNT, PARTIAL, MODSEQ) and the set SAVE stores;
// ESearch.Write, WriteSearch and AppendNumSet write them.
//
// # Search contexts
//
// For RFC 5267 contexts (SEARCH and SORT with RETURN (UPDATE)) the server
// keeps a result and updates it from the messages that changed, with
// Program.Match on those alone: a program's match of a message depends
// only on that message, unless Program.DependsOnPositions (sequence
// numbers, "*": compile again and re-run after messages arrive or go) or
// Program.DependsOnTime (OLDER, YOUNGER: changes with the clock). A SEARCH
// result is a UID set, reported at position 0 (SearchRuns); a SORT result
// is an OrderedResult, which keeps each member's SortKey, an
// order-preserving byte encoding of its sort values, so Insert and Remove
// give the ADDTO and REMOVEFROM positions without sorting again.
// Update.Write writes the unsolicited ESEARCH response.
//
// # Concurrency
//
// The package has no mutable package-level state. A Program keeps
// per-message state during Match and must be used by one goroutine at a
// time; compile one per command.
package imapsearch
