#!/usr/bin/env bash
# mx-checks.sh: MX delivery rate with the sender authentication checks on
# and off (issue 16), alternating, for one or more postfach binaries, so a
# change is judged against the binary before it under the same load of the
# machine. Not part of CI.
#
#   bench/mx-checks.sh [--rounds N] [--secs S] [--conns C] [--out FILE] NAME=DIR [NAME=DIR ...]
#
# Each DIR holds a postfach binary (go build -o DIR/...); the first DIR also
# holds the postfach-bench that loads them all.
# Every run: a fresh data directory, 16 accounts, `postfach serve` with the
# MX (listen.smtp) and /metrics only, [dns] servers pointing at the DNS
# server that `postfach-bench mx` starts (--dns-listen), and [inbound] spf,
# dkim and dmarc all on or all off. The load: C SMTP connections deliver
# the corpus (500 messages) from 4 sender domains with SPF, DMARC p=reject
# and DKIM records; 80 % of the messages carry an RSA-2048 and an ed25519
# signature (relaxed/relaxed). Each round runs, per binary, checks off then on (odd rounds)
# or on then off (even rounds). Every run prints a line with the rate and
# the server's CPU time per message (from /proc/PID/stat over the measured
# interval); at the end, per binary, the median over the rounds of the
# ratio on/off of the rates. With PPROF=PREFIX set, a CPU profile of the
# middle of each checked run goes to PREFIX-NAME-ROUND.prof. Needs curl and
# python3.
set -euo pipefail

ROUNDS=3 SECS=15 CONNS=8 OUT=/dev/stdout
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--secs) SECS=$2; shift 2 ;;
	--conns) CONNS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	*=*) break ;;
	*) echo "usage: $0 [--rounds N] [--secs S] [--conns C] [--out FILE] NAME=DIR..." >&2; exit 2 ;;
	esac
done
[ $# -gt 0 ] || { echo "$0: no binaries given" >&2; exit 2; }

WORK=$(mktemp -d /tmp/mx-checks.XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

first=${1#*=}
BENCH=$first/postfach-bench
"$BENCH" corpus --count 500 --out "$WORK/corpus" >/dev/null

run() { # name dir checks(true|false)
	local name=$1 dir=$2 checks=$3
	local data="$WORK/data" port=$((30000 + RANDOM % 20000)) http=$((30000 + RANDOM % 20000)) dns=$((30000 + RANDOM % 20000))
	rm -rf "$data"
	cat >"$WORK/pf.toml" <<EOC
data_dir = "$data"
hostname = "mx.bench.localhost"
domains = ["bench.test"]
max_message_size = "50MiB"
[listen]
imap = ""
imaps = ""
pop3 = ""
pop3s = ""
lmtp = ""
smtp = "127.0.0.1:$port"
submission = ""
submissions = ""
http = "127.0.0.1:$http"
web = ""
[log]
level = "warn"
[dns]
servers = ["127.0.0.1:$dns"]
[inbound]
spf = $checks
dkim = $checks
dmarc = $checks
EOC
	[ -n "${PPROF:-}" ] && printf '[debug]\npprof = true\n' >>"$WORK/pf.toml"
	"$dir/postfach" serve --config "$WORK/pf.toml" >>"$WORK/serve.log" 2>&1 &
	PID=$!
	local up=0
	for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { up=1; break; }; sleep 0.1; done
	[ $up = 1 ] || { echo "$0: postfach ($name) is not listening after 60 s" >&2; tail "$WORK/serve.log" >&2; exit 1; }
	for i in $(seq 16); do echo "sink$i@bench.test"; done |
		xargs -P 2 -I{} sh -c "echo benchpass | '$dir/postfach' user add --config '$WORK/pf.toml' --password-stdin {} >/dev/null"
	local load
	load=$(cut -d' ' -f1 /proc/loadavg)
	"$BENCH" mx --addr "127.0.0.1:$port" --users "sink%d@bench.test" --count 16 \
		--corpus "$WORK/corpus" --conns "$CONNS" --duration "${SECS}s" --warmup 3s --dns-listen "127.0.0.1:$dns" \
		--pid "$PID" --quiet --json "$WORK/res.json" >"$WORK/bench.out" 2>&1 &
	local bpid=$!
	if [ -n "${PPROF:-}" ] && [ "$checks" = true ]; then
		sleep $((3 + SECS / 4))
		curl -sf -o "$PPROF-$name-$ROUND.prof" "http://127.0.0.1:$http/debug/pprof/profile?seconds=$((SECS / 2))" || true
	fi
	if ! wait $bpid; then
		echo "$0: postfach-bench mx failed ($name, checks=$checks):" >&2
		cat "$WORK/bench.out" >&2
		exit 1
	fi
	kill "$PID"; wait "$PID" 2>/dev/null || true
	PID=
	python3 - "$WORK/res.json" "$ROUND" "$name" "$checks" "$load" >"$WORK/line" <<'EOP'
import json, sys
r = json.loads(open(sys.argv[1]).readlines()[-1])
m = {x["name"]: x["value"] for x in r["metrics"]}
print("round=%s bin=%s checks=%s load=%s msgs_per_s=%.1f cpu_us_per_msg=%.0f p50_ms=%.1f errors=%d" % (
    sys.argv[2], sys.argv[3], "on" if sys.argv[4] == "true" else "off", sys.argv[5],
    m["msgs_per_s"], m.get("server_cpu_us_per_msg", 0), m.get("deliver_p50", 0), m["errors"]))
EOP
	rm -f "$WORK/res.json"
}

: >"$WORK/lines"
for ROUND in $(seq "$ROUNDS"); do
	order="false true"
	[ $((ROUND % 2)) = 0 ] && order="true false"
	for nd in "$@"; do
		for checks in $order; do
			run "${nd%%=*}" "${nd#*=}" "$checks"
			cat "$WORK/line" >>"$OUT"
			cat "$WORK/line" >>"$WORK/lines"
		done
	done
done

python3 - "$WORK/lines" >>"$OUT" <<'EOP'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    f = dict(kv.split("=", 1) for kv in line.split())
    runs.setdefault(f["bin"], {}).setdefault(f["round"], {})[f["checks"]] = f
for b, rounds in runs.items():
    ratios, cpu = [], {"on": [], "off": []}
    for r in rounds.values():
        if "on" in r and "off" in r:
            ratios.append(float(r["on"]["msgs_per_s"]) / float(r["off"]["msgs_per_s"]))
        for k in r:
            cpu[k].append(float(r[k]["cpu_us_per_msg"]))
    print("bin=%s pairs=%d ratio_on_off_median=%.0f%% ratios=%s cpu_us_per_msg_median off=%.0f on=%.0f" % (
        b, len(ratios), 100 * statistics.median(ratios), ",".join("%.0f%%" % (100 * x) for x in ratios),
        statistics.median(cpu["off"]), statistics.median(cpu["on"])))
EOP
