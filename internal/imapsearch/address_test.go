package imapsearch

import (
	"slices"
	"testing"

	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/store"
)

// addressFixtures are messages whose address fields use the forms of RFC
// 5322 §3.4 and §4.4: bare addr-specs, phrases, names given as comments,
// comments inside angle brackets, several addresses, groups.
func addressFixtures(t testing.TB) []*fixture {
	msgs := []string{
		// 1: bare addresses, no names.
		"From: mia.berg@example.net\nTo: ops@example.com\nCc: audit@example.com\nBcc: boss@example.com\n",
		// 2: phrases.
		"From: Mia Berg <mia.berg@example.net>\nTo: Ops Team <ops@example.com>\n" +
			"Cc: Audit Desk <audit@example.com>\nBcc: Big Boss <boss@example.com>\n",
		// 3: comments inside angle brackets name nothing.
		"From: <mia.berg (work)@ (main) example.net>\nTo: <ops@example.com>\n" +
			"Cc: <audit@example.com>\nBcc: <boss@example.com>\n",
		// 4: names given as comments.
		"From: mia.berg@example.net (Mia Berg)\nTo: ops@example.com (Ops Team)\n" +
			"Cc: audit@example.com (Audit Desk)\nBcc: boss@example.com (Big Boss)\n",
		// 5: several addresses; an encoded word and a folded comment.
		"From: mia.one@example.net (=?UTF-8?Q?M=C3=ADa_=C3=98ne?=), mia.two@example.net\n" +
			"Cc: audit@example.com (Audit\n (the second) Desk)\n",
		// 6: groups.
		"To: crew: deck@example.org, galley@example.org (Galley Hand);,\n" +
			" nobody:;, shore: dock@example.org;\n",
	}
	fx := make([]*fixture, len(msgs))
	for i, m := range msgs {
		fx[i] = &fixture{
			meta: store.Message{UID: mail.UID(i + 1), Size: int64(100 * (i + 1))},
			src:  newSource(t, m+"Subject: s\n\nbody\n"),
		}
	}
	return fx
}

// TestSearchAddressComments: FROM, TO, CC and BCC match the address, the
// display name and a name given as a comment, decoded, as substrings
// (RFC 9051 §6.4.4), and group names and members.
func TestSearchAddressComments(t *testing.T) {
	fx := addressFixtures(t)
	tests := []struct {
		program string
		want    []uint32
	}{
		// The address itself, with comments inside it dropped.
		{"FROM mia.berg@example.net", []uint32{1, 2, 3, 4}},
		{"TO ops@example.com", []uint32{1, 2, 3, 4}},
		{"CC audit@example.com", []uint32{1, 2, 3, 4, 5}},
		{"BCC boss@example.com", []uint32{1, 2, 3, 4}},
		// Display names: phrases and comments alike.
		{`FROM "mia berg"`, []uint32{2, 4}},
		{`TO "ops team"`, []uint32{2, 4}},
		{`CC "audit desk"`, []uint32{2, 4}},
		{`BCC "big boss"`, []uint32{2, 4}},
		{`FROM "ia Be"`, []uint32{2, 4}},
		{"FROM work", nil},
		{"FROM main", nil},
		// Substrings of addresses.
		{"FROM ia.ber", []uint32{1, 2, 3, 4}},
		{"BCC oss@exa", []uint32{1, 2, 3, 4}},
		// Several addresses, an encoded word in a comment, folding.
		{"FROM mia.two", []uint32{5}},
		{`FROM "Mía Øne"`, []uint32{5}},
		{`FROM "MÍA ØNE"`, []uint32{5}},
		{`CC "audit (the second) desk"`, []uint32{5}},
		// Groups: names and members.
		{"TO crew", []uint32{6}},
		{"TO nobody", []uint32{6}},
		{"TO galley@example.org", []uint32{6}},
		{`TO "galley hand"`, []uint32{6}},
		{"TO dock", []uint32{6}},
		{"TO cook", nil},
	}
	for _, tc := range tests {
		prog, err := Compile(parseKey(t, tc.program).Key, Options{NumMessages: uint32(len(fx)), MaxUID: mail.UID(len(fx))})
		if err != nil {
			t.Fatalf("%s: %v", tc.program, err)
		}
		if got := run(t, prog, fx); !slices.Equal(got, tc.want) {
			t.Errorf("SEARCH %s: got %v, want %v", tc.program, got, tc.want)
		}
	}
}

