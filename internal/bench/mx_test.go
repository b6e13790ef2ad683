package bench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"
)

func TestRewriteFrom(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Subject: a\r\nFrom: \"X\"\r\n <x@y>\r\nTo: z\r\n\r\nFrom: body\r\n",
			"Subject: a\r\nFrom: Bench Sender <u@s.test>\r\nTo: z\r\n\r\nFrom: body\r\n"},
		{"Subject: a\r\n\r\nbody\r\n", "From: Bench Sender <u@s.test>\r\nSubject: a\r\n\r\nbody\r\n"},
		{"from: x@y\r\n\r\n", "From: Bench Sender <u@s.test>\r\n\r\n"},
	}
	for _, tt := range tests {
		if got := string(rewriteFrom([]byte(tt.in), "u@s.test")); got != tt.want {
			t.Errorf("rewriteFrom(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestPrepareMX: the share of signed messages is as asked, and every
// signature verifies against the records the workload serves.
func TestPrepareMX(t *testing.T) {
	o := &MXOptions{Corpus: GenerateCorpus(1, 20), Senders: 2, Signed: 50, Algorithms: []string{"rsa", "ed25519"}}
	senders, err := o.senders()
	if err != nil {
		t.Fatal(err)
	}
	txt := map[string][]string{}
	for _, s := range senders {
		for _, r := range s.records {
			rr, err := dns.NewRR(r)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(rr.Header().Name, ".")
			txt[name] = append(txt[name], strings.Join(rr.(*dns.TXT).Txt, ""))
		}
	}
	msgs, signed, err := prepareMX(o, senders)
	if err != nil {
		t.Fatal(err)
	}
	if signed != 10 {
		t.Fatalf("%d signed, want 10", signed)
	}
	verified := 0
	for i, m := range msgs {
		raw := bytes.ReplaceAll(bytes.TrimSuffix(m.data, []byte(".\r\n")), []byte("\r\n.."), []byte("\r\n."))
		if !bytes.Contains(raw, []byte("From: Bench Sender <")) || !strings.HasPrefix(m.from, "bounce@s") {
			t.Fatalf("message %d: from %q, header %.300q", i, m.from, raw)
		}
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: func(n string) ([]string, error) {
			if v, ok := txt[n]; ok {
				return v, nil
			}
			return nil, &dnsErr{}
		}})
		if err != nil {
			t.Fatal(err)
		}
		ours := 0
		for _, v := range vs {
			if strings.HasSuffix(v.Domain, ".mx.bench") {
				ours++
				if v.Err != nil {
					t.Fatalf("message %d: signature of %s: %v", i, v.Domain, v.Err)
				}
			}
		}
		if ours == 2 {
			verified++
		} else if ours != 0 {
			t.Fatalf("message %d: %d signatures of ours", i, ours)
		}
	}
	if verified != signed {
		t.Fatalf("%d messages verified, %d signed", verified, signed)
	}
}

type dnsErr struct{}

func (*dnsErr) Error() string { return "no such name" }
