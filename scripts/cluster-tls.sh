#!/usr/bin/env bash
# make cluster-tls: three provd nodes of one Raft cluster on 127.0.0.1, all
# traffic over TLS, in the foreground. Ctrl-C stops all three; run it
# again to restart them (certificates and data are kept).
#
#   node   gRPC (TLS)      HTTPS (tiles)   Raft (mTLS)     admin (metrics) data
#   node1  127.0.0.1:7510  127.0.0.1:7511  127.0.0.1:7512  127.0.0.1:7513  $DATA/tls/node1
#   node2  127.0.0.1:7520  127.0.0.1:7521  127.0.0.1:7522  127.0.0.1:7523  $DATA/tls/node2
#   node3  127.0.0.1:7530  127.0.0.1:7531  127.0.0.1:7532  127.0.0.1:7533  $DATA/tls/node3
#
# `provd certs` makes (once) in $DATA/tls/certs a cluster CA with a
# certificate per node (Raft both ways, forwarding to the leader, and the
# API's server certificate) and a client CA with a client certificate for
# prov. The API requires a client certificate (mutual TLS) and
# authenticates by it (--auth-tokens $DATA/tls/tokens: the nodes are
# admins, the client may append and read everywhere). Logs:
# $DATA/tls/nodeN.log.
set -euo pipefail
BIN=${BIN:-./bin}
DATA=${DATA:-./data}
D="$DATA/tls"
C="$D/certs"
mkdir -p "$D"
if [ ! -f "$C/client.crt" ]; then
  "$BIN/provd" certs --out "$C" --nodes node1,node2,node3 --clients client --hosts 127.0.0.1,localhost >"$D/certs.txt"
fi
cat >"$D/tokens" <<TOKENS
# made by scripts/cluster-tls.sh: the nodes (forwarded appends, joins) and one client
node1  mtls:uri:spiffe://provledger.local/node/node1  roles=admin
node2  mtls:uri:spiffe://provledger.local/node/node2  roles=admin
node3  mtls:uri:spiffe://provledger.local/node/node3  roles=admin
client mtls:uri:spiffe://provledger.local/client/client roles=appender,reader ns=*
TOKENS
key="$D/cluster-log.key"
if [ ! -f "$key" ]; then
  "$BIN/prov" keygen --out "$D" --name cluster-log >/dev/null
fi
PROV=("$BIN/prov" --log-key "$D/cluster-log.pub" --tls-ca "$C/cluster-ca.crt" --tls-cert "$C/client.crt" --tls-key "$C/client.key")

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping the cluster..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait || true
  echo "stopped; data kept in $D/node1..3 (make cluster-tls restarts it)"
}
trap cleanup INT TERM EXIT

start() { # start N extra-flags...
  local i=$1; shift
  "$BIN/provd" --dev --data "$D/node$i" --node-id "node$i" \
    --grpc-addr "127.0.0.1:75${i}0" --http-addr "127.0.0.1:75${i}1" --raft-addr "127.0.0.1:75${i}2" \
    --admin-addr "127.0.0.1:75${i}3" --log-key "$key" \
    --tls-cert "$C/node$i.crt" --tls-key "$C/node$i.key" --tls-client-ca "$C/client-ca.crt" \
    --peer-tls-cert "$C/node$i.crt" --peer-tls-key "$C/node$i.key" --peer-tls-ca "$C/cluster-ca.crt" \
    --auth-tokens "$D/tokens" \
    "$@" >"$D/node$i.out" 2>"$D/node$i.log" &
  pids+=($!)
}

wait_up() { # wait until node N answers
  for _ in $(seq 100); do
    if "${PROV[@]}" --server "127.0.0.1:75${1}0" --timeout 1s checkpoint >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "${pids[$(($1 - 1))]}" 2>/dev/null; then
      echo "node$1 exited; its log ($D/node$1.log) ends with:" >&2
      tail -n 5 "$D/node$1.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "node$1 did not come up; see $D/node$1.log" >&2
  exit 1
}

start 1 --bootstrap
wait_up 1
start 2 --join 127.0.0.1:7510
start 3 --join 127.0.0.1:7510
wait_up 2
wait_up 3
for _ in $(seq 150); do # until a leader is elected and all three members answer
  st=$("${PROV[@]}" --server 127.0.0.1:7510 --timeout 2s cluster status 2>/dev/null || true)
  n=$(grep -cE '^node[123] +(Leader|Follower) ' <<<"$st" || true)
  if [ "$n" = 3 ] && grep -qE '^node[123] +Leader ' <<<"$st"; then break; fi
  sleep 0.2
done

cat <<MSG

provledger cluster of 3 nodes over TLS is running (Ctrl-C stops all three):

  node   gRPC (TLS)      HTTPS tiles                        Raft (mTLS)     data, log
  node1  127.0.0.1:7510  https://127.0.0.1:7511/checkpoint  127.0.0.1:7512  $D/node1, $D/node1.log
  node2  127.0.0.1:7520  https://127.0.0.1:7521/checkpoint  127.0.0.1:7522  $D/node2, $D/node2.log
  node3  127.0.0.1:7530  https://127.0.0.1:7531/checkpoint  127.0.0.1:7532  $D/node3, $D/node3.log

Certificates in $C (cluster-ca: nodes; client-ca: clients); principals in $D/tokens.

$("${PROV[@]}" --server 127.0.0.1:7510 --log-key "$D/node1/log.pub" cluster status 2>&1 || true)

Try, in another shell (any node takes appends; followers forward them to the leader over mutual TLS):
  export PROVLEDGER_TLS_CA=$C/cluster-ca.crt PROVLEDGER_TLS_CERT=$C/client.crt PROVLEDGER_TLS_KEY=$C/client.key
  ./bin/prov keygen --out ./keys
  ./bin/prov --server 127.0.0.1:7520 append --key ./keys/signer.key --type openlineage examples/openlineage-run.json --log-key $D/node1/log.pub
  ./bin/prov --server 127.0.0.1:7530 --log-key $D/node1/log.pub cluster status
  curl --cacert $C/cluster-ca.crt --cert $C/client.crt --key $C/client.key https://127.0.0.1:7511/checkpoint
Rotate the node certificates without a restart (new connections use them):
  ./bin/provd certs --out $C --clients ""
MSG
wait
