#!/usr/bin/env bash
# lmtp-ab.sh: alternating LMTP delivery runs of two or more postfach binaries,
# so that a change is judged against the binary before it under the same load
# of the machine (issue 13). Not part of CI.
#
#   bench/lmtp-ab.sh [--rounds N] [--cases "c4 c32 small-c4 small-c32"]
#                    [--secs S] [--out FILE] NAME=DIR [NAME=DIR ...]
#
# Each DIR holds a postfach and a postfach-bench binary (go build -o DIR/...).
# Every run: a fresh data directory, 16 accounts, `postfach serve` with LMTP
# and /metrics only, `postfach-bench lmtp` over the corpus (500 messages;
# the small cases take those of at most 10,000 bytes). Over the middle of
# the run, `perf stat` of the server and its /metrics give the server's CPU
# time and context switches per delivered message, the kernel's share of
# that time (sys_share, from /proc/PID/stat), the store's group commits
# (mean batch size) and the share of the time the writer spent in them.
# With PPROF=PREFIX set, a CPU profile of the same interval goes to
# PREFIX-NAME-CASE-ROUND.prof. Needs perf(1), curl, bc and python3, and root
# (or a low kernel.perf_event_paranoid) for perf stat -p.
#
# A NAME that begins with "pg" runs its binary on PostgreSQL ([store]
# backend = "postgres", issue 18): $PG_DSN names the database (from
# .ci/pg-start.sh), each run gets a schema of its own, and with $PG_PID
# (the postmaster's PID) the CPU time of the postmaster and its children
# over the same interval is reported as pg_cpu_ms_per_msg.
set -euo pipefail

ROUNDS=3 SECS=12 CASES="c4 c32 small-c4 small-c32" OUT=/dev/stdout
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--cases) CASES=$2; shift 2 ;;
	--secs) SECS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	*=*) break ;;
	*) echo "usage: $0 [--rounds N] [--cases LIST] [--secs S] [--out FILE] NAME=DIR..." >&2; exit 2 ;;
	esac
