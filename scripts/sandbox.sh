#!/usr/bin/env bash
# The sandbox: isolated "servers" on this machine for the provider's tests, examples,
# demo and benchmarks.
#
#   npm run sandbox -- up [--hosts N] | down | status [--json]
#   npm run sandbox -- fault HOST ssh|net|docker|api stop|start
#   npm run sandbox -- fault registry|registry2|registry3|registry4 stop|start
#   npm run sandbox -- fault s3 stop|start      (the object store holding shared state)
#   npm run sandbox -- fresh fresh1      (back to a new server's state, for bootstrap tests)
#
# Each host is a network namespace (own address on the kpbr0 bridge) plus a persistent
# mount namespace (own /root, /home, /tmp, /run, /var/lib/docker), running its own sshd and
# its own dockerd. dockerd and sshd share the host's mount namespace, so a path the provider
# writes over SSH is the path dockerd bind-mounts into containers. A password-protected
# registry runs in a namespace of its own and holds Traefik and the test-app images.
#
# The deploying machine's own Docker engine (where `pulumi up` builds images, as on a
# developer's laptop) runs in this machine's network namespace with its socket at
# $S/deployer/run/docker.sock (DOCKER_HOST; the machine's default socket is left alone), on
# its own bridge, without touching this machine's iptables. It has `registry:3` (Debian's
# registry server), the image Kamal 2's local registry runs.
#
# An S3-compatible object store (SeaweedFS) runs in a namespace of its own: Pulumi state
# shared by a team (s3://kp-state?endpoint=…).
#
# fresh1 is a host as a new server is before `pulumi-kamal bootstrap`: its own copy of /etc
# and its own /usr and package state (overlays on this machine's, so what is changed there
# stays there), where Docker is not installed (apt-get installs Debian's docker.io from a
# local repository of that one package), the deploy user may sudo without a password but is
# not in the docker group, and Debian's init script starts the engine (`service docker
# start`, with this host's options in /etc/default/docker).
set -euo pipefail
source "$(dirname "$0")/toolchain/lib.sh"
KP_STEP=sandbox

S="${KP_SANDBOX_DIR:-/var/tmp/kamal-pulumi-sandbox}"
NET_PREFIX="${KP_SANDBOX_NET:-10.213.0}"
BRIDGE=kpbr0
REGISTRY_NS=kp-registry
REGISTRY_ADDR="$NET_PREFIX.2:5000"
# The same registry (same storage) also listens on a port per test lane: REGISTRY_PORTS.
# Bumped when what the hosts are started with changes: a sandbox of another layout is
# started again.
LAYOUT=8
# Pebble (an ACME CA) and its DNS server, which answers the test names with sandbox hosts.
ACME_NS=kp-acme
ACME_IP="$NET_PREFIX.3"
# N app hosts (app1..appN, default 2) and db1. app1, app2 and db1 keep the addresses they
# have always had (.11-.13); app3.. take .23 upwards. The list of a sandbox that is up is
# kept in $S/hosts.list, so that status, fault and down know it.
host_ip() { case "$1" in app1) echo "$NET_PREFIX.11" ;; app2) echo "$NET_PREFIX.12" ;; db1) echo "$NET_PREFIX.13" ;; fresh1) echo "$NET_PREFIX.14" ;;
  app*) echo "$NET_PREFIX.$((20 + ${1#app}))" ;; esac; }
set_hosts() { # number of app hosts
  HOSTS=(); for i in $(seq 1 "$1"); do HOSTS+=("app$i"); done; HOSTS+=(db1 fresh1)
  HOST_IP=(); for h in "${HOSTS[@]}"; do HOST_IP[$h]="$(host_ip "$h")"; done
}
declare -A HOST_IP
if [ -f "$S/hosts.list" ]; then set_hosts "$(grep -c '^app' "$S/hosts.list")"; else set_hosts 2; fi
DEPLOY_USER=deploy

die() { kp_log "error: $*"; exit 1; }
ns_of() { echo "kp-$1"; }
in_host() { local h="$1"; shift; nsenter --net="/var/run/netns/$(ns_of "$h")" --mount="$S/ns/$h" -- "$@"; }
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
is_fresh() { [ "$1" = fresh1 ]; }

