package imap

import "testing"

// TestFetchItemRequest: AppendRequest writes an item as the client asked
// for it (BODY.PEEK stays PEEK, a partial keeps its count), AppendName as
// the response names it.
func TestFetchItemRequest(t *testing.T) {
	tests := []struct{ in, request, name string }{
		{"BODY.PEEK[]", "BODY.PEEK[]", "BODY[]"},
		{"BODY[]", "BODY[]", "BODY[]"},
		{"BODY.PEEK[1.2.HEADER.FIELDS (Subject)]<0.100>", "BODY.PEEK[1.2.HEADER.FIELDS (Subject)]<0.100>", "BODY[1.2.HEADER.FIELDS (Subject)]<0>"},
		{"BINARY.PEEK[1]", "BINARY.PEEK[1]", "BINARY[1]"},
		{"BINARY.SIZE[1]", "BINARY.SIZE[1]", "BINARY.SIZE[1]"},
		{"RFC822.SIZE", "RFC822.SIZE", "RFC822.SIZE"},
	}
	for _, tt := range tests {
		r, _ := newTestReader("a FETCH 1 ("+tt.in+")\r\n", Options{})
		cmd, err := r.ReadCommand()
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		it := &cmd.(*Fetch).Items[0]
		if got := string(it.AppendRequest(nil)); got != tt.request {
			t.Errorf("%s: AppendRequest = %q, want %q", tt.in, got, tt.request)
		}
		if got := string(it.AppendName(nil)); got != tt.name {
			t.Errorf("%s: AppendName = %q, want %q", tt.in, got, tt.name)
		}
	}
}
