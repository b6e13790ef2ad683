package imapsearch

import (
	"bufio"
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
)

func results(seqs ...uint32) []Result {
	out := make([]Result, len(seqs))
	for i, s := range seqs {
		out[i] = Result{Seq: s, UID: mail.UID(s * 10), ModSeq: mail.ModSeq(100 + s%7)}
	}
	return out
}

func writeES(t *testing.T, es *ESearch, tag string) string {
	t.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := es.Write(imap.NewEncoder(w), tag); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestShapeESearch(t *testing.T) {
	p := func(a, b int64) *imap.PartialRange { return &imap.PartialRange{First: a, Last: b} }
	asc := results(2, 3, 4, 10, 11, 15)
	tests := []struct {
		name    string
		ret     imap.SearchReturn
		res     []Result
		uid     bool
		sorted  bool
		modseq  bool
		want    string
		saved   mail.UIDSet
		wantErr error
	}{
		{name: "RETURN () is ALL", ret: imap.SearchReturn{Given: true}, res: asc,
			want: `* ESEARCH (TAG "A1") ALL 2:4,10:11,15` + "\r\n"},
		{name: "MIN COUNT", ret: imap.SearchReturn{Given: true, Min: true, Count: true}, res: asc,
			want: `* ESEARCH (TAG "A1") MIN 2 COUNT 6` + "\r\n"},
		{name: "UID MIN MAX", ret: imap.SearchReturn{Given: true, Min: true, Max: true}, res: asc, uid: true,
			want: `* ESEARCH (TAG "A1") UID MIN 20 MAX 150` + "\r\n"},
		{name: "no match: only COUNT", ret: imap.SearchReturn{Given: true, Min: true, Max: true, All: true, Count: true},
			want: `* ESEARCH (TAG "A1") COUNT 0` + "\r\n"},
		{name: "no match, no COUNT", ret: imap.SearchReturn{Given: true, Min: true},
			want: `* ESEARCH (TAG "A1")` + "\r\n"},
		{name: "CONTEXT alone is ALL", ret: imap.SearchReturn{Given: true, Context: true}, res: asc,
			want: `* ESEARCH (TAG "A1") ALL 2:4,10:11,15` + "\r\n"},
		{name: "UPDATE alone: no result data", ret: imap.SearchReturn{Given: true, Update: true}, res: asc, uid: true, modseq: true,
			want: `* ESEARCH (TAG "A1") UID` + "\r\n"},
		{name: "UPDATE SAVE saves all", ret: imap.SearchReturn{Given: true, Update: true, Save: true}, res: asc,
			want: `* ESEARCH (TAG "A1")` + "\r\n", saved: mail.NewUIDSet(20, 30, 40, 100, 110, 150)},
		{name: "UPDATE CONTEXT COUNT", ret: imap.SearchReturn{Given: true, Update: true, Context: true, Count: true}, res: asc,
			want: `* ESEARCH (TAG "A1") COUNT 6` + "\r\n"},
		{name: "SAVE alone sends nothing", ret: imap.SearchReturn{Given: true, Save: true}, res: asc,
			want: "", saved: mail.NewUIDSet(20, 30, 40, 100, 110, 150)},
		{name: "SAVE MIN saves the minimum", ret: imap.SearchReturn{Given: true, Save: true, Min: true}, res: asc,
			want: `* ESEARCH (TAG "A1") MIN 2` + "\r\n", saved: mail.NewUIDSet(20)},
		{name: "SAVE MIN MAX", ret: imap.SearchReturn{Given: true, Save: true, Min: true, Max: true}, res: asc,
			want: `* ESEARCH (TAG "A1") MIN 2 MAX 15` + "\r\n", saved: mail.NewUIDSet(20, 150)},
		{name: "SAVE COUNT MIN saves all", ret: imap.SearchReturn{Given: true, Save: true, Min: true, Count: true}, res: asc,
			want: `* ESEARCH (TAG "A1") MIN 2 COUNT 6` + "\r\n", saved: mail.NewUIDSet(20, 30, 40, 100, 110, 150)},
		{name: "PARTIAL first page", ret: imap.SearchReturn{Given: true, Partial: p(1, 4)}, res: asc, uid: true,
			want: `* ESEARCH (TAG "A1") UID PARTIAL (1:4 20,30,40,100)` + "\r\n"},
		{name: "PARTIAL from the end", ret: imap.SearchReturn{Given: true, Partial: p(-3, -1)}, res: asc,
			want: `* ESEARCH (TAG "A1") PARTIAL (-1:-3 10:11,15)` + "\r\n"},
		{name: "PARTIAL beyond the end", ret: imap.SearchReturn{Given: true, Partial: p(100, 200)}, res: asc,
			want: `* ESEARCH (TAG "A1") PARTIAL (100:200 NIL)` + "\r\n"},
		{name: "PARTIAL overlapping the end", ret: imap.SearchReturn{Given: true, Partial: p(5, 10)}, res: asc,
			want: `* ESEARCH (TAG "A1") PARTIAL (5:10 11,15)` + "\r\n"},
		{name: "SAVE PARTIAL MIN", ret: imap.SearchReturn{Given: true, Save: true, Partial: p(5, 6), Min: true}, res: asc,
			want: `* ESEARCH (TAG "A1") MIN 2 PARTIAL (5:6 11,15)` + "\r\n", saved: mail.NewUIDSet(20, 110, 150)},
		{name: "PARTIAL with ALL is an error", ret: imap.SearchReturn{Given: true, All: true, Partial: p(1, 2)}, res: asc,
			wantErr: ErrPartialWithAll},
		{name: "ESORT: ALL in sort order, MIN/MAX first/last",
			ret: imap.SearchReturn{Given: true, All: true, Min: true, Max: true}, res: results(23765, 23764, 23763, 23761, 5, 6, 7),
			uid: false, sorted: true,
			want: `* ESEARCH (TAG "A1") MIN 23765 MAX 7 ALL 23765,23764,23763,23761,5:7` + "\r\n"},
		{name: "MODSEQ of MIN only", ret: imap.SearchReturn{Given: true, Min: true}, res: asc, modseq: true,
			want: `* ESEARCH (TAG "A1") MIN 2 MODSEQ 102` + "\r\n"},
		{name: "MODSEQ of MIN and MAX", ret: imap.SearchReturn{Given: true, Min: true, Max: true}, res: asc, modseq: true,
			want: `* ESEARCH (TAG "A1") MIN 2 MAX 15 MODSEQ 102` + "\r\n"},
		{name: "MODSEQ of all with COUNT", ret: imap.SearchReturn{Given: true, Min: true, Count: true}, res: asc, modseq: true,
			want: `* ESEARCH (TAG "A1") MIN 2 COUNT 6 MODSEQ 104` + "\r\n"},
		{name: "no MODSEQ without results", ret: imap.SearchReturn{Given: true, Count: true}, modseq: true,
			want: `* ESEARCH (TAG "A1") COUNT 0` + "\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, err := Shape(tc.ret, tc.res, tc.uid, tc.sorted, tc.modseq)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := writeES(t, es, "A1"); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if tc.ret.Save && !slices.Equal(es.Saved, tc.saved) {
				t.Errorf("saved %v, want %v", es.Saved, tc.saved)
			}
		})
	}
}

