package imapsearch

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postfach/postfach/internal/imap"
	"github.com/postfach/postfach/internal/mail"
	"github.com/postfach/postfach/internal/message"
	"github.com/postfach/postfach/internal/store"
)

// BenchmarkSearchUnseen100k is SEARCH UNSEEN over a 100,000-message
// mailbox from metadata alone: one op is the whole mailbox.
func BenchmarkSearchUnseen100k(b *testing.B) {
	const n = 100000
	metas := make([]store.Message, n)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range metas {
		var fl mail.Flags
		if i%10 != 0 {
			fl = mail.Flags{`\Seen`}
		}
		if i%7 == 0 {
			fl = append(fl, "$Work")
		}
		metas[i] = store.Message{UID: mail.UID(i + 1), ModSeq: mail.ModSeq(i + 1), Flags: fl,
			InternalDate: base.Add(time.Duration(i) * time.Minute), Size: int64(1000 + i%5000)}
	}
	for _, program := range []string{"UNSEEN", "UNDELETED UNSEEN KEYWORD $work SINCE 1-Feb-2024"} {
		b.Run(strings.ReplaceAll(program, " ", "_"), func(b *testing.B) {
			prog, err := Compile(parseKey(b, program).Key, Options{NumMessages: n, MaxUID: n})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var m Message
			b.ReportAllocs()
			for b.Loop() {
				count := 0
				for i := range metas {
					m = Message{Seq: uint32(i + 1), Meta: &metas[i]}
					ok, err := prog.Match(ctx, &m)
					if err != nil {
						b.Fatal(err)
					}
					if ok {
						count++
					}
				}
				if count == 0 {
					b.Fatal("no match")
				}
			}
		})
	}
}

// benchItems makes n messages in threads of about eight, with reply
// subjects, References chains, some missing parents and mixed dates.
func benchItems(b *testing.B, n int) []Item {
	b.Helper()
	items := make([]Item, n)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range items {
		thread := i / 8
		pos := i % 8
		subj := fmt.Sprintf("Topic number %d about %s", thread, []string{"budget", "apples", "servers", "Grüße"}[thread%4])
		if pos > 0 {
			subj = []string{"Re: ", "RE: [list] ", "Fwd: ", "Re: Re: "}[pos%4] + subj
		}
		var h strings.Builder
		fmt.Fprintf(&h, "Message-ID: <m%d@example.org>\r\nSubject: %s\r\n", i, subj)
		fmt.Fprintf(&h, "From: User %d <user%d@example.org>\r\nTo: list@example.org\r\n", i%97, i%97)
		fmt.Fprintf(&h, "Date: %s\r\n", base.Add(time.Duration((i*7919)%n)*time.Minute).Format(time.RFC1123Z))
		if pos > 0 {
			h.WriteString("References:")
			for k := 0; k < pos; k++ {
				if k == 1 && thread%5 == 0 {
					continue // a missing message
				}
				fmt.Fprintf(&h, " <m%d@example.org>", thread*8+k)
			}
			h.WriteString("\r\n")
		}
		h.WriteString("\r\nbody\r\n")
		sum, err := message.Parse(strings.NewReader(h.String()))
		if err != nil {
			b.Fatal(err)
		}
		items[i] = Item{Seq: uint32(i + 1), UID: mail.UID(i + 1), Size: int64(i % 3000),
			InternalDate: base.Add(time.Duration(i) * time.Second), Summary: sum}
	}
	return items
}

// BenchmarkSortSubject10k is SORT (SUBJECT) of 10,000 messages.
func BenchmarkSortSubject10k(b *testing.B) {
	items := benchItems(b, 10000)
	work := make([]Item, len(items))
	for _, spec := range []string{"SUBJECT", "REVERSE DATE", "FROM SIZE"} {
		b.Run(strings.ReplaceAll(spec, " ", "_"), func(b *testing.B) {
			criteria := crit(spec)
			b.ReportAllocs()
			for b.Loop() {
				copy(work, items)
				Sort(work, criteria)
			}
		})
	}
}

// BenchmarkThreadReferences10k is THREAD REFERENCES of 10,000 messages.
func BenchmarkThreadReferences10k(b *testing.B) {
	items := benchItems(b, 10000)
	for _, alg := range []string{ThreadReferences, ThreadOrderedSubject} {
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				threads, err := BuildThreads(items, alg)
				if err != nil {
					b.Fatal(err)
				}
				if len(AppendThreads(nil, threads, false)) == 0 {
					b.Fatal("empty")
				}
			}
		})
	}
}

// BenchmarkBodySearch is BODY over a 1 MB quoted-printable text part
// without a match: the cost of scanning decoded text.
func BenchmarkBodySearch(b *testing.B) {
	body := strings.Repeat("Sch=C3=B6ne Gr=C3=BC=C3=9Fe aus K=C3=B6ln, plain words on a line.\r\n", 16000)
	src := newSource(b, "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"+body)
	meta := store.Message{UID: 1}
	prog, err := Compile(imap.SearchKey{Op: imap.SearchBody, Text: "nowhere to be found"}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		m := Message{Seq: 1, Meta: &meta, Source: src}
		if ok, err := prog.Match(context.Background(), &m); ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