# ---------------------------------------------------------------- prerequisites
ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  # Debian's default busybox is dynamic and would not run in a scratch image.
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  command -v curl >/dev/null || missing+=(curl)
  command -v htpasswd >/dev/null || missing+=(apache2-utils)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v sudo >/dev/null || missing+=(sudo)
  command -v ip >/dev/null || missing+=(iproute2)
  if [ ${#missing[@]} -gt 0 ]; then
    kp_log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  getent group docker >/dev/null || groupadd --system docker
  id "$DEPLOY_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --groups docker "$DEPLOY_USER"
  id -nG "$DEPLOY_USER" | grep -qw docker || usermod -aG docker "$DEPLOY_USER"
  # "!" marks the account locked and sshd (without PAM) refuses it; "*" is no password.
  [ "$(getent shadow "$DEPLOY_USER" | cut -d: -f2)" = '*' ] || usermod -p '*' "$DEPLOY_USER"
}

# ---------------------------------------------------------------- teardown
down() {
  for h in "${HOSTS[@]}"; do
    local ns; ns="$(ns_of "$h")"
    if ip netns list 2>/dev/null | grep -qw "$ns"; then
      # Everything that runs in the host dies with it: sshd, dockerd, shims, containers.
      for sig in TERM KILL; do
        local pids; pids="$(ip netns pids "$ns" 2>/dev/null || true)"
        [ -n "$pids" ] && kill -s "$sig" $pids 2>/dev/null || true
        [ "$sig" = TERM ] && [ -n "$pids" ] && sleep 2
      done
      ip netns del "$ns" 2>/dev/null || true
    fi
    ip link del "kp-$h" 2>/dev/null || true
    [ -e "$S/ns/$h" ] && { umount "$S/ns/$h" 2>/dev/null || umount -l "$S/ns/$h" 2>/dev/null || true; }
  done
  if ip netns list 2>/dev/null | grep -qw "$REGISTRY_NS"; then
    local pids; pids="$(ip netns pids "$REGISTRY_NS" 2>/dev/null || true)"
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    ip netns del "$REGISTRY_NS" 2>/dev/null || true
  fi
  ip link del kp-registry 2>/dev/null || true
  if ip netns list 2>/dev/null | grep -qw "$S3_NS"; then
    local pids; pids="$(ip netns pids "$S3_NS" 2>/dev/null || true)"
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    ip netns del "$S3_NS" 2>/dev/null || true
  fi
  ip link del kp-s3 2>/dev/null || true
  if ip netns list 2>/dev/null | grep -qw "$ACME_NS"; then
    local pids; pids="$(ip netns pids "$ACME_NS" 2>/dev/null || true)"
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    ip netns del "$ACME_NS" 2>/dev/null || true
  fi
  ip link del kp-acme 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  deployer_down
  if [ -d "$S" ]; then
    mountpoint -q "$S/ns" 2>/dev/null && { umount "$S/ns" 2>/dev/null || umount -l "$S/ns"; }
    # Mounts left in the root namespace by a crashed run (none in a clean run).
    grep " $S/" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$S"
  fi
}

# The parts, each a file of functions (scripts/sandbox/).
for part in services hosts images; do
  # shellcheck source=/dev/null
  source "$(dirname "$0")/sandbox/$part.sh"
done

# ---------------------------------------------------------------- state
write_state() {
  S3_ENDPOINT="$S3_IP:$S3_PORT" S3_BUCKET="$S3_BUCKET" node - "$S" "$REGISTRY_ADDR" "$KP_TRAEFIK_VERSION" "$KP_KAMAL_PROXY_VERSION" "$DEPLOY_USER" "${HOSTS[@]}" <<'EOF' >"$S/state.json"
const fs = require("fs");
const [S, registry, traefikVersion, kamalProxyVersion, deployUser, ...hosts] = process.argv.slice(2);
const net = registry.split(":")[0].split(".").slice(0, 3).join(".");
const ips = Object.fromEntries(hosts.map((h) => [h, h === "db1" ? "13" : h === "fresh1" ? "14" : /^app[12]$/.test(h) ? String(10 + Number(h.slice(3))) : String(20 + Number(h.slice(3)))]));
const read = (f) => fs.readFileSync(`${S}/${f}`, "utf8").trim();
const state = {
  dir: S,
  hosts: hosts.map((name) => ({
    name, address: `${net}.${ips[name]}`, port: 22, user: "root", deployUser,
    privateKeyPath: `${S}/id_ed25519`, knownHostsPath: `${S}/known_hosts`,
    dockerHost: `unix://${S}/hosts/${name}/run/docker.sock`,
    role: name.startsWith("db") ? "accessories" : name.startsWith("fresh") ? "fresh" : "apps",
  })),
  registry: { address: registry, username: read("registry/username"), password: read("registry/password") },
  // The deploying machine's Docker engine: image builds (DOCKER_HOST).
  deployer: { dockerHost: `unix://${S}/deployer/run/docker.sock` },
  acme: {
    directory: `https://${net}.3:14000/dir`,
    // Pebble's own HTTPS certificate (what Traefik's ACME client must trust), its roots, and
    // the DNS server's management API (POST /add-a {host, addresses}).
    caCertificatesPath: `${S}/acme/cert.pem`,
    roots: `https://${net}.3:15000/roots/0`,
    dns: `http://${net}.3:8055`,
  },
  // The object store (SeaweedFS's S3 API, plain HTTP): shared Pulumi state.
  s3: { endpoint: process.env.S3_ENDPOINT, bucket: process.env.S3_BUCKET, region: "us-east-1", accessKeyId: read("s3/access-key"), secretAccessKey: read("s3/secret-key") },
  images: {
    traefik: `${registry}/kp/traefik:${traefikVersion}`,
    traefikAlt: `${registry}/kp/traefik:${traefikVersion}-alt`,
    kamalProxy: `${registry}/basecamp/kamal-proxy:${kamalProxyVersion}`,
    app: Object.fromEntries(["v1", "v2", "broken"].map((t) => [t, `${registry}/kp/testapp:${t}`])),
  },
};
process.stdout.write(JSON.stringify(state, null, 2) + "\n");
EOF
}

images_hash() { # what the registry's images are built from
  { cat "$KP_ROOT"/testapp/*.go "$KP_ROOT/testapp/go.mod"; echo "$KP_TRAEFIK_VERSION $KP_KAMAL_PROXY_VERSION alt assets"; } | sha256sum | cut -d' ' -f1
}

healthy() { # every process the sandbox needs is alive and answering
  [ -f "$S/ready" ] || return 1
  [ "$(cat "$S/layout" 2>/dev/null)" = "$LAYOUT" ] || return 1
  for port in "${REGISTRY_PORTS[@]}"; do pid_alive "$(registry_pidfile "$port")" || return 1; done
  pid_alive "$S/acme/pebble.pid" && pid_alive "$S/acme/challtestsrv.pid" || return 1
  pid_alive "$S/s3/pid" || return 1
  pid_alive "$S/deployer/run/docker.pid" || return 1
  for h in "${HOSTS[@]}"; do
    pid_alive "$S/hosts/$h/run/sshd.pid" || return 1
    is_fresh "$h" || pid_alive "$S/hosts/$h/run/docker.pid" || return 1
  done
}

# ---------------------------------------------------------------- commands
up() {
  # Without --hosts: as many app hosts as are up (2 for a new sandbox); with it, exactly N.
  local want=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --hosts) want="${2:-}"; shift 2 ;;
      *) die "usage: sandbox up [--hosts N]" ;;
    esac
  done
  local current=2 # a sandbox started before hosts.list existed had app1 and app2
  [ -f "$S/hosts.list" ] && current="$(grep -c '^app' "$S/hosts.list")"
  [ -n "$want" ] || { healthy && want="$current" || want=2; }
  [[ "$want" =~ ^[0-9]+$ ]] && [ "$want" -ge 1 ] && [ "$want" -le 60 ] || die "--hosts takes a number of app hosts from 1 to 60"
  if healthy && [ "$current" != "$want" ]; then
    kp_log "sandbox is up with other hosts: starting it again with $want app hosts"
    down
  fi
  set_hosts "$want"
  if healthy; then
    if [ "$(cat "$S/images.hash" 2>/dev/null)" != "$(images_hash)" ]; then
      kp_log "test app or Traefik changed: rebuilding the registry's images"
      build_images && images_hash >"$S/images.hash"
    fi
    write_state
    kp_log "already up ($S)"
    return 0
  fi
  local t0; t0=$(date +%s)
  ensure_packages
  kp_log "cleaning any earlier sandbox"
  down
  mkdir -p "$S/ns" "$S/registry" "$S/hosts"
  chmod 755 "$S"
  mount --bind "$S/ns" "$S/ns" && mount --make-private "$S/ns"
  ssh-keygen -q -t ed25519 -N '' -C kp-sandbox-client -f "$S/id_ed25519"
  echo kp-deployer >"$S/registry/username"
  head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$S/registry/password"
  chmod 600 "$S/registry/password"

  ensure_bridge
  attach_ns "$REGISTRY_NS" kp-registry "${REGISTRY_ADDR%:*}"
  for port in "${REGISTRY_PORTS[@]}"; do registry_up "$port"; done
  attach_ns "$ACME_NS" kp-acme "$ACME_IP"
  acme_up
  attach_ns "$S3_NS" kp-s3 "$S3_IP"
  s3_up
  apt_repo
  : >"$S/known_hosts"
  for h in "${HOSTS[@]}"; do
    kp_log "starting host $h (${HOST_IP[$h]})"
    host_dirs "$h"
    attach_ns "$(ns_of "$h")" "kp-$h" "${HOST_IP[$h]}"
    host_mount_ns "$h"
    sshd_start "$h"
    is_fresh "$h" || dockerd_start "$h"
    echo "${HOST_IP[$h]} $(cut -d' ' -f1,2 "$S/hosts/$h/etc/ssh_host_ed25519_key.pub")" >>"$S/known_hosts"
  done
  deployer_up
  build_images
  images_hash >"$S/images.hash"
  printf '%s\n' "${HOSTS[@]}" >"$S/hosts.list"
  write_state
  echo "$LAYOUT" >"$S/layout"
  touch "$S/ready"
  kp_log "sandbox up in $(( $(date +%s) - t0 ))s: $(printf '%s ' "${HOSTS[@]}")+ registry $REGISTRY_ADDR + ACME CA $ACME_IP + S3 $S3_IP:$S3_PORT"
}

status() {
  if [ "${1:-}" = "--json" ]; then
    # Not `healthy`: a test may have stopped a host's sshd or the registry on purpose.
    [ -f "$S/ready" ] || die "sandbox is not up (npm run sandbox -- up)"
    cat "$S/state.json"
    return
  fi
  if ! healthy; then echo "sandbox: down"; return 1; fi
  echo "sandbox: up ($S)"
  printf '  registry  %s  pid %s\n' "$REGISTRY_ADDR" "$(cat "$S/registry/pid")"
  for h in "${HOSTS[@]}"; do
    local containers
    containers="$(DOCKER_HOST="unix://$S/hosts/$h/run/docker.sock" docker ps -q 2>/dev/null | wc -l || true)"
    printf '  %-8s  %s  sshd %s  dockerd %s  %s running containers\n' "$h" "${HOST_IP[$h]}" \
      "$(cat "$S/hosts/$h/run/sshd.pid")" "$(pid_alive "$S/hosts/$h/run/docker.pid" && cat "$S/hosts/$h/run/docker.pid" || echo stopped)" "$containers"
  done
}

fault() {
  local target="${1:-}" what="${2:-}" action="${3:-}"
  if [ "$target" = s3 ]; then
    case "$what" in stop) s3_down ;; start) pid_alive "$S/s3/pid" || s3_up ;; *) die "usage: fault s3 stop|start" ;; esac
    return
  fi
  if [[ "$target" =~ ^registry([234]?)$ ]]; then
    local port="${REGISTRY_PORTS[$(( ${BASH_REMATCH[1]:-1} - 1 ))]}"
    case "$what" in stop) registry_down "$port" ;; start) pid_alive "$(registry_pidfile "$port")" || registry_up "$port" ;;
      *) die "usage: fault $target stop|start" ;; esac
    return
  fi
  [ -n "${HOST_IP[$target]:-}" ] || die "unknown host '$target' (hosts: ${HOSTS[*]})"
  case "$what:$action" in
    ssh:stop) sshd_stop "$target" ;;
    ssh:start) pid_alive "$S/hosts/$target/run/sshd.pid" || sshd_start "$target" ;;
    net:stop) net_cut "$target" ;;
    net:start) net_restore "$target" ;;
    api:stop) api_block "$target" ;;
    api:start) api_unblock "$target" ;;
    docker:stop) dockerd_stop "$target" ;;
    docker:start) pid_alive "$S/hosts/$target/run/docker.pid" || dockerd_start "$target" ;;
    *) die "usage: fault HOST ssh|net|docker|api stop|start" ;;
  esac
}

[ "$(id -u)" = 0 ] || die "the sandbox needs root (network and mount namespaces)"
cmd="${1:-status}"; shift || true
case "$cmd" in
  up) up "$@" ;;
  down) down; kp_log "sandbox down" ;;
  status) status "$@" ;;
  fault) fault "$@" ;;
  fresh) fresh_reset "${1:-fresh1}" ;;
  *) die "usage: sandbox up | down | status [--json] | fault ... | fresh HOST" ;;
esac