func TestAppendNumSet(t *testing.T) {
	tests := []struct {
		in   []uint32
		want string
	}{
		{nil, ""},
		{[]uint32{7}, "7"},
		{[]uint32{1, 2, 3, 5, 7, 8}, "1:3,5,7:8"},
		{[]uint32{9, 8, 7}, "9,8,7"},
		{[]uint32{3, 4, 1, 2}, "3:4,1:2"},
		{[]uint32{4294967294, 4294967295}, "4294967294:4294967295"},
	}
	for _, tc := range tests {
		if got := string(AppendNumSet(nil, tc.in)); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWriteSearch(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	enc := imap.NewEncoder(w)
	if err := WriteSearch(enc, "SEARCH", []uint32{2, 5, 6}, 917162500); err != nil {
		t.Fatal(err)
	}
	if err := WriteSearch(enc, "SEARCH", nil, 5); err != nil {
		t.Fatal(err)
	}
	if err := WriteSearch(enc, "SORT", []uint32{5, 3, 4}, 0); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	want := "* SEARCH 2 5 6 (MODSEQ 917162500)\r\n* SEARCH\r\n* SORT 5 3 4\r\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
	if HighestModSeq(results(1, 2, 6)) != 106 || HighestModSeq(nil) != 0 {
		t.Error("HighestModSeq")
	}
}

func TestPartialWindow(t *testing.T) {
	tests := []struct {
		first, last int64
		n           int
		lo, hi      int
	}{
		{1, 500, 1000, 0, 500},
		{501, 1000, 700, 500, 700},
		{-100, -1, 50, 0, 50},
		{-100, -1, 23764, 23664, 23764},
		{24000, 24500, 23764, 0, 0},
		{-5, -3, 2, 0, 0},
		{-5, -2, 3, 0, 2},
	}
	for _, tc := range tests {
		lo, hi := partialWindow(imap.PartialRange{First: tc.first, Last: tc.last}, tc.n)
		if lo != tc.lo || hi != tc.hi {
			t.Errorf("%d:%d of %d: [%d,%d), want [%d,%d)", tc.first, tc.last, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
}
