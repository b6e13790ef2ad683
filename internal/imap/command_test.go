package imap

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/mail"
)

// newTestReader returns a Reader over s and a counter of continuation
// requests.
func newTestReader(s string, opt Options) (*Reader, *int) {
	n := new(int)
	r := NewReader(bufio.NewReader(strings.NewReader(s)), func() error { *n++; return nil }, opt)
	return r, n
}

func base(tag, name string) CommandBase    { return CommandBase{Tag: tag, Name: name} }
func uidBase(tag, name string) CommandBase { return CommandBase{Tag: tag, Name: name, UID: true} }

func seq(rs ...uint32) SeqSet {
	var s SeqSet
	for i := 0; i+1 < len(rs); i += 2 {
		s.Ranges = append(s.Ranges, SeqRange{rs[i], rs[i+1]})
	}
	return s
}

func uids(rs ...mail.UID) mail.UIDSet {
	var s mail.UIDSet
	for i := 0; i+1 < len(rs); i += 2 {
		s = append(s, mail.UIDRange{Lo: rs[i], Hi: rs[i+1]})
	}
	return s
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestReadCommandGood(t *testing.T) {
	tests := []struct {
		in   string
		want Command
	}{
		{"a1 CAPABILITY\r\n", &Capability{base("a1", "CAPABILITY")}},
		{"a1 noop\r\n", &Noop{base("a1", "NOOP")}},
		{"a1 NOOP\n", &Noop{base("a1", "NOOP")}}, // bare LF accepted
		{"\r\n\r\na1 NOOP\r\n", &Noop{base("a1", "NOOP")}},
		{"x] LOGOUT\r\n", &Logout{base("x]", "LOGOUT")}},
		{"a STARTTLS\r\n", &StartTLS{base("a", "STARTTLS")}},
		{"a UNAUTHENTICATE\r\n", &Unauthenticate{base("a", "UNAUTHENTICATE")}},
		{"a Namespace\r\n", &Namespace{base("a", "NAMESPACE")}},
		{"a IDLE\r\n", &Idle{base("a", "IDLE")}},
		{"a CHECK\r\n", &Check{base("a", "CHECK")}},
		{"a CLOSE\r\n", &Close{base("a", "CLOSE")}},
		{"a UNSELECT\r\n", &Unselect{base("a", "UNSELECT")}},
		{"a EXPUNGE\r\n", &Expunge{CommandBase: base("a", "EXPUNGE")}},
		{"a uid expunge 3000:3002,5\r\n", &Expunge{uidBase("a", "EXPUNGE"), seq(3000, 3002, 5, 5)}},

		// LOGIN with atoms, quoted strings and literals.
		{"a LOGIN fred secret\r\n", &Login{base("a", "LOGIN"), "fred", "secret"}},
		{`a LOGIN "fred smith" "p\"w\\x"` + "\r\n", &Login{base("a", "LOGIN"), "fred smith", `p"w\x`}},
		{"a LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man\r\n", &Login{base("a", "LOGIN"), "FRED FOOBAR", "fat man"}},
		{"a LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n", &Login{base("a", "LOGIN"), "FRED FOOBAR", "fat man"}},
		{"a LOGIN \"J\xc3\xbcrgen\" x]y\r\n", &Login{base("a", "LOGIN"), "Jürgen", "x]y"}},
		{"a LOGIN {0}\r\n {0}\r\n\r\n", &Login{base("a", "LOGIN"), "", ""}},

		{"a AUTHENTICATE plain\r\n", &Authenticate{CommandBase: base("a", "AUTHENTICATE"), Mechanism: "PLAIN"}},
		{"a AUTHENTICATE PLAIN AGZyZWQAcHc=\r\n", &Authenticate{base("a", "AUTHENTICATE"), "PLAIN", true, []byte("\x00fred\x00pw")}},
		{"a AUTHENTICATE PLAIN =\r\n", &Authenticate{base("a", "AUTHENTICATE"), "PLAIN", true, []byte{}}},

		{"a ENABLE condstore UTF8=ACCEPT IMAP4rev2\r\n", &Enable{base("a", "ENABLE"), []string{"CONDSTORE", "UTF8=ACCEPT", "IMAP4REV2"}}},
		{"a ID NIL\r\n", &ID{CommandBase: base("a", "ID")}},
		{"a ID ()\r\n", &ID{base("a", "ID"), []IDParam{}}},
		{`a ID ("name" "sodr" "version" NIL)` + "\r\n", &ID{base("a", "ID"), []IDParam{{"name", "sodr", false}, {"version", "", true}}}},
		{"a COMPRESS deflate\r\n", &Compress{base("a", "COMPRESS"), "DEFLATE"}},

		// SELECT, EXAMINE and their parameters (RFC 7162).
		{"a SELECT inbox\r\n", &Select{CommandBase: base("a", "SELECT"), Mailbox: "INBOX"}},
		{`a EXAMINE "Sent Items"` + "\r\n", &Select{CommandBase: base("a", "EXAMINE"), Mailbox: "Sent Items"}},
		{"a SELECT INBOX (CONDSTORE)\r\n", &Select{base("a", "SELECT"), "INBOX", true, nil}},
		{"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
			&Select{base("a", "SELECT"), "INBOX", false, &QResync{UIDValidity: 67890007, ModSeq: 20050715194045000, KnownUIDs: uids(41, 41, 43, 211, 214, 541)}}},
		{"a SELECT INBOX (QRESYNC (67890007 90060115194045000))\r\n",
			&Select{base("a", "SELECT"), "INBOX", false, &QResync{UIDValidity: 67890007, ModSeq: 90060115194045000}}},
		{"a SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))\r\n",
			&Select{base("a", "SELECT"), "INBOX", false, &QResync{
				UIDValidity: 67890007, ModSeq: 90060115194045000, KnownUIDs: uids(1, 29997),
				MatchSeqs: uids(5000, 5000, 7500, 7500, 9000, 9000, 9990, 9999),
				MatchUIDs: uids(15000, 15000, 22500, 22500, 27000, 27000, 29970, 29970, 29973, 29973, 29976, 29976, 29979, 29979, 29982, 29982, 29985, 29985, 29988, 29988, 29991, 29991, 29994, 29994, 29997, 29997),
			}}},
		{"a SELECT INBOX (QRESYNC (1 2 (1 5)))\r\n",
			&Select{base("a", "SELECT"), "INBOX", false, &QResync{UIDValidity: 1, ModSeq: 2, MatchSeqs: uids(1, 1), MatchUIDs: uids(5, 5)}}},

		{"a CREATE owatagusiam/\r\n", &Create{CommandBase: base("a", "CREATE"), Mailbox: "owatagusiam/"}},
		{`a CREATE MySpecial (USE (\drafts \Sent))` + "\r\n", &Create{base("a", "CREATE"), "MySpecial", []string{`\Drafts`, `\Sent`}}},
		{"a DELETE blurdybloop\r\n", &Delete{base("a", "DELETE"), "blurdybloop"}},
		{"a SUBSCRIBE #news.comp.mail.mime\r\n", &Subscribe{base("a", "SUBSCRIBE"), "#news.comp.mail.mime"}},
		{"a UNSUBSCRIBE &AOk-t&AOk-\r\n", &Unsubscribe{base("a", "UNSUBSCRIBE"), "&AOk-t&AOk-"}},
		{"a RENAME blurdybloop sarasoop\r\n", &Rename{base("a", "RENAME"), "blurdybloop", "sarasoop"}},
		{"a GETQUOTAROOT inbox\r\n", &GetQuotaRoot{base("a", "GETQUOTAROOT"), "INBOX"}},
		{`a GETQUOTA ""` + "\r\n", &GetQuota{base("a", "GETQUOTA"), ""}},
		{`a SETQUOTA "" (STORAGE 512 message 1000)` + "\r\n", &SetQuota{base("a", "SETQUOTA"), "", []QuotaLimit{{"STORAGE", 512}, {"MESSAGE", 1000}}}},
		{`a SETQUOTA "" ()` + "\r\n", &SetQuota{base("a", "SETQUOTA"), "", []QuotaLimit{}}},

		// LIST, with LIST-EXTENDED, LIST-STATUS and SPECIAL-USE.
		{`a LIST "" *` + "\r\n", &List{CommandBase: base("a", "LIST"), Patterns: []string{"*"}}},
		{`a LIST "" ""` + "\r\n", &List{CommandBase: base("a", "LIST"), Patterns: []string{""}}},
		{"a LIST ~/Mail/ %]\r\n", &List{CommandBase: base("a", "LIST"), Reference: "~/Mail/", Patterns: []string{"%]"}}},
		{`a LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN STATUS (MESSAGES UNSEEN))` + "\r\n",
			&List{base("a", "LIST"), "", []string{"%"}, ListSelectOptions{Subscribed: true, RecursiveMatch: true},
				ListReturnOptions{Children: true, Status: StatusMessages | StatusUnseen}, true}},
		{`a LIST "" ("INBOX" Drafts*)` + "\r\n", &List{base("a", "LIST"), "", []string{"INBOX", "Drafts*"}, ListSelectOptions{}, ListReturnOptions{}, true}},
		{`a LIST () "" % RETURN ()` + "\r\n", &List{base("a", "LIST"), "", []string{"%"}, ListSelectOptions{}, ListReturnOptions{}, true}},
		{`a LIST (special-use remote) "" * RETURN (SPECIAL-USE SUBSCRIBED)` + "\r\n",
			&List{base("a", "LIST"), "", []string{"*"}, ListSelectOptions{SpecialUse: true, Remote: true}, ListReturnOptions{SpecialUse: true, Subscribed: true}, true}},
		{`a LSUB "#news." "comp.mail.*"` + "\r\n", &Lsub{base("a", "LSUB"), "#news.", "comp.mail.*"}},

		{"a STATUS blurdybloop (UIDNEXT MESSAGES size HIGHESTMODSEQ APPENDLIMIT DELETED MAILBOXID RECENT UIDVALIDITY UNSEEN DELETED-STORAGE)\r\n",
			&Status{base("a", "STATUS"), "blurdybloop", StatusUIDNext | StatusMessages | StatusSize | StatusHighestModSeq | StatusAppendLimit | StatusDeleted | StatusMailboxID | StatusRecent | StatusUIDValidity | StatusUnseen | StatusDeletedStorage}},

		// METADATA.
		{`a GETMETADATA "" /shared/comment` + "\r\n", &GetMetadata{base("a", "GETMETADATA"), "", []string{"/shared/comment"}, -1, 0}},
		{"a GETMETADATA (MAXSIZE 1024 DEPTH infinity) INBOX (/private/a /shared/b)\r\n",
			&GetMetadata{base("a", "GETMETADATA"), "INBOX", []string{"/private/a", "/shared/b"}, 1024, MetadataDepthInfinity}},
		{"a GETMETADATA (DEPTH 1) INBOX /shared\r\n", &GetMetadata{base("a", "GETMETADATA"), "INBOX", []string{"/shared"}, -1, 1}},
		{"a SETMETADATA INBOX (/private/comment \"My new comment\" /shared/x NIL /shared/y ~{3}\r\na\x00b)\r\n",
			&SetMetadata{base("a", "SETMETADATA"), "INBOX", []MetadataEntry{{"/private/comment", "My new comment", false}, {"/shared/x", "", true}, {"/shared/y", "a\x00b", false}}}},

		// NOTIFY.
		{"a NOTIFY NONE\r\n", &Notify{CommandBase: base("a", "NOTIFY"), None: true}},
		{"a NOTIFY SET STATUS (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew MessageExpunge MailboxName)) (mailboxes (INBOX Sent) NONE) (personal (MailboxName subscriptionchange))\r\n",
			&Notify{base("a", "NOTIFY"), false, true, []NotifyGroup{
				{NotifySelected, nil, []NotifyEvent{
					{"MessageNew", []FetchItem{{Kind: FetchUID}, {Kind: FetchBodySection, Peek: true, Section: Section{Text: SectionHeaderFields, Fields: []string{"from", "to", "subject"}}}}},
					{"MessageExpunge", nil}}},
				{NotifySubtree, []string{"Lists"}, []NotifyEvent{{"MessageNew", nil}, {"MessageExpunge", nil}, {"MailboxName", nil}}},
				{NotifyMailboxes, []string{"INBOX", "Sent"}, nil},
				{NotifyPersonal, nil, []NotifyEvent{{"MailboxName", nil}, {"SubscriptionChange", nil}}},
			}}},
		{"a NOTIFY SET (inboxes (MessageNew MessageExpunge FlagChange x-Custom))\r\n",
			&Notify{base("a", "NOTIFY"), false, false, []NotifyGroup{
				{NotifyInboxes, nil, []NotifyEvent{{"MessageNew", nil}, {"MessageExpunge", nil}, {"FlagChange", nil}, {"x-Custom", nil}}}}}},

		// FETCH.
		{"a FETCH 1:* (FLAGS UID)\r\n", &Fetch{CommandBase: base("a", "FETCH"), Set: seq(1, Star), Items: []FetchItem{{Kind: FetchFlags}, {Kind: FetchUID}}}},
		{"a FETCH 2:4 ALL\r\n", &Fetch{CommandBase: base("a", "FETCH"), Set: seq(2, 4), Items: []FetchItem{{Kind: FetchFlags}, {Kind: FetchInternalDate}, {Kind: FetchRFC822Size}, {Kind: FetchEnvelope}}}},
		{"a FETCH 2 fast\r\n", &Fetch{CommandBase: base("a", "FETCH"), Set: seq(2, 2), Items: []FetchItem{{Kind: FetchFlags}, {Kind: FetchInternalDate}, {Kind: FetchRFC822Size}}}},
		{"a FETCH 2 FULL\r\n", &Fetch{CommandBase: base("a", "FETCH"), Set: seq(2, 2), Items: []FetchItem{{Kind: FetchFlags}, {Kind: FetchInternalDate}, {Kind: FetchRFC822Size}, {Kind: FetchEnvelope}, {Kind: FetchBody}}}},
		{"a FETCH 4:2,*:7,$ body\r\n", &Fetch{CommandBase: base("a", "FETCH"), Set: SeqSet{[]SeqRange{{4, 2}, {Star, 7}}, true}, Items: []FetchItem{{Kind: FetchBody}}}},
		{"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
			&Fetch{uidBase("a", "FETCH"), seq(1, Star), []FetchItem{{Kind: FetchFlags}}, true, 12345, true}},
		{"a FETCH 1 PREVIEW (CHANGEDSINCE 7)\r\n", &Fetch{base("a", "FETCH"), seq(1, 1), []FetchItem{{Kind: FetchPreview}}, true, 7, false}},
		{"a FETCH 1 (MODSEQ) (CHANGEDSINCE 0)\r\n", &Fetch{base("a", "FETCH"), seq(1, 1), []FetchItem{{Kind: FetchModSeq}}, true, 0, false}},
		{"a FETCH 1 BODY[]\r\n", &Fetch{CommandBase: base("a", "FETCH"), Set: seq(1, 1), Items: []FetchItem{{Kind: FetchBodySection}}}},
		{`a FETCH 1 (BODY.PEEK[1.2.HEADER.FIELDS (Subject "From")]<0.100> BODY[4.2.MIME] BODY[TEXT] BODY[HEADER.FIELDS.NOT (X-Foo)] BODY[3.HEADER] BODY[1.2.3])` + "\r\n",
			&Fetch{CommandBase: base("a", "FETCH"), Set: seq(1, 1), Items: []FetchItem{
				{Kind: FetchBodySection, Peek: true, Section: Section{Part: []uint32{1, 2}, Text: SectionHeaderFields, Fields: []string{"Subject", "From"}}, Partial: Partial{0, 100}},
				{Kind: FetchBodySection, Section: Section{Part: []uint32{4, 2}, Text: SectionMIME}},
				{Kind: FetchBodySection, Section: Section{Text: SectionTextBody}},
				{Kind: FetchBodySection, Section: Section{Text: SectionHeaderFieldsNot, Fields: []string{"X-Foo"}}},
				{Kind: FetchBodySection, Section: Section{Part: []uint32{3}, Text: SectionHeader}},
				{Kind: FetchBodySection, Section: Section{Part: []uint32{1, 2, 3}}},
			}}},
		{"a FETCH 1 (BINARY.PEEK[1.2]<5.10> BINARY.SIZE[1] binary[] BINARY[3]<0.1>)\r\n",
			&Fetch{CommandBase: base("a", "FETCH"), Set: seq(1, 1), Items: []FetchItem{
				{Kind: FetchBinary, Peek: true, Section: Section{Part: []uint32{1, 2}}, Partial: Partial{5, 10}},
				{Kind: FetchBinarySize, Section: Section{Part: []uint32{1}}},
				{Kind: FetchBinary},
				{Kind: FetchBinary, Section: Section{Part: []uint32{3}}, Partial: Partial{0, 1}},
			}}},
		{"a FETCH 1 (RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE ENVELOPE BODYSTRUCTURE INTERNALDATE PREVIEW (LAZY) PREVIEW SAVEDATE EMAILID THREADID)\r\n",
			&Fetch{CommandBase: base("a", "FETCH"), Set: seq(1, 1), Items: []FetchItem{
				{Kind: FetchRFC822}, {Kind: FetchRFC822Header}, {Kind: FetchRFC822Text}, {Kind: FetchRFC822Size},
				{Kind: FetchEnvelope}, {Kind: FetchBodyStructure}, {Kind: FetchInternalDate},
				{Kind: FetchPreview, Lazy: true}, {Kind: FetchPreview}, {Kind: FetchSaveDate},
				{Kind: FetchEmailID}, {Kind: FetchThreadID},
			}}},

		// STORE.
		{`a STORE 2:4 +FLAGS (\Deleted)` + "\r\n", &Store{CommandBase: base("a", "STORE"), Set: seq(2, 4), Op: StoreAdd, Flags: mail.Flags{`\Deleted`}}},
		{`a STORE 1 flags.silent \seen $Forwarded` + "\r\n", &Store{CommandBase: base("a", "STORE"), Set: seq(1, 1), Op: StoreReplace, Silent: true, Flags: mail.Flags{`$Forwarded`, `\Seen`}}},
		{`a UID STORE 1:* (UNCHANGEDSINCE 12121230045) -FLAGS.SILENT (\Seen)` + "\r\n",
			&Store{uidBase("a", "STORE"), seq(1, Star), StoreRemove, true, mail.Flags{`\Seen`}, true, 12121230045}},
		{`a STORE 1 FLAGS ()` + "\r\n", &Store{CommandBase: base("a", "STORE"), Set: seq(1, 1)}},
		{`a STORE 1 (UNCHANGEDSINCE 0) +FLAGS \Recent` + "\r\n", &Store{base("a", "STORE"), seq(1, 1), StoreAdd, false, mail.Flags{`\Recent`}, true, 0}},

		{"a COPY 2:4 MEETING\r\n", &Copy{base("a", "COPY"), seq(2, 4), "MEETING"}},
		{"a UID MOVE 42:69 foo\r\n", &Move{uidBase("a", "MOVE"), seq(42, 69), "foo"}},
		{"a COPY $ Trash\r\n", &Copy{base("a", "COPY"), SeqSet{Saved: true}, "Trash"}},

		// SEARCH.
		{`a SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"` + "\r\n",
			&Search{CommandBase: base("a", "SEARCH"), Key: SearchKey{Op: SearchAnd, Keys: []SearchKey{
				{Op: SearchFlag, Text: `\Flagged`}, {Op: SearchSince, Date: day(1994, 2, 1)},
				{Op: SearchNot, Keys: []SearchKey{{Op: SearchFrom, Text: "Smith"}}}}}}},
		{"a UID SEARCH RETURN (MIN MAX COUNT SAVE ALL) CHARSET utf-8 OR SEEN (TEXT {3}\r\nabc UID 1:5)\r\n",
			&Search{uidBase("a", "SEARCH"), SearchReturn{Given: true, Min: true, Max: true, Count: true, Save: true, All: true}, "UTF-8",
				SearchKey{Op: SearchOr, Keys: []SearchKey{{Op: SearchFlag, Text: `\Seen`},
					{Op: SearchAnd, Keys: []SearchKey{{Op: SearchText, Text: "abc"}, {Op: SearchUID, Set: seq(1, 5)}}}}}}},
		{"a SEARCH 1:5,$ (UNSEEN)\r\n", &Search{CommandBase: base("a", "SEARCH"), Key: SearchKey{Op: SearchAnd, Keys: []SearchKey{
			{Op: SearchSeq, Set: SeqSet{[]SeqRange{{1, 5}}, true}}, {Op: SearchNoFlag, Text: `\Seen`}}}}},
		{"a SEARCH HEADER Message-ID <x@y>\r\n", &Search{CommandBase: base("a", "SEARCH"), Key: SearchKey{Op: SearchHeader, Field: "Message-ID", Text: "<x@y>"}}},
		{`a SEARCH MODSEQ "/flags/\\draft" all 620162338` + "\r\n", &Search{CommandBase: base("a", "SEARCH"), Key: SearchKey{Op: SearchModSeq, Text: `/flags/\draft`, Field: "all", Number: 620162338}}},
		{"a SEARCH MODSEQ 5\r\n", &Search{CommandBase: base("a", "SEARCH"), Key: SearchKey{Op: SearchModSeq, Number: 5}}},
		{"a SEARCH OLDER 3600 YOUNGER 60\r\n", &Search{CommandBase: base("a", "SEARCH"), Key: SearchKey{Op: SearchAnd, Keys: []SearchKey{{Op: SearchOlder, Number: 3600}, {Op: SearchYounger, Number: 60}}}}},
		{`a SEARCH SAVEDBEFORE "1-Jan-2020" SAVEDON 31-dec-2019 SAVEDSINCE 01-Jan-2019 SAVEDATESUPPORTED` + "\r\n", &Search{CommandBase: base("a", "SEARCH"), Key: SearchKey{Op: SearchAnd, Keys: []SearchKey{
			{Op: SearchSavedBefore, Date: day(2020, 1, 1)}, {Op: SearchSavedOn, Date: day(2019, 12, 31)}, {Op: SearchSavedSince, Date: day(2019, 1, 1)}, {Op: SearchSaveDateSupported}}}}},
		{"a SEARCH EMAILID M6d99ac3275bb4e THREADID T64b478a75b7ea9\r\n", &Search{CommandBase: base("a", "SEARCH"), Key: SearchKey{Op: SearchAnd, Keys: []SearchKey{
			{Op: SearchEmailID, Text: "M6d99ac3275bb4e"}, {Op: SearchThreadID, Text: "T64b478a75b7ea9"}}}}},
		{"a SEARCH LARGER 100 SMALLER 9223372036854775807\r\n", &Search{CommandBase: base("a", "SEARCH"), Key: SearchKey{Op: SearchAnd, Keys: []SearchKey{
			{Op: SearchLarger, Number: 100}, {Op: SearchSmaller, Number: 9223372036854775807}}}}},
		{"a SEARCH KEYWORD $Junk UNKEYWORD foo ANSWERED UNANSWERED DELETED UNDELETED DRAFT UNDRAFT UNFLAGGED\r\n", &Search{CommandBase: base("a", "SEARCH"), Key: SearchKey{Op: SearchAnd, Keys: []SearchKey{
			{Op: SearchFlag, Text: "$Junk"}, {Op: SearchNoFlag, Text: "foo"},
			{Op: SearchFlag, Text: `\Answered`}, {Op: SearchNoFlag, Text: `\Answered`},
			{Op: SearchFlag, Text: `\Deleted`}, {Op: SearchNoFlag, Text: `\Deleted`},
			{Op: SearchFlag, Text: `\Draft`}, {Op: SearchNoFlag, Text: `\Draft`},
			{Op: SearchNoFlag, Text: `\Flagged`}}}}},
		{"a SEARCH NEW OLD RECENT ALL\r\n", &Search{CommandBase: base("a", "SEARCH"), Key: SearchKey{Op: SearchAnd, Keys: []SearchKey{{Op: SearchNew}, {Op: SearchOld}, {Op: SearchRecent}, {Op: SearchAll}}}}},
		{"a SEARCH BCC a BODY b CC c SUBJECT d TO e BEFORE 1-Jan-2000 ON 2-Jan-2000 SENTBEFORE 3-Jan-2000 SENTON 4-Jan-2000 SENTSINCE 5-Jan-2000\r\n",
			&Search{CommandBase: base("a", "SEARCH"), Key: SearchKey{Op: SearchAnd, Keys: []SearchKey{
				{Op: SearchBcc, Text: "a"}, {Op: SearchBody, Text: "b"}, {Op: SearchCc, Text: "c"}, {Op: SearchSubject, Text: "d"}, {Op: SearchTo, Text: "e"},
				{Op: SearchBefore, Date: day(2000, 1, 1)}, {Op: SearchOn, Date: day(2000, 1, 2)},
				{Op: SearchSentBefore, Date: day(2000, 1, 3)}, {Op: SearchSentOn, Date: day(2000, 1, 4)}, {Op: SearchSentSince, Date: day(2000, 1, 5)}}}}},
		{"a SEARCH RETURN () ALL\r\n", &Search{CommandBase: base("a", "SEARCH"), Return: SearchReturn{Given: true}, Key: SearchKey{Op: SearchAll}}},
		{"a SEARCH RETURN (PARTIAL -1:-100 COUNT) ALL\r\n", &Search{CommandBase: base("a", "SEARCH"), Return: SearchReturn{Given: true, Count: true, Partial: &PartialRange{-100, -1}}, Key: SearchKey{Op: SearchAll}}},
		{"a SEARCH RETURN (PARTIAL 1:500) ALL\r\n", &Search{CommandBase: base("a", "SEARCH"), Return: SearchReturn{Given: true, Partial: &PartialRange{1, 500}}, Key: SearchKey{Op: SearchAll}}},
		// CONTEXT and UPDATE (RFC 5267 §4.2, §4.3), alone and with result
		// options, for SEARCH and SORT.
		{"a SEARCH RETURN (CONTEXT) ALL\r\n", &Search{CommandBase: base("a", "SEARCH"), Return: SearchReturn{Given: true, Context: true}, Key: SearchKey{Op: SearchAll}}},
		{"B01 UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk\r\n", &Search{CommandBase: uidBase("B01", "SEARCH"), Return: SearchReturn{Given: true, Update: true, Count: true},
			Key: SearchKey{Op: SearchAnd, Keys: []SearchKey{{Op: SearchFlag, Text: `\Deleted`}, {Op: SearchFlag, Text: "$Junk"}}}}},
		{"a SEARCH RETURN (context update min partial 1:10 save) UNSEEN\r\n", &Search{CommandBase: base("a", "SEARCH"),
			Return: SearchReturn{Given: true, Context: true, Update: true, Min: true, Save: true, Partial: &PartialRange{1, 10}}, Key: SearchKey{Op: SearchNoFlag, Text: `\Seen`}}},
		{"a SEARCH CHARSET \"ISO-8859-1\" SUBJECT {3}\r\n\xe4\xf6\xfc\r\n", &Search{CommandBase: base("a", "SEARCH"), Charset: "ISO-8859-1", Key: SearchKey{Op: SearchSubject, Text: "\xe4\xf6\xfc"}}},

		// SORT and THREAD.
		{"a SORT (REVERSE DATE subject) UTF-8 ALL\r\n", &Sort{CommandBase: base("a", "SORT"), Criteria: []SortCriterion{{SortDate, true}, {SortSubject, false}}, Charset: "UTF-8", Key: SearchKey{Op: SearchAll}}},
		{"a UID SORT RETURN (COUNT) (DISPLAYFROM DISPLAYTO ARRIVAL CC FROM SIZE TO) us-ascii UNSEEN\r\n",
			&Sort{uidBase("a", "SORT"), SearchReturn{Given: true, Count: true}, []SortCriterion{{SortDisplayFrom, false}, {SortDisplayTo, false}, {SortArrival, false}, {SortCc, false}, {SortFrom, false}, {SortSize, false}, {SortTo, false}}, "US-ASCII", SearchKey{Op: SearchNoFlag, Text: `\Seen`}}},
		{"C01 UID SORT RETURN (UPDATE ALL) (DATE) UTF-8 UNDELETED\r\n", &Sort{uidBase("C01", "SORT"), SearchReturn{Given: true, Update: true, All: true}, []SortCriterion{{SortDate, false}}, "UTF-8", SearchKey{Op: SearchNoFlag, Text: `\Deleted`}}},
		{"a SORT RETURN (CONTEXT) (SIZE) UTF-8 ALL\r\n", &Sort{base("a", "SORT"), SearchReturn{Given: true, Context: true}, []SortCriterion{{SortSize, false}}, "UTF-8", SearchKey{Op: SearchAll}}},
		// CANCELUPDATE (RFC 5267 §4.3.5): quoted tags only.
		{`B04 CANCELUPDATE "B01"` + "\r\n", &CancelUpdate{base("B04", "CANCELUPDATE"), []string{"B01"}}},
		{`a cancelupdate "B01" "x]y" ""` + "\r\n", &CancelUpdate{base("a", "CANCELUPDATE"), []string{"B01", "x]y", ""}}},
		{"a THREAD references UTF-8 SINCE 5-MAR-2000\r\n", &Thread{base("a", "THREAD"), "REFERENCES", "UTF-8", SearchKey{Op: SearchSince, Date: day(2000, 3, 5)}}},
		{"a UID THREAD ORDEREDSUBJECT UTF-8 ALL\r\n", &Thread{uidBase("a", "THREAD"), "ORDEREDSUBJECT", "UTF-8", SearchKey{Op: SearchAll}}},
	}
	for _, tc := range tests {
		r, _ := newTestReader(tc.in+"z NOOP\r\n", Options{})
		got, err := r.ReadCommand()
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %#v\nwant %#v", tc.in, got, tc.want)
		}
		// The next command must follow exactly.
		next, err := r.ReadCommand()
		if err != nil || next.Base().Tag != "z" {
			t.Errorf("%q: command after it: %v, %v", tc.in, next, err)
		}
	}
}

