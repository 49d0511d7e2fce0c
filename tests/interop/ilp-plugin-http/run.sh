#!/usr/bin/env bash
# Interop check (by hand, needs Node.js and the npm registry): two apps on the published ilp-plugin-http pay each
# other through a ledgerwire node, and the node's balances must match what they saw.
#   tests/interop/ilp-plugin-http/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

(cd "$work" && npm init -y >/dev/null && npm install --silent ilp-plugin-http@1.6.1 ilp-packet@3.1.3 ilp-protocol-ildcp@2.2.3 >/dev/null)
cargo build --release -q -p ledgerwire-node --manifest-path "$root/Cargo.toml"
bin="$root/target/release/ledgerwire"
home="$work/home"
"$bin" init --home "$home" >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
admin=$(free_port); ilp=$(free_port); p2p=$(free_port); sport=$(free_port); rport=$(free_port)
sed -i "s/0.0.0.0:26656/127.0.0.1:$p2p/; s/127.0.0.1:26658/127.0.0.1:$admin/; s/127.0.0.1:26659/127.0.0.1:$ilp/; s/^address = \"\"/address = \"test.n\"/" "$home/config/config.toml"
"$bin" start --home "$home" 2>"$work/node.log" &
pid=$!
token=$(cat "$home/config/admin_token")
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$ilp/" >/dev/null && break; sleep 0.1; done
add() {
  curl -sf -H "Authorization: Bearer $token" -d "{\"id\":\"$1\",\"relation\":\"child\",\"asset_code\":\"USD\",\"asset_scale\":9,\"http\":{\"url\":\"http://127.0.0.1:$2/\",\"incoming_token\":\"$3\",\"outgoing_token\":\"$4\"}}" "http://127.0.0.1:$admin/accounts" >/dev/null
}
add sender "$sport" sender-to-node-token-01 node-to-sender-token-01
add receiver "$rport" receiver-to-node-token1 node-to-receiver-token1
result=$(cd "$work" && NODE_PATH="$work/node_modules" node "$here/pay.js" "127.0.0.1:$ilp" "$sport" "$rport")
echo "apps:     $result"
for a in sender receiver; do
  echo "balance $a: $(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$admin/accounts/$a/balance")"
done
# Every payment fulfilled, seen once by the receiver, and the node's balances match (exit status 1 otherwise).
python3 - "$result" "$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$admin/accounts/sender/balance")" \
  "$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$admin/accounts/receiver/balance")" <<'PY'
import json, sys
apps, sender, receiver = (json.loads(a) for a in sys.argv[1:4])
ok = (apps["sent"] == apps["fulfilled"] == apps["received"] > 0
      and int(sender["balance"]) == apps["sent"] and int(receiver["balance"]) == -apps["sent"]
      and apps["sender_address"] == "test.n.sender" and apps["unroutable"]["code"] == "F02"
      and apps["unroutable"]["triggered_by"] == "test.n")
print("interop: ok" if ok else "interop: MISMATCH")
sys.exit(0 if ok else 1)
PY
