# Sourced by scripts/sandbox.sh (its settings and helpers are in scope): the deploying machine's engine, the network, the registry and the ACME CA.
# shellcheck shell=bash

# ---------------------------------------------------------------- the deploying machine's engine
DEPLOYER_BRIDGE=kpdocker0
DEPLOYER_NET="${KP_DEPLOYER_NET:-10.214.0}"
deployer_up() {
  local d="$S/deployer"
  mkdir -p "$d/docker" "$d/run" "$d/log"
  ip link show "$DEPLOYER_BRIDGE" >/dev/null 2>&1 || {
    ip link add "$DEPLOYER_BRIDGE" type bridge
    ip addr add "$DEPLOYER_NET.1/24" dev "$DEPLOYER_BRIDGE"
    ip link set "$DEPLOYER_BRIDGE" up
  }
  # No iptables changes, no forwarding: this machine's network stays as it is. Published
  # ports (the local registry on 127.0.0.1) go through Docker's userland proxy.
  setsid dockerd --host "unix://$d/run/docker.sock" --data-root "$d/docker" --exec-root "$d/run/exec" \
    --pidfile "$d/run/docker.pid" --bridge "$DEPLOYER_BRIDGE" --iptables=false --ip-forward=false --ip-masq=false \
    $(printf -- " --insecure-registry ${REGISTRY_ADDR%:*}:%s" "${REGISTRY_PORTS[@]}") \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent /kp-deployer --storage-driver overlay2 --log-level warn \
    >>"$d/log/dockerd.log" 2>&1 </dev/null &
  wait_for "the deploying machine's dockerd" 60 env DOCKER_HOST="unix://$d/run/docker.sock" docker version
  # registry:3 as Kamal 2's local registry runs it, made from Debian's registry server (it
  # needs only the C library); its configuration where registry:3 keeps it.
  if ! DOCKER_HOST="unix://$d/run/docker.sock" docker image inspect registry:3 >/dev/null 2>&1; then
    local b="$S/build/registry" bin; bin="$(command -v docker-registry)"
    rm -rf "$b" && mkdir -p "$b/bin" "$b/etc/distribution" "$b/var/lib/registry" "$b/tmp"
    cp "$bin" "$b/bin/registry"
    for lib in $(ldd "$bin" | grep -oE '/[^ ]+\.so[^ ]*'); do mkdir -p "$b$(dirname "$lib")" && cp -L "$lib" "$b$lib"; done
    printf 'version: 0.1\nlog: { level: warn }\nstorage:\n  filesystem: { rootdirectory: /var/lib/registry }\n  delete: { enabled: true }\nhttp:\n  addr: :5000\n' >"$b/etc/distribution/config.yml"
    chmod 1777 "$b/tmp"
    tar -C "$b" -c . | DOCKER_HOST="unix://$d/run/docker.sock" docker import \
      --change 'ENTRYPOINT ["/bin/registry"]' --change 'CMD ["serve", "/etc/distribution/config.yml"]' \
      --change 'EXPOSE 5000' --change 'VOLUME ["/var/lib/registry"]' - registry:3 >/dev/null
    kp_log "made registry:3 for the deploying machine's engine"
  fi
}
deployer_down() {
  local d="$S/deployer"
  if pid_alive "$d/run/docker.pid"; then
    local pid; pid="$(cat "$d/run/docker.pid")"
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  pkill -f "containerd-shim.*$d/run/exec" 2>/dev/null || true
  ip link del "$DEPLOYER_BRIDGE" 2>/dev/null || true
}