func TestReadCommandBad(t *testing.T) {
	tests := []struct {
		in     string
		tag    string
		code   string
		reason string
	}{
		{"*\r\n", "", "", "invalid tag"},
		{"a+b NOOP\r\n", "", "", "invalid tag"},
		{"a\r\n", "a", "", "missing command"},
		{"a FOO\r\n", "a", "", "unknown command"},
		{"a UID FOO 1\r\n", "a", "", "unknown UID command"},
		{"a UID NOOP\r\n", "a", "", "unknown UID command"},
		{"a NOOP x\r\n", "a", "", "unexpected characters at end of command"},
		{"a NOOP \r\n", "a", "", "unexpected characters at end of command"},
		{"a NOOP {3}\r\n", "a", "", "unexpected literal at end of command"},
		{"a LOGIN fred\r\n", "a", "", "missing argument"},
		{"a LOGIN fred  pw\r\n", "a", "", "expected password"},
		{"a LOGIN \"fred x\r\n", "a", "", "unterminated quoted string"},
		{"a LOGIN \"a\\x\" b\r\n", "a", "", "invalid escape in quoted string"},
		{"a LOGIN \"\xff\" b\r\n", "a", "", "invalid UTF-8 in quoted string"},
		{"a LOGIN ~{3+}\r\nabc x\r\n", "a", "", "literal8 not allowed here"},
		{"a LOGIN ~{3}\r\n", "a", "", "literal8 not allowed here"},
		{"a LOGIN {3}\r\na\x00c x\r\n", "a", "", "NUL in literal"},
		{"a AUTHENTICATE PLAIN !!!\r\n", "a", "", "invalid base64 in initial response"},
		{"a ENABLE\r\n", "a", "", "missing argument"},
		{`a ID ("k")` + "\r\n", "a", "", "expected space"},
		{`a ID ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "v")` + "\r\n", "a", "", "ID field name too long"},
		{"a SELECT\r\n", "a", "", "missing argument"},
		{"a SELECT INBOX (FOO)\r\n", "a", "", "unknown select parameter"},
		{"a SELECT INBOX (QRESYNC (1 0))\r\n", "a", "", "mod-sequence must not be zero"},
		{"a SELECT INBOX (QRESYNC (1 2 1:*))\r\n", "a", "", "* not allowed in known UIDs"},
		{"a SELECT INBOX (QRESYNC (1 2 (1:2 5)))\r\n", "a", "", "sequence match data of different sizes"},
		{"a CREATE x (FOO)\r\n", "a", "", "unknown create parameter"},
		{"a LIST (RECURSIVEMATCH) \"\" *\r\n", "a", "", "RECURSIVEMATCH requires another selection option"},
		{"a LIST (FOO) \"\" *\r\n", "a", "", "unknown LIST selection option"},
		{"a LIST \"\" * RETURN (FOO)\r\n", "a", "", "unknown LIST return option"},
		{"a LIST \"\" * FOO\r\n", "a", "", "expected RETURN"},
		{"a STATUS INBOX ()\r\n", "a", "", "empty status item list"},
		{"a STATUS INBOX (FOO)\r\n", "a", "", "unknown status item"},
		{"a GETMETADATA (DEPTH 2) INBOX /a\r\n", "a", "", "invalid DEPTH"},
		{"a GETMETADATA INBOX \"/a*\"\r\n", "a", "", "invalid entry name"},
		{"a SETMETADATA INBOX ()\r\n", "a", "", "empty entry list"},
		{"a NOTIFY SET (selected (MessageNew))\r\n", "a", "", "MessageNew and MessageExpunge must be given together"},
		{"a NOTIFY SET (selected-delayed (FlagChange))\r\n", "a", "", "FlagChange requires MessageNew and MessageExpunge"},
		{"a NOTIFY SET (selected (MessageExpunge))\r\n", "a", "", "MessageNew and MessageExpunge must be given together"},
		{"a NOTIFY SET (selected (MailboxName))\r\n", "a", "", "only message events allowed for selected"},
		{"a NOTIFY SET (personal (MessageNew (UID) MessageExpunge))\r\n", "a", "", "MessageNew fetch attributes only for selected"},
		{"a NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed NONE)\r\n", "a", "", "selected given twice"},
		{"a NOTIFY FOO\r\n", "a", "", "expected SET or NONE"},
		{"a FETCH 1 (FLAGS\r\n", "a", "", "expected space or ) in fetch items"},
		{"a FETCH 0 FLAGS\r\n", "a", "", "sequence number must not be zero"},
		{"a FETCH 4294967296 FLAGS\r\n", "a", "", "sequence number out of range"},
		{"a FETCH x FLAGS\r\n", "a", "", "invalid sequence set"},
		{"a FETCH 1 (BODY[HEADER.FIELDS])\r\n", "a", "", "expected space"},
		{"a FETCH 1 (BODY[HEADER.FIELDS ()])\r\n", "a", "", "empty header list"},
		{"a FETCH 1 (BODY[HEADER.FIELDS (a:b)])\r\n", "a", "", "invalid header field name"},
		{"a FETCH 1 BODY[MIME]\r\n", "a", "", "MIME needs a part number"},
		{"a FETCH 1 BODY[1.FOO]\r\n", "a", "", "invalid section"},
		{"a FETCH 1 BODY[0]\r\n", "a", "", "part number must not be zero"},
		{"a FETCH 1 BODY.PEEK\r\n", "a", "", "expected ["},
		{"a FETCH 1 BINARY[TEXT]\r\n", "a", "", "expected part number"},
		{"a FETCH 1 FOO\r\n", "a", "", "unknown fetch item"},
		{"a FETCH 1 ()\r\n", "a", "", "expected fetch item"},
		{"a FETCH 1 FLAGS (VANISHED)\r\n", "a", "", "VANISHED requires UID FETCH"},
		{"a UID FETCH 1 FLAGS (VANISHED)\r\n", "a", "", "VANISHED requires CHANGEDSINCE"},
		{"a FETCH 1 FLAGS (FOO 1)\r\n", "a", "", "unknown fetch modifier"},
		{"a FETCH 1 BODY[]<0.0>\r\n", "a", "", "partial length must not be zero"},
		{"a FETCH 1 PREVIEW (LAZY FUZZY)\r\n", "a", "", "unknown PREVIEW modifier"},
		{"a FETCH 1 PREVIEW (FUZZY)\r\n", "a", "", "unknown fetch modifier"},
		{"a STORE 1 FLAGS\r\n", "a", "", "missing argument"},
		{"a STORE 1 XFLAGS (\\Seen)\r\n", "a", "", "expected FLAGS, +FLAGS or -FLAGS"},
		{"a STORE 1 (FOO 1) FLAGS (\\Seen)\r\n", "a", "", "unknown store modifier"},
		{"a STORE 1 FLAGS (\\Seen\r\n", "a", "", "expected space or ) in flag list"},
		{"a COPY 1\r\n", "a", "", "missing argument"},
		{"a SEARCH\r\n", "a", "", "missing argument"},
		{"a SEARCH FOO\r\n", "a", "", "unknown search key"},
		{"a SEARCH SINCE 30-Feb-2020\r\n", "a", "", "invalid day of month"},
		{"a SEARCH SINCE 1-Foo-2020\r\n", "a", "", "invalid month"},
		{"a SEARCH SINCE 1-Jan-20\r\n", "a", "", "invalid year"},
		{"a SEARCH NOT\r\n", "a", "", "missing argument"},
		{"a SEARCH OR ALL\r\n", "a", "", "missing argument"},
		{"a SEARCH " + strings.Repeat("NOT ", 100) + "ALL\r\n", "a", "", "nesting too deep"},
		{"a SEARCH " + strings.Repeat("(", 100) + "ALL" + strings.Repeat(")", 100) + "\r\n", "a", "", "nesting too deep"},
		{"a SEARCH RETURN (FOO) ALL\r\n", "a", "", "unknown search return option"},
		{"a SEARCH MODSEQ \"/flags/x\" foo 1\r\n", "a", "", "invalid entry type"},
		{"a SEARCH EMAILID a.b\r\n", "a", "", "unexpected characters at end of command"},
		{"a SEARCH HEADER \"\" x\r\n", "a", "", "invalid header field name"},
		{"a SORT () UTF-8 ALL\r\n", "a", "", "empty sort criteria"},
		{"a SEARCH RETURN (UPDATE 1) ALL\r\n", "a", "", "unknown search return option"},
		{"a CANCELUPDATE\r\n", "a", "", "missing argument"},
		{"a CANCELUPDATE B01\r\n", "a", "", "expected a quoted tag"},
		{"a CANCELUPDATE {3+}\r\nB01\r\n", "a", "", "expected a quoted tag"},
		{`a CANCELUPDATE "B01"  "B02"` + "\r\n", "a", "", "expected a quoted tag"},
		{`a CANCELUPDATE "B01" x` + "\r\n", "a", "", "expected a quoted tag"},
		{`a CANCELUPDATE "B01"x` + "\r\n", "a", "", "expected space"},
		{"a UID CANCELUPDATE \"B01\"\r\n", "a", "", "unknown UID command"},
		{"a SORT (FOO) UTF-8 ALL\r\n", "a", "", "unknown sort key"},
		{"a SORT (DATE) UTF-8\r\n", "a", "", "missing argument"},
		{"a APPEND\r\n", "a", "", "missing argument"},
	}
	for _, tc := range tests {
		r, _ := newTestReader(tc.in+"z NOOP\r\n", Options{})
		_, err := r.ReadCommand()
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: got %v, want a ParseError", tc.in, err)
			continue
		}
		if pe.Tag != tc.tag || pe.Status != BAD || pe.Code != tc.code || pe.Reason != tc.reason || pe.Fatal {
			t.Errorf("%q: got %+v, want tag %q reason %q", tc.in, pe, tc.tag, tc.reason)
		}
		next, err := r.ReadCommand()
		if err != nil || next.Base().Tag != "z" {
			t.Errorf("%q: no resync: %v, %v", tc.in, next, err)
		}
	}
}