done
[ $# -gt 0 ] || { echo "$0: no binaries given" >&2; exit 2; }

WORK=$(mktemp -d /tmp/lmtp-ab.XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

first=${1#*=}
"$first/postfach-bench" corpus --count 500 --out "$WORK/corpus" >/dev/null

pgticks() { # utime+stime of the postmaster $PG_PID and its children, in ticks
	local t=0 p
	for p in $PG_PID $(ps -o pid= --ppid "$PG_PID"); do
		[ -r "/proc/$p/stat" ] || continue
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done
	echo "$t"
}

metric() { # file name: sum of the samples of the metric (all label sets)
	awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.6f", s }' "$1"
}

run() { # name dir conns small
	local name=$1 dir=$2 conns=$3 small=$4
	local data="$WORK/data" port=$((30000 + RANDOM % 20000)) http=$((30000 + RANDOM % 20000))
	rm -rf "$data"
	cat >"$WORK/pf.toml" <<EOF
data_dir = "$data"
hostname = "bench.localhost"
domains = ["bench.test"]
max_message_size = "50MiB"
[listen]
imap = ""
imaps = ""
pop3 = ""
pop3s = ""
lmtp = "127.0.0.1:$port"
smtp = ""
submission = ""
submissions = ""
http = "127.0.0.1:$http"
web = ""
[log]
level = "warn"
EOF
	if [[ $name == pg* ]]; then
		[ -n "${PG_DSN:-}" ] || { echo "$0: $name runs on PostgreSQL: set PG_DSN" >&2; exit 1; }
		local sep='?'
		[[ $PG_DSN == *\?* ]] && sep='&'
		printf '[store]\nbackend = "postgres"\ndsn = "%s%ssearch_path=bench_%s_%s"\n' "$PG_DSN" "$sep" "$$" "$RANDOM$RANDOM" >>"$WORK/pf.toml"
	fi
	[ -n "${PPROF:-}" ] && printf '[debug]\npprof = true\n' >>"$WORK/pf.toml"
	"$dir/postfach" serve --config "$WORK/pf.toml" >>"$WORK/serve.log" 2>&1 &
	PID=$!
	local up=0
	for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { up=1; break; }; sleep 0.1; done
	[ $up = 1 ] || { echo "$0: postfach ($name) is not listening after 60 s" >&2; exit 1; }
	for i in $(seq 16); do echo "sink$i@bench.test"; done |
		xargs -P 2 -I{} sh -c "echo benchpass | '$dir/postfach' user add --config '$WORK/pf.toml' --password-stdin {} >/dev/null"
	local extra=()
	[ "$small" = 1 ] && extra=(--max-size 10000)
	local load
	load=$(cut -d' ' -f1 /proc/loadavg)
	"$dir/postfach-bench" lmtp --addr "127.0.0.1:$port" --users "sink%d@bench.test" --count 16 \
		--corpus "$WORK/corpus" "${extra[@]}" --conns "$conns" --duration "${SECS}s" --warmup 2s \
		--quiet --json "$WORK/res.json" >"$WORK/bench.out" 2>&1 &
	local bpid=$!
	local mid=$((SECS / 2))
	sleep $((2 + SECS / 4))
	curl -sf "http://127.0.0.1:$http/metrics" >"$WORK/m1"
	local st1 st2 pg1=0 pg2=0
	st1=$(cut -d' ' -f14,15 "/proc/$PID/stat")
	if [[ $name == pg* && -n "${PG_PID:-}" ]]; then pg1=$(pgticks); fi
	local ppid=
	if [ -n "${PPROF:-}" ]; then
		curl -sf -o "$PPROF-$name-$5-$ROUND.prof" "http://127.0.0.1:$http/debug/pprof/profile?seconds=$mid" &
		ppid=$!
	fi
	perf stat -x, -e task-clock,context-switches -p "$PID" -o "$WORK/perf" -- sleep "$mid" >/dev/null 2>&1
	[ -n "$ppid" ] && wait $ppid
	curl -sf "http://127.0.0.1:$http/metrics" >"$WORK/m2"
	st2=$(cut -d' ' -f14,15 "/proc/$PID/stat")
	if [[ $name == pg* && -n "${PG_PID:-}" ]]; then pg2=$(pgticks); fi
	wait $bpid
	kill "$PID"; wait "$PID" 2>/dev/null || true
	PID=
	local d c n b ct tc cs rate
	d=$(echo "$(metric "$WORK/m2" postfach_deliveries_total) - $(metric "$WORK/m1" postfach_deliveries_total)" | bc)
	c=$(echo "$(metric "$WORK/m2" postfach_store_commit_batch_size_count) - $(metric "$WORK/m1" postfach_store_commit_batch_size_count)" | bc)
	b=$(echo "$(metric "$WORK/m2" postfach_store_commit_batch_size_sum) - $(metric "$WORK/m1" postfach_store_commit_batch_size_sum)" | bc)
	ct=$(echo "$(metric "$WORK/m2" postfach_store_commit_duration_seconds_sum) - $(metric "$WORK/m1" postfach_store_commit_duration_seconds_sum)" | bc)
	tc=$(awk -F, '$3 == "task-clock" { print $1 }' "$WORK/perf")
	cs=$(awk -F, '$3 == "context-switches" { print $1 }' "$WORK/perf")
	rate=$(python3 -c 'import json,sys; print([m["value"] for m in json.loads(open(sys.argv[1]).readlines()[-1])["metrics"] if m["name"] == "msgs_per_s"][0])' "$WORK/res.json")
	rm -f "$WORK/res.json"
	local ut st
	ut=$(( ${st2% *} - ${st1% *} )) st=$(( ${st2#* } - ${st1#* } ))
	local hz pgms
	hz=$(getconf CLK_TCK)
	pgms=$(echo "($pg2 - $pg1) * 1000 / $hz / $d" | bc -l)
	printf 'round=%s case=%s bin=%s load=%s msgs_per_s=%.1f cpu_ms_per_msg=%.3f sys_share=%.2f ctxsw_per_msg=%.1f batch=%.2f writer_busy=%.2f pg_cpu_ms_per_msg=%.3f\n' \
		"$ROUND" "$5" "$name" "$load" "$rate" "$(echo "$tc / $d" | bc -l)" "$(echo "$st / ($ut + $st)" | bc -l)" \
		"$(echo "$cs / $d" | bc -l)" "$(echo "$b / $c" | bc -l)" "$(echo "$ct / $mid" | bc -l)" "$pgms" >>"$OUT"
}

for ROUND in $(seq "$ROUNDS"); do
	for cs in $CASES; do
		small=0 conns=${cs#small-}
		[ "$conns" != "$cs" ] && small=1
		conns=${conns#c}
		for nd in "$@"; do
			run "${nd%%=*}" "${nd#*=}" "$conns" "$small" "$cs"
		done
	done
done
