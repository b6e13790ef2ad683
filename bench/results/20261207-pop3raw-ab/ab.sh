#!/bin/bash
# ab.sh BIN_A BIN_B [mode] [repeats] [env_a] [env_b]: serve data-a with A, data-b with B, alternate.
A=$1 B=$2 MODE=${3:-raw} REP=${4:-9}
cd /tmp/pr
env $5 $A serve --config pf-a.toml > a.log 2>&1 & PA=$!
env $6 $B serve --config pf-b.toml > b.log 2>&1 & PB=$!
for p in 27110 27111; do for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done; done
python3 /work/wt/pop3raw/bench/pop3-python.py --mode $MODE --server A=127.0.0.1:27110 --server B=127.0.0.1:27111 --pid A=$PA --pid B=$PB --repeats $REP --warmup 1 --quiet | grep -v '^{'
kill $PA $PB; wait $PA $PB 2>/dev/null
