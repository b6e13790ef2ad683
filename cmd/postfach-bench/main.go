// Command postfach-bench generates load against any IMAP, POP3, LMTP or
// submission server by host:port, so the same load runs against postfach
// and against Dovecot (issue 6) or Postfix (issue 15). Run `postfach-bench help` for the
// subcommands; bench/compare-dovecot.sh drives it for the side-by-side
// comparison.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/postfach/postfach/internal/auth"
	"github.com/postfach/postfach/internal/bench"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error
}

func commands() []command {
	return []command{
		{"imap-mixed", "N clients loop like real IMAP clients; commands/s and latency per command", runMixed},
		{"imap-shared", "N sessions share M accounts' INBOXes: commands/s and consistency violations", runShared},
		{"imap-login", "connect + LOGIN + LOGOUT loop; logins/s", runLogin},
		{"lmtp", "LMTP deliveries/s over N connections from the corpus", runLMTP},
		{"mx", "SMTP deliveries/s to an MX from senders with SPF, DKIM and DMARC records (own DNS server)", runMX},
		{"submit", "N clients submit to remote recipients; messages/s reaching a local sink through the server's queue", runSubmit},
		{"pop3", "time to retrieve a whole maildrop (LIST, UIDL, RETR all, QUIT)", runPOP3},
		{"idle", "N IDLE sessions: server memory per session and push latency", runIdle},
		{"load", "populate INBOXes by LMTP from the corpus (N messages per user)", runLoad},
		{"corpus", "generate the deterministic corpus (writes .eml files, prints a summary)", runCorpus},
		{"passwd-file", "print Dovecot passwd-file lines with argon2id hashes like postfach's", runPasswdFile},
		{"report", "compare two servers' JSON results: Markdown table with ratios and targets", runReport},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet("postfach-bench "+c.name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		if err := c.run(ctx, fs, args[1:], stdout); err != nil {
			if err == flag.ErrHelp {
				return 0
			}
			fmt.Fprintf(stderr, "postfach-bench %s: %v\n", c.name, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "postfach-bench: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "postfach-bench — load generator for IMAP, POP3 and LMTP servers (postfach, Dovecot, ...)")
	fmt.Fprintln(w, "\nusage: postfach-bench COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEach run prints a table and one JSON line; --json FILE also appends the JSON line to FILE.")
}

// common are the flags every workload shares.
type common struct {
	addr, label, caseName, jsonPath string
	tls, quiet                      bool
	pids                            string
	pidTree                         bool
	timeout                         time.Duration
}

func (c *common) register(fs *flag.FlagSet, defAddr string) {
	fs.StringVar(&c.addr, "addr", defAddr, "server address host:port")
	fs.StringVar(&c.label, "label", "server", "name of the server in reports (postfach, dovecot)")
	fs.StringVar(&c.caseName, "case", "", "name of the comparable case (default: built from the workload and its parameters)")
	fs.StringVar(&c.jsonPath, "json", "", "append the JSON result line to this file")
	fs.BoolVar(&c.tls, "tls", false, "implicit TLS (imaps/pop3s); the certificate is not verified")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines on stderr")
	fs.StringVar(&c.pids, "pid", "", "server PIDs (comma-separated) whose CPU and memory to read from /proc")
	fs.BoolVar(&c.pidTree, "pid-tree", false, "include all descendants of --pid (Dovecot's processes)")
	fs.DurationVar(&c.timeout, "timeout", time.Minute, "bound on each network read or write")
}

func (c *common) toBench() (bench.Common, error) {
	bc := bench.Common{Addr: c.addr, Label: c.label, Case: c.caseName, Dialer: &bench.Dialer{Timeout: c.timeout}}
	if c.tls {
		// Benchmarks run on loopback against self-signed certificates.
		bc.Dialer.TLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback benchmark only
	}
	if !c.quiet {
		bc.Progress = os.Stderr
	}
	if c.pids != "" {
		ps := &bench.ProcSet{Tree: c.pidTree}
		for _, f := range strings.Split(c.pids, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || pid <= 0 {
				return bc, fmt.Errorf("bad --pid %q", f)
			}
			ps.PIDs = append(ps.PIDs, pid)
		}
		bc.Procs = ps
	}
	return bc, nil
}

// emit prints the table and the JSON line, and appends the JSON line to
// --json.
func (c *common) emit(out io.Writer, res *bench.Result) error {
	if res == nil {
		return nil
	}
	res.WriteTable(out)
	if err := res.WriteJSON(out); err != nil {
		return err
	}
	if c.jsonPath == "" {
		return nil
	}
	f, err := os.OpenFile(c.jsonPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open --json: %w", err)
	}
	if err := res.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// users are the account flags.
type users struct {
	format, password string
	first, count     int
}

func (u *users) register(fs *flag.FlagSet, defCount int) {
	fs.StringVar(&u.format, "users", "bench%d@bench.test", "account name format with one %d")
	fs.IntVar(&u.first, "first", 1, "number of the first account")
	fs.IntVar(&u.count, "count", defCount, "number of accounts")
	fs.StringVar(&u.password, "password", "benchpass", "password of every account")
}

func (u *users) toBench() bench.Users {
	return bench.Users{Format: u.format, First: u.first, Count: u.count, Password: u.password}
}

// corpusFlags select the corpus.
type corpusFlags struct {
	seed uint64
	size int
	dir  string
}

func (c *corpusFlags) register(fs *flag.FlagSet) {
	fs.Uint64Var(&c.seed, "seed", 1, "corpus seed")
	fs.IntVar(&c.size, "corpus-size", 500, "number of generated corpus messages")
	fs.StringVar(&c.dir, "corpus", "", "read the corpus from this directory's .eml files instead of generating it")
}

func (c *corpusFlags) load() (*bench.Corpus, error) {
	if c.dir != "" {
		return bench.LoadCorpus(c.dir)
	}
	return bench.GenerateCorpus(c.seed, c.size), nil
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}

func runMixed(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	var c common
	var u users
	var cf corpusFlags
	c.register(fs, "127.0.0.1:143")
	u.register(fs, 50)
	cf.register(fs)
	clients := fs.Int("clients", 50, "concurrent sessions (client i is user i)")
	dur := fs.Duration("duration", 30*time.Second, "measured duration")
	cycles := fs.Int("cycles", 0, "run this many cycles per client after the warmup instead of a --duration")
	warm := fs.Duration("warmup", 3*time.Second, "unmeasured warmup before the measurement")
	logout := fs.Bool("logout-each-cycle", false, "LOGOUT and log in again every cycle")
	window := fs.Int("window", 20, "envelopes fetched per cycle (the newest)")
	bodies := fs.Int("bodies", 3, "whole messages fetched per cycle (first BODY[], rest BODY.PEEK[])")
	appendMax := fs.Int("append-max", 256<<10, "largest corpus message used for APPEND")
	if err := parse(fs, args); err != nil {
		return err
	}
	bc, err := c.toBench()
	if err != nil {
		return err
	}
	corpus, err := cf.load()
	if err != nil {
		return err
	}
	res, err := bench.RunIMAPMixed(ctx, bench.MixedOptions{Common: bc, Users: u.toBench(), Clients: *clients,
		Duration: *dur, Cycles: *cycles, Warmup: *warm, LogoutEachCycle: *logout, Window: *window, Bodies: *bodies,
		Corpus: corpus, AppendMax: *appendMax, Seed: cf.seed})
	if eerr := c.emit(out, res); eerr != nil && err == nil {
		err = eerr
	}
	return err
}

func runShared(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	var c common
	var u users
	var cf corpusFlags
	c.register(fs, "127.0.0.1:143")
	u.register(fs, 100)
	cf.register(fs)
	sessions := fs.Int("sessions", 50, "sessions, each on an account drawn at random from --count (ignored with --per-account)")
	perAccount := fs.Int("per-account", 0, "sessions on every account (0: --sessions drawn at random)")
	dur := fs.Duration("duration", 30*time.Second, "measured duration")
	warm := fs.Duration("warmup", 3*time.Second, "unmeasured warmup before the measurement")
	ops := fs.Int("ops", 0, "end each session after this many operations (0: run for --duration)")
	keywords := fs.String("keywords", "$Label1,$Label2,$Label3,$Label4,$Label5,$Forwarded", "comma-separated keywords STORE and APPEND set (empty: system flags only)")
	messages := fs.Int("messages", 0, "INBOX size the sessions hold by APPEND and EXPUNGE (0: the size at each session's first SELECT)")
	window := fs.Int("window", 20, "messages per range FETCH")
	idleWait := fs.Duration("idle-wait", 10*time.Millisecond, "longest IDLE; it also ends at the first update")
	appendMax := fs.Int("append-max", 256<<10, "largest corpus message used for APPEND")
	examples := fs.Int("examples", 3, "example transcripts printed per kind of violation or refusal")
	if err := parse(fs, args); err != nil {
		return err
	}
	bc, err := c.toBench()
	if err != nil {
		return err
	}
	corpus, err := cf.load()
	if err != nil {
		return err
	}
	var kw []string
	for _, k := range strings.Split(*keywords, ",") {
		if k = strings.TrimSpace(k); k != "" {
			kw = append(kw, k)
		}
	}
	res, err := bench.RunIMAPShared(ctx, bench.SharedOptions{Common: bc, Users: u.toBench(), Sessions: *sessions, PerAccount: *perAccount,
		Duration: *dur, Warmup: *warm, Ops: *ops, Keywords: kw, Messages: *messages, Window: *window, IdleWait: *idleWait,
		Corpus: corpus, AppendMax: *appendMax, Seed: cf.seed, Examples: *examples})
	if eerr := c.emit(out, res); eerr != nil && err == nil {
		err = eerr
	}
	return err
}

func runLogin(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	var c common
	var u users
	c.register(fs, "127.0.0.1:143")
	u.register(fs, 50)
	clients := fs.Int("clients", 16, "concurrent clients")
	dur := fs.Duration("duration", 20*time.Second, "measured duration")
	warm := fs.Duration("warmup", 2*time.Second, "unmeasured warmup")
	if err := parse(fs, args); err != nil {
		return err
	}
	bc, err := c.toBench()
	if err != nil {
		return err
	}
	res, err := bench.RunIMAPLogin(ctx, bench.LoginOptions{Common: bc, Users: u.toBench(), Clients: *clients, Duration: *dur, Warmup: *warm})
	if eerr := c.emit(out, res); eerr != nil && err == nil {
		err = eerr
	}
	return err
}

func runLMTP(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	var c common
	var u users
	var cf corpusFlags
	c.register(fs, "127.0.0.1:24")
	u.register(fs, 16)
	cf.register(fs)
	conns := fs.Int("conns", 4, "concurrent LMTP connections")
	dur := fs.Duration("duration", 20*time.Second, "measured duration")
	warm := fs.Duration("warmup", 2*time.Second, "unmeasured warmup")
	rcpts := fs.Int("rcpts", 1, "recipients per message")
	maxSize := fs.Int("max-size", 0, "use only corpus messages of at most this many bytes (0: all)")
	from := fs.String("from", "bench@bench.localhost", "envelope sender")
	if err := parse(fs, args); err != nil {
		return err
	}
	bc, err := c.toBench()
	if err != nil {
		return err
	}
	corpus, err := cf.load()
	if err != nil {
		return err
	}
	res, err := bench.RunLMTP(ctx, bench.LMTPOptions{Common: bc, Users: u.toBench(), Conns: *conns, Duration: *dur, Warmup: *warm,
		Rcpts: *rcpts, Corpus: corpus, MaxSize: *maxSize, From: *from})
	if eerr := c.emit(out, res); eerr != nil && err == nil {
		err = eerr
	}
	return err
}

func runSubmit(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	var c common
	var u users
	var cf corpusFlags
	c.register(fs, "127.0.0.1:587")
	u.register(fs, 16)
	cf.register(fs)
	clients := fs.Int("clients", 8, "concurrent submission connections (client i signs in as user i)")
	dur := fs.Duration("duration", 20*time.Second, "measured duration")
	warm := fs.Duration("warmup", 2*time.Second, "unmeasured warmup")
	drain := fs.Duration("drain", 60*time.Second, "longest wait after the measurement for queued messages to reach the sink")
	rcpts := fs.Int("rcpts", 1, "recipients per message")
	domain := fs.String("rcpt-domain", "sink.test", "domain of the (remote) recipients")
	maxSize := fs.Int("max-size", 0, "use only corpus messages of at most this many bytes (0: all)")
	sink := fs.String("sink", "127.0.0.1:2525", "address the sink listens on; the server must deliver there ([relay] host, or [queue] port with MX records)")
	starttls := fs.Bool("starttls", false, "STARTTLS before AUTH")
	noAuth := fs.Bool("no-auth", false, "submit without AUTH (a server relaying for loopback)")
	if err := parse(fs, args); err != nil {
		return err
	}
	bc, err := c.toBench()
	if err != nil {
		return err
	}
	corpus, err := cf.load()
	if err != nil {
		return err
	}
	res, err := bench.RunSubmit(ctx, bench.SubmitOptions{Common: bc, Users: u.toBench(), NoAuth: *noAuth, StartTLS: *starttls,
		Clients: *clients, Duration: *dur, Warmup: *warm, Drain: *drain, Rcpts: *rcpts, RcptDomain: *domain,
		Corpus: corpus, MaxSize: *maxSize, SinkAddr: *sink})
	if eerr := c.emit(out, res); eerr != nil && err == nil {
		err = eerr
	}
	return err
}

func runMX(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	var c common
	var u users
	var cf corpusFlags
	c.register(fs, "127.0.0.1:25")
	u.register(fs, 16)
	cf.register(fs)
	conns := fs.Int("conns", 8, "concurrent SMTP connections")
	dur := fs.Duration("duration", 20*time.Second, "measured duration")
	warm := fs.Duration("warmup", 3*time.Second, "unmeasured warmup (fills the server's DNS cache)")
	maxSize := fs.Int("max-size", 0, "use only corpus messages of at most this many bytes (0: all)")
	senders := fs.Int("senders", 4, "sender domains (s1.mx.bench, ...), each with SPF, DKIM and DMARC p=reject records")
	signed := fs.Int("signed", 80, "percentage of messages DKIM-signed by their sender domain")
	algs := fs.String("algorithms", "rsa,ed25519", "signatures per signed message: rsa (2048 bits), ed25519, or both")
	dnsListen := fs.String("dns-listen", "127.0.0.1:5300", "serve the senders' records on this address (UDP and TCP) during the run; the server's [dns] servers must name it (empty: print the records instead)")
	if err := parse(fs, args); err != nil {
		return err
	}
	bc, err := c.toBench()
	if err != nil {
		return err
	}
	corpus, err := cf.load()
	if err != nil {
		return err
	}
	var al []string
	for _, a := range strings.Split(*algs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			al = append(al, a)
		}
	}
	res, err := bench.RunMX(ctx, bench.MXOptions{Common: bc, Users: u.toBench(), Conns: *conns, Duration: *dur, Warmup: *warm,
		Corpus: corpus, MaxSize: *maxSize, Senders: *senders, Signed: *signed, Algorithms: al, DNSListen: *dnsListen})
	if eerr := c.emit(out, res); eerr != nil && err == nil {
		err = eerr
	}
	return err
}

func runPOP3(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	var c common
	c.register(fs, "127.0.0.1:110")
	user := fs.String("user", "pop1@bench.test", "maildrop account")
	pass := fs.String("password", "benchpass", "its password")
	repeats := fs.Int("repeats", 5, "retrievals of the whole maildrop")
	pipeline := fs.Int("pipeline", 0, "RETR commands in flight when the server offers PIPELINING (0: one at a time)")
	if err := parse(fs, args); err != nil {
		return err
	}
	bc, err := c.toBench()
	if err != nil {
		return err
	}
	res, err := bench.RunPOP3(ctx, bench.POP3Options{Common: bc, User: *user, Password: *pass, Repeats: *repeats, Pipeline: *pipeline})
	if eerr := c.emit(out, res); eerr != nil && err == nil {
		err = eerr
	}
	return err
}

func runIdle(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	var c common
	var u users
	c.register(fs, "127.0.0.1:143")
	u.register(fs, 100)
	conns := fs.Int("conns", 1000, "IDLE sessions to open (up to 10,000; the server's limits must allow them)")
	conc := fs.Int("dial-concurrency", 32, "logins in flight while opening")
	compress := fs.Bool("compress", false, "COMPRESS=DEFLATE on every session (reported unsupported when not offered)")
	settle := fs.Duration("settle", 5*time.Second, "wait after the last session idles before reading memory")
	memMetric := fs.String("mem-metric", bench.MemRSSGrowth, "headline memory figure: rss-growth (one process) or pss-total (process per session)")
	pushes := fs.Int("pushes", 100, "messages delivered to idling users for the push latency (0: none)")
	lmtp := fs.String("lmtp", "", "LMTP address for the pushes")
	from := fs.String("from", "bench@bench.localhost", "envelope sender of the pushes")
	pushTimeout := fs.Duration("push-timeout", 10*time.Second, "how long a session may take to see a push")
	pushBudget := fs.Duration("push-budget", 90*time.Second, "bound on the whole push phase")
	metricsURL := fs.String("metrics-url", "", "the server's Prometheus endpoint with Go runtime metrics (postfach: http://HTTP-LISTENER/metrics): live heap and stacks per session")
	gcWait := fs.Duration("gc-wait", 0, "with --metrics-url: wait up to this long for the server's next garbage collection before reading memory (Go forces one every 2 minutes)")
	warm := fs.Bool("warm", false, "open and close one session per user before the memory baseline (excludes one-time costs, but a garbage-collected server may keep the warm-up's garbage in its RSS)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *memMetric != bench.MemRSSGrowth && *memMetric != bench.MemPSSTotal {
		return fmt.Errorf("--mem-metric: want %s or %s", bench.MemRSSGrowth, bench.MemPSSTotal)
	}
	bc, err := c.toBench()
	if err != nil {
		return err
	}
	res, err := bench.RunIdle(ctx, bench.IdleOptions{Common: bc, Users: u.toBench(), Conns: *conns, DialConcurrency: *conc,
		Compress: *compress, Settle: *settle, MemMetric: *memMetric, Pushes: *pushes, LMTPAddr: *lmtp, From: *from,
		PushTimeout: *pushTimeout, PushBudget: *pushBudget, Warm: *warm, MetricsURL: *metricsURL, GCWait: *gcWait})
	if eerr := c.emit(out, res); eerr != nil && err == nil {
		err = eerr
	}
	return err
}

func runLoad(ctx context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	var c common
	var u users
	var cf corpusFlags
	c.register(fs, "127.0.0.1:24")
	u.register(fs, 50)
	cf.register(fs)
	perUser := fs.Int("per-user", 100, "messages per user")
	conns := fs.Int("conns", 4, "parallel LMTP connections (each takes whole users)")
	from := fs.String("from", "bench@bench.localhost", "envelope sender")
	if err := parse(fs, args); err != nil {
		return err
	}
	bc, err := c.toBench()
	if err != nil {
		return err
	}
	corpus, err := cf.load()
	if err != nil {
		return err
	}
	res, err := bench.Populate(ctx, bench.PopulateOptions{Common: bc, Users: u.toBench(), PerUser: *perUser, Conns: *conns, Corpus: corpus, From: *from})
	if eerr := c.emit(out, res); eerr != nil && err == nil {
		err = eerr
	}
	return err
}

func runCorpus(_ context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	seed := fs.Uint64("seed", 1, "corpus seed")
	count := fs.Int("count", 500, "number of messages")
	dir := fs.String("out", "", "write the messages as DIR/NNNNNN.eml (default: only print the summary)")
	if err := parse(fs, args); err != nil {
		return err
	}
	c := bench.GenerateCorpus(*seed, *count)
	if *dir != "" {
		if err := c.WriteDir(*dir); err != nil {
			return err
		}
	}
	fmt.Fprint(out, c.Summary())
	return nil
}

func runPasswdFile(_ context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	var u users
	u.register(fs, 50)
	if err := parse(fs, args); err != nil {
		return err
	}
	bu := u.toBench()
	if err := bu.Validate(); err != nil {
		return err
	}
	// The same KDF and parameters as postfach's own hashes (internal/auth),
	// in the PHC form Dovecot's ARGON2ID scheme reads.
	for i := range bu.Count {
		h, err := auth.HashPassword(bu.Password)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s:{ARGON2ID}%s::::::\n", bu.Name(i), h)
	}
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

// String implements flag.Value.
func (l *listFlag) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value: each use appends.
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runReport(_ context.Context, fs *flag.FlagSet, args []string, out io.Writer) error {
	path := fs.String("json", "", "file of JSON result lines")
	a := fs.String("a", "postfach", "label of the first server")
	b := fs.String("b", "dovecot", "label of the second server")
	var targets listFlag
	fs.Var(&targets, "target", "goal CASE:METRIC:ratio>=N, CASE:METRIC:value<=N or CASE:METRIC:value>=N (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("--json is required")
	}
	f, err := os.Open(*path)
	if err != nil {
		return err
	}
	defer f.Close()
	results, err := bench.ReadResults(f)
	if err != nil {
		return err
	}
	var ts []bench.Target
	for _, s := range targets {
		t, err := bench.ParseTarget(s)
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}
	bench.Compare(out, results, *a, *b, ts)
	return nil
}
