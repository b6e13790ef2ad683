package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// POP3Options configure the POP3 retrieval workload.
type POP3Options struct {
	Common
	// User and Password name the maildrop.
	User, Password string
	// Repeats is how many times the whole maildrop is retrieved.
	Repeats int
	// Pipeline is the number of RETR commands kept in flight when the
	// server offers PIPELINING (RFC 2449 §6.6); 0 or 1 sends one at a time.
	Pipeline int
}

// RunPOP3 times the retrieval of a whole maildrop: LIST, UIDL, RETR of
// every message, QUIT (login not counted), Repeats times, and reports the
// minimum and the median.
func RunPOP3(ctx context.Context, o POP3Options) (*Result, error) {
	o.Repeats = max(o.Repeats, 1)
	res := o.newResult("pop3", "pop3")
	res.Params["repeats"] = o.Repeats
	o.progressf("pop3 %s: retrieve the maildrop of %s %d times", o.Label, o.User, o.Repeats)
	clock := startCPU(o.Procs)
	var times []time.Duration
	var msgs int
	var bytes int64
	pipelined := false
	for range o.Repeats {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c, err := DialPOP3(ctx, o.Dialer, o.Addr)
		if err != nil {
			return nil, err
		}
		if err := c.Login(o.User, o.Password); err != nil {
			c.Close()
			return nil, err
		}
		start := time.Now()
		n, b, err := retrieveAll(c, o.Pipeline)
		if err != nil {
			c.Close()
			return nil, err
		}
		// The QUIT is part of the retrieval: the server commits there
		// (RFC 1939 §6, UPDATE state).
		if ok, text, err := c.Cmd("QUIT"); err != nil || !ok {
			c.Close()
			return nil, fmt.Errorf("quit: %s %v", text, err)
		}
		times = append(times, time.Since(start))
		pipelined = o.Pipeline > 1 && c.Caps["PIPELINING"]
		c.Close()
		msgs, bytes = n, b
	}
	clock.stop(res)
	slices.Sort(times)
	var total time.Duration
	for _, t := range times {
		total += t
	}
	res.Seconds = total.Seconds()
	res.Params["messages"] = msgs
	res.Params["pipelined"] = pipelined
	med := times[len(times)/2]
	res.AddMetric("retrieve_min_s", times[0].Seconds(), "s", Lower)
	res.AddMetric("retrieve_median_s", med.Seconds(), "s", Lower)
	res.AddMetric("msgs_per_s", float64(msgs)/med.Seconds(), "msg/s", Info)
	res.AddMetric("mb_per_s", float64(bytes)/1e6/med.Seconds(), "MB/s", Info)
	res.AddMetric("messages", float64(msgs), "msg", Info)
	return res, nil
}

// retrieveAll sends LIST and UIDL, then RETR of every listed message. It
// returns the number of messages and the bytes of all RETR answers.
func retrieveAll(c *POP3Client, window int) (int, int64, error) {
	var ids []string
	// RFC 1939 §5 LIST: "n size" per message.
	if _, _, err := c.Multi("LIST", func(line []byte) {
		if i := indexByte(line, ' '); i > 0 {
			ids = append(ids, string(line[:i]))
		}
	}); err != nil {
		return 0, 0, err
	}
	// RFC 1939 §7 UIDL.
	if _, _, err := c.Multi("UIDL", nil); err != nil {
		return 0, 0, err
	}
	cmds := make([]string, len(ids))
	for i, id := range ids {
		if _, err := strconv.Atoi(id); err != nil {
			return 0, 0, fmt.Errorf("LIST line with message number %q", id)
		}
		cmds[i] = "RETR " + id
	}
	if window <= 1 || !c.Caps["PIPELINING"] {
		window = 1
	}
	n, err := c.MultiPipelined(cmds, window)
	return len(ids), n, err
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