func TestReadCommandEOF(t *testing.T) {
	r, _ := newTestReader("", Options{})
	if _, err := r.ReadCommand(); err != io.EOF {
		t.Fatalf("empty stream: %v, want io.EOF", err)
	}
	r, _ = newTestReader("a NOOP", Options{})
	if _, err := r.ReadCommand(); err != io.ErrUnexpectedEOF {
		t.Fatalf("partial line: %v, want io.ErrUnexpectedEOF", err)
	}
	r, _ = newTestReader("a LOGIN {5}\r\nab", Options{})
	if _, err := r.ReadCommand(); err != io.ErrUnexpectedEOF {
		t.Fatalf("partial literal: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestContinuationRequests(t *testing.T) {
	r, n := newTestReader("a LOGIN {4}\r\nfred {2+}\r\npw\r\n", Options{})
	if _, err := r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if *n != 1 {
		t.Fatalf("continuations = %d, want 1 (only for the synchronizing literal)", *n)
	}
}

func TestReadDone(t *testing.T) {
	r, _ := newTestReader("DONE\r\ndone\r\nFOO\r\nDONE {3+}\r\nabc\r\na NOOP\r\n", Options{})
	for i := 0; i < 2; i++ {
		if err := r.ReadDone(); err != nil {
			t.Fatalf("DONE %d: %v", i, err)
		}
	}
	for i := 0; i < 2; i++ {
		var pe *ParseError
		if err := r.ReadDone(); !errors.As(err, &pe) || pe.Reason != "expected DONE" {
			t.Fatalf("bad DONE %d: %v", i, err)
		}
	}
	if c, err := r.ReadCommand(); err != nil || c.Base().Name != "NOOP" {
		t.Fatalf("after DONE: %v %v", c, err)
	}
}

func TestReadSASLResponse(t *testing.T) {
	r, _ := newTestReader("AGZvbwBiYXI=\r\n\r\n*\r\n!!\r\nAGZvbwBiYXI\r\n", Options{})
	b, err := r.ReadSASLResponse()
	if err != nil || string(b) != "\x00foo\x00bar" {
		t.Fatalf("got %q, %v", b, err)
	}
	if b, err := r.ReadSASLResponse(); err != nil || len(b) != 0 {
		t.Fatalf("empty response: %q, %v", b, err)
	}
	if _, err := r.ReadSASLResponse(); err != ErrSASLCancelled {
		t.Fatalf("cancel: %v", err)
	}
	var pe *ParseError
	if _, err := r.ReadSASLResponse(); !errors.As(err, &pe) || pe.Reason != "invalid base64 in authentication response" {
		t.Fatalf("bad base64: %v", err)
	}
	if b, err := r.ReadSASLResponse(); err != nil || string(b) != "\x00foo\x00bar" {
		t.Fatalf("unpadded: %q, %v", b, err)
	}
}

func TestUsesSequenceNumbers(t *testing.T) {
	for in, want := range map[string]bool{
		"ALL":                   false,
		"UID 1:5":               false,
		"1:5":                   true,
		"OR SEEN NOT (UID 1 2)": true,
		"$":                     false,
		"OR SEEN NOT (UID 1)":   false,
	} {
		r, _ := newTestReader("a SEARCH "+in+"\r\n", Options{})
		cmd, err := r.ReadCommand()
		if err != nil {
			t.Fatal(err)
		}
		if got := cmd.(*Search).Key.UsesSequenceNumbers(); got != want {
			t.Errorf("%s: %v", in, got)
		}
	}
}

func TestSeqSetResolve(t *testing.T) {
	tests := []struct {
		in    string
		star  uint32
		saved mail.UIDSet
		want  string
	}{
		{"1:*", 10, nil, "1:10"},
		{"*:4,5:7", 10, nil, "4:10"},
		{"2,4:7,9,12:*", 15, nil, "2,4:7,9,12:15"},
		{"559:*", 100, nil, "100:559"},
		{"1:*", 0, nil, "1"},
		{"*", 0, nil, ""},
		{"$", 9, uids(3, 5), "3:5"},
		{"1,$", 9, uids(3, 5), "1,3:5"},
		{"4:2", 9, nil, "2:4"},
	}
	for _, tc := range tests {
		s, err := ParseSeqSet(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if s.String() != tc.in {
			t.Errorf("%q: String() = %q", tc.in, s.String())
		}
		if got := s.Resolve(tc.star, tc.saved).String(); got != tc.want {
			t.Errorf("%q with * = %d: %q, want %q", tc.in, tc.star, got, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "1:", ":1", "1,,2", "a", "1:$", "1 2", "-1"} {
		if _, err := ParseSeqSet(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
	s, _ := ParseSeqSet("3:*,17")
	if !s.HasStar() || s.Max() != 17 || s.IsSaved() {
		t.Errorf("HasStar/Max/IsSaved wrong for %v", s)
	}
}