# ---------------------------------------------------------------- network
ensure_bridge() {
  ip link add "$BRIDGE" type bridge
  ip addr add "$NET_PREFIX.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

attach_ns() { # netns, veth name, address
  local ns="$1" veth="$2" addr="$3"
  ip netns add "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip link set "$veth" master "$BRIDGE" up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}

# ---------------------------------------------------------------- registry
# One port per test lane (testbed/lane.ts), all serving the same storage: a lane's
# registry faults stop only its own port. Fault names: registry (5000), registry2, registry3, registry4.
REGISTRY_PORTS=(5000 5001 5002 5003)
registry_pidfile() { if [ "$1" = 5000 ]; then echo "$S/registry/pid"; else echo "$S/registry/pid-$1"; fi; }
registry_up() { # [port]
  local port="${1:-5000}" d="$S/registry"
  local addr="${REGISTRY_ADDR%:*}:$port"
  mkdir -p "$d/data"
  htpasswd -Bbc "$d/htpasswd" "$(cat "$d/username")" "$(cat "$d/password")" 2>/dev/null
  cat >"$d/config-$port.yml" <<EOF
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $d/data }
  delete: { enabled: true }
http:
  addr: $addr
auth:
  htpasswd: { realm: kp-sandbox, path: $d/htpasswd }
EOF
  nsenter --net="/var/run/netns/$REGISTRY_NS" -- setsid docker-registry serve "$d/config-$port.yml" \
    >>"$d/registry-$port.log" 2>&1 </dev/null &
  echo $! >"$(registry_pidfile "$port")"
  wait_for "registry on port $port" 30 curl -fs -o /dev/null -u "$(cat "$d/username"):$(cat "$d/password")" "http://$addr/v2/"
}
registry_down() { # [port]
  local f; f="$(registry_pidfile "${1:-5000}")"
  pid_alive "$f" && kill "$(cat "$f")"; rm -f "$f"
}

# ---------------------------------------------------------------- ACME CA
# Pebble serves ACME on :14000 (HTTPS, with a certificate for its address made here) and
# validates HTTP-01 on port 80 and TLS-ALPN-01 on 443 of whatever address its DNS server
# (pebble-challtestsrv, management API on :8055) gives for a name: app1 unless a test adds
# a record. Its root CA is new at every start (GET https://$ACME_IP:15000/roots/0).
acme_up() {
  local d="$S/acme" bin; bin="$(bash "$KP_ROOT/scripts/toolchain/pebble.sh")"
  mkdir -p "$d"
  [ -f "$d/cert.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=kp-acme" -addext "subjectAltName=IP:$ACME_IP" -addext "basicConstraints=critical,CA:TRUE" \
    -keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null
  cat >"$d/pebble.json" <<EOF2
{ "pebble": { "listenAddress": "$ACME_IP:14000", "managementListenAddress": "$ACME_IP:15000",
  "certificate": "$d/cert.pem", "privateKey": "$d/key.pem", "httpPort": 80, "tlsPort": 443,
  "ocspResponderURL": "", "externalAccountBindingRequired": false, "domainBlocklist": [],
  "retryAfter": { "authz": 1, "order": 1 }, "keyAlgorithm": "ecdsa",
  "profiles": { "default": { "description": "sandbox", "validityPeriod": 7776000 } } } }
EOF2
  nsenter --net="/var/run/netns/$ACME_NS" -- setsid "$bin/pebble-challtestsrv" \
    -dnsserver "$ACME_IP:8053" -management "$ACME_IP:8055" -http01 "" -https01 "" -tlsalpn01 "" -doh "" \
    -defaultIPv4 "${HOST_IP[app1]}" -defaultIPv6 "" >>"$d/challtestsrv.log" 2>&1 </dev/null &
  echo $! >"$d/challtestsrv.pid"
  # No random waits or refused nonces: the tests measure the provider, not Pebble's chaos.
  nsenter --net="/var/run/netns/$ACME_NS" -- env PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
    setsid "$bin/pebble" -config "$d/pebble.json" -dnsserver "$ACME_IP:8053" >>"$d/pebble.log" 2>&1 </dev/null &
  echo $! >"$d/pebble.pid"
  wait_for "Pebble" 30 curl -fs -o /dev/null --cacert "$d/cert.pem" "https://$ACME_IP:14000/dir"
  wait_for "pebble-challtestsrv" 30 curl -fs -o /dev/null -X POST -d '{"host":"probe.kp.test","addresses":["'"${HOST_IP[app1]}"'"]}' "http://$ACME_IP:8055/add-a"
}

wait_for() { # what, seconds, command...
  local what="$1" secs="$2"; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what did not come up within ${secs}s"
}

# ---------------------------------------------------------------- object store (S3)
# SeaweedFS (`weed server -s3`, built from Go modules) in a namespace of its own: the
# S3-compatible store a team keeps its Pulumi state in (s3://BUCKET?endpoint=…). One bucket,
# kp-state, made at start; its access key in $S/s3/. `fault s3 stop|start` stops and starts
# the process, the data kept (a store that goes away mid-deploy).
S3_NS=kp-s3
S3_IP="$NET_PREFIX.4"
S3_PORT=8333
S3_BUCKET=kp-state
s3_up() {
  local d="$S/s3" bin; bin="$(bash "$KP_ROOT/scripts/toolchain/seaweedfs.sh")/weed"
  mkdir -p "$d/data"
  [ -f "$d/access-key" ] || echo "kp$(head -c 9 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" >"$d/access-key"
  [ -f "$d/secret-key" ] || { head -c 30 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$d/secret-key"; chmod 600 "$d/secret-key"; }
  printf '{"identities":[{"name":"deployer","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
    "$(cat "$d/access-key")" "$(cat "$d/secret-key")" >"$d/s3.json"
  chmod 600 "$d/s3.json"
  nsenter --net="/var/run/netns/$S3_NS" -- setsid "$bin" server -ip="$S3_IP" -ip.bind="$S3_IP" -dir="$d/data" \
    -s3 -s3.port="$S3_PORT" -s3.config="$d/s3.json" -master.volumeSizeLimitMB=64 -volume.max=20 \
    >>"$d/weed.log" 2>&1 </dev/null &
  echo $! >"$d/pid"
  wait_for "SeaweedFS S3" 60 s3_bucket
}
s3_bucket() { # the bucket made (or there already: it is kept across restarts), signed as any S3 client signs
  local code; code="$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$(cat "$S/s3/access-key"):$(cat "$S/s3/secret-key")" -X PUT "http://$S3_IP:$S3_PORT/$S3_BUCKET")"
  [ "$code" = 200 ] || [ "$code" = 409 ]
}
s3_down() {
  local f="$S/s3/pid"
  if pid_alive "$f"; then
    local pid; pid="$(cat "$f")"
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