// TestSortAddressKeys: FROM, TO and CC sort by the addr-mailbox of the
// first address (RFC 5256 §3), DISPLAYFROM and DISPLAYTO by its display
// name, a comment's included, or its addr-spec (RFC 5957 §3); a group by
// its name. Both compare by i;unicode-casemap; ties keep sequence order,
// and REVERSE inverts only its own key.
func TestSortAddressKeys(t *testing.T) {
	items := func() []Item {
		raw := []string{
			// 1
			"From: zoe@example.org (Adam Ant)\nTo: Yuri <quinn@example.org>\nCc: Omar <omar@example.org>\n",
			// 2
			"From: Bert <bert@example.org>\nTo: pat@example.org (Zed)\nCc: nina@example.org, adam@example.org\n",
			// 3
			"From: <carl (x)@example.org>\nTo: undisclosed-recipients:;\n",
			// 4
			"From: ALMA@example.org\nTo: team: xena@example.org (Bob);\nCc: (nobody) omar@example.org\n",
			// 5
			"From: =?UTF-8?Q?=C3=89mile?= <emile@example.org>\nTo: pat@example.org (zed)\nCc: Nina <NINA@example.org>\n",
		}
		out := make([]Item, len(raw))
		for i, r := range raw {
			out[i] = item(t, uint32(i+1), "2024-01-01T00:00:00Z", int64(100*(5-i)), r+"Subject: s")
		}
		return out
	}
	tests := []struct {
		criteria string
		want     []uint32
	}{
		// FROM: alma, bert, carl, emile, zoe.
		{"FROM", []uint32{4, 2, 3, 5, 1}},
		{"REVERSE FROM", []uint32{1, 5, 3, 2, 4}},
		// TO: pat (2, 5 tie), quinn, team, undisclosed-recipients.
		{"TO", []uint32{2, 5, 1, 4, 3}},
		{"REVERSE TO", []uint32{3, 4, 1, 2, 5}},
		// CC: none (3) first, then nina (2, 5 tie), omar (1, 4 tie).
		{"CC", []uint32{3, 2, 5, 1, 4}},
		{"REVERSE CC", []uint32{1, 4, 2, 5, 3}},
		// Ties of CC broken by the next key; REVERSE applies to SIZE only.
		{"CC REVERSE SIZE", []uint32{3, 2, 5, 1, 4}},
		{"CC SIZE", []uint32{3, 5, 2, 4, 1}},
		{"REVERSE CC SIZE", []uint32{4, 1, 5, 2, 3}},
		// DISPLAYFROM: "Adam Ant" (a comment), "alma@example.org",
		// "Bert", "carl@example.org", "Émile".
		{"DISPLAYFROM", []uint32{1, 4, 2, 3, 5}},
		{"REVERSE DISPLAYFROM", []uint32{5, 3, 2, 4, 1}},
		// DISPLAYTO: "team", "undisclosed-recipients", "Yuri", "Zed" and
		// "zed" (equal under i;unicode-casemap: sequence order).
		{"DISPLAYTO", []uint32{4, 3, 1, 2, 5}},
		{"REVERSE DISPLAYTO", []uint32{2, 5, 1, 3, 4}},
		{"DISPLAYTO SIZE", []uint32{4, 3, 1, 5, 2}},
		{"DISPLAYTO REVERSE SIZE", []uint32{4, 3, 1, 2, 5}},
	}
	for _, tc := range tests {
		its := items()
		Sort(its, crit(tc.criteria))
		if got := seqs(its); !slices.Equal(got, tc.want) {
			t.Errorf("SORT (%s): got %v, want %v", tc.criteria, got, tc.want)
		}
		// A SORT context orders by SortKey, then UID: the same order.
		its = items()
		slices.SortFunc(its, func(a, b Item) int {
			ka, kb := SortKey(&a, crit(tc.criteria)), SortKey(&b, crit(tc.criteria))
			if ka != kb {
				if ka < kb {
					return -1
				}
				return 1
			}
			return int(a.UID) - int(b.UID)
		})
		if got := seqs(its); !slices.Equal(got, tc.want) {
			t.Errorf("SortKey order (%s): got %v, want %v", tc.criteria, got, tc.want)
		}
	}
}
