#!/usr/bin/env bash
# make cluster: three provd nodes of one Raft cluster on 127.0.0.1, in the
# foreground. Ctrl-C stops all three. Run it again to restart them: each
# node rejoins from its data directory.
#
#   node   gRPC            HTTP (tiles)    Raft            admin (metrics) data
#   node1  127.0.0.1:7410  127.0.0.1:7411  127.0.0.1:7412  127.0.0.1:7413  $DATA/node1
#   node2  127.0.0.1:7420  127.0.0.1:7421  127.0.0.1:7422  127.0.0.1:7423  $DATA/node2
#   node3  127.0.0.1:7430  127.0.0.1:7431  127.0.0.1:7432  127.0.0.1:7433  $DATA/node3
#
# node1 bootstraps the cluster; node2 and node3 join through node1. The
# three share one log key, $DATA/cluster-log.key (made on first use), and
# trust signers on first use (--dev). Logs: $DATA/nodeN.log.
set -euo pipefail
BIN=${BIN:-./bin}
DATA=${DATA:-./data}
mkdir -p "$DATA"
key="$DATA/cluster-log.key"
if [ ! -f "$key" ]; then
  "$BIN/prov" keygen --out "$DATA" --name cluster-log >/dev/null
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping the cluster..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait || true
  echo "stopped; data kept in $DATA/node1..3 (make cluster restarts it)"
}
trap cleanup INT TERM EXIT

start() { # start N extra-flags...
  local i=$1; shift
  "$BIN/provd" --dev --data "$DATA/node$i" --node-id "node$i" \
    --grpc-addr "127.0.0.1:74${i}0" --http-addr "127.0.0.1:74${i}1" --raft-addr "127.0.0.1:74${i}2" \
    --admin-addr "127.0.0.1:74${i}3" \
    --log-key "$key" "$@" >"$DATA/node$i.out" 2>"$DATA/node$i.log" &
  pids+=($!)
}

wait_up() { # wait until node N answers
  for _ in $(seq 100); do
    if "$BIN/prov" --server "127.0.0.1:74${1}0" --log-key "$DATA/cluster-log.pub" --timeout 1s checkpoint >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "${pids[$(($1 - 1))]}" 2>/dev/null; then
      echo "node$1 exited; its log ($DATA/node$1.log) ends with:" >&2
      tail -n 5 "$DATA/node$1.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "node$1 did not come up; see $DATA/node$1.log" >&2
  exit 1
}

start 1 --bootstrap
wait_up 1
start 2 --join 127.0.0.1:7410
start 3 --join 127.0.0.1:7410
wait_up 2
wait_up 3
for _ in $(seq 150); do # until a leader is elected and all three members answer
  n=$("$BIN/prov" --server 127.0.0.1:7410 --log-key "$DATA/cluster-log.pub" --timeout 2s cluster status 2>/dev/null | grep -cE '^node[123] +(Leader|Follower) ' || true)
  if [ "$n" = 3 ]; then break; fi
  sleep 0.2
done

cat <<MSG

provledger cluster of 3 nodes is running (Ctrl-C stops all three):

  node   gRPC            HTTP tiles                        Raft            metrics                          data, log
  node1  127.0.0.1:7410  http://127.0.0.1:7411/checkpoint  127.0.0.1:7412  http://127.0.0.1:7413/metrics  $DATA/node1, $DATA/node1.log
  node2  127.0.0.1:7420  http://127.0.0.1:7421/checkpoint  127.0.0.1:7422  http://127.0.0.1:7423/metrics  $DATA/node2, $DATA/node2.log
  node3  127.0.0.1:7430  http://127.0.0.1:7431/checkpoint  127.0.0.1:7432  http://127.0.0.1:7433/metrics  $DATA/node3, $DATA/node3.log

$("$BIN/prov" --server 127.0.0.1:7410 --log-key "$DATA/node1/log.pub" cluster status 2>&1 || true)

Try, in another shell (any node takes appends; followers forward them to the leader):
  ./bin/prov keygen --out ./keys
  ./bin/prov --server 127.0.0.1:7420 append --key ./keys/signer.key --type openlineage examples/openlineage-run.json --log-key $DATA/node1/log.pub
  ./bin/prov --server 127.0.0.1:7430 --log-key $DATA/node1/log.pub cluster status
  ./bin/prov --server 127.0.0.1:7430 cluster transfer-leadership
  kill -9 <pid of the leader>   # pids: ${pids[*]} (node1 node2 node3); a new leader is elected in ~2 s
MSG
wait
