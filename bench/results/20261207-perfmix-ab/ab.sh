#!/usr/bin/env bash
# ab.sh setup REV | run REV LABEL [bench args...]
set -euo pipefail
P=/tmp/perfmix
BENCH=$P/bin/postfach-bench
IMAP=25143 LMTP=25424 HTTP=25080 POP3=25110
cmd=$1 rev=$2; shift 2
conf() { # datadir
cat <<C
data_dir = "$1"
hostname = "bench.localhost"
domains = ["bench.test"]
max_message_size = "50MiB"
[listen]
imap = "127.0.0.1:$IMAP"
imaps = ""
pop3 = "127.0.0.1:$POP3"
pop3s = ""
lmtp = "127.0.0.1:$LMTP"
smtp = ""
submission = ""
submissions = ""
http = "127.0.0.1:$HTTP"
$( [ "$rev" != c1c482c ] && echo 'web = ""')
[limits]
connections = 15000
connections_per_ip = 15000
[log]
level = "warn"
C
[ -n "${PPROF:-}" ] && printf '[debug]\npprof = true\n'
return 0
}
wait_port() { for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
start() { # datadir
  (exec 3<>/dev/tcp/127.0.0.1/$LMTP) 2>/dev/null && { echo "port busy" >&2; exit 1; }
  conf "$1" > "$1.toml"
  $P/bin/postfach-$rev serve --config "$1.toml" >>"$1.log" 2>&1 &
  PID=$!
  trap 'kill -KILL $PID 2>/dev/null || true' EXIT
  wait_port $LMTP || { echo "no server"; exit 1; }
  kill -0 $PID || { echo "server died" >&2; exit 1; }
}
stop() { kill -TERM $PID; for _ in $(seq 100); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done; kill -KILL $PID 2>/dev/null; wait $PID || true; }
case $cmd in
setup)
  [ -d $P/corpus ] || $BENCH corpus --count 500 --out $P/corpus >/dev/null
  D=$P/data-$rev; rm -rf $D; mkdir -p $D
  start $D
  for i in $(seq 50); do echo bench$i@bench.test; done | xargs -P 2 -I{} sh -c "echo benchpass | $P/bin/postfach-$rev user add --config $D.toml --password-stdin {} >/dev/null"
  echo pop1@bench.test | xargs -I{} sh -c "echo benchpass | $P/bin/postfach-$rev user add --config $D.toml --password-stdin {} >/dev/null"
  $BENCH load --addr 127.0.0.1:$LMTP --users 'bench%d@bench.test' --count 50 --per-user 100 --conns 4 --corpus $P/corpus --quiet --password benchpass | grep -v '^{' | tail -2
  $BENCH load --addr 127.0.0.1:$LMTP --users 'pop%d@bench.test' --count 1 --per-user 1000 --conns 1 --corpus $P/corpus --quiet --password benchpass | grep -v '^{' | tail -2
  stop
  ;;
run)
  label=$1; shift
  R=$P/run-$rev; rm -rf $R $R.toml $R.log; cp -a $P/data-$rev $R
  start $R
  echo "PID $PID" >&2
  if [ -n "${HOOK:-}" ]; then (sleep ${HOOK_DELAY:-8}; $HOOK $PID) & hp=$!; fi
  $BENCH imap-mixed --addr 127.0.0.1:$IMAP --label $label --case imap-mixed-c50 --pid $PID --json $P/results.jsonl --corpus $P/corpus --clients 50 --duration ${DUR:-20}s --warmup ${WARMUP:-3s} --quiet "$@" | grep -v '^{' || true
  [ -n "${HOOK:-}" ] && wait $hp
  stop
  ;;
esac
