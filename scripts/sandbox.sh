#!/usr/bin/env bash
# The sandbox: isolated "servers" on this machine for the provider's tests, examples,
# demo and benchmarks.
#
#   npm run sandbox -- up [--hosts N] | down | status [--json]
#   npm run sandbox -- fault HOST ssh|net|docker|api stop|start
#   npm run sandbox -- fault registry|registry2|registry3|registry4 stop|start
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
LAYOUT=7
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
# One port per test lane (test/helpers/lane.ts), all serving the same storage: a lane's
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

# ---------------------------------------------------------------- hosts
host_dirs() { # host
  local d="$S/hosts/$1"
  mkdir -p "$d"/{root/.ssh,home,tmp,run/sshd,docker,etc,log}
  chmod 700 "$d/root" "$d/root/.ssh"
  chmod 1777 "$d/tmp"
  chmod 755 "$d/run/sshd" "$d/home"
  mkdir -p "$d/home/$DEPLOY_USER/.ssh"
  cp "$S/id_ed25519.pub" "$d/root/.ssh/authorized_keys"
  cp "$S/id_ed25519.pub" "$d/home/$DEPLOY_USER/.ssh/authorized_keys"
  chmod 600 "$d/root/.ssh/authorized_keys" "$d/home/$DEPLOY_USER/.ssh/authorized_keys"
  chmod 700 "$d/home/$DEPLOY_USER" "$d/home/$DEPLOY_USER/.ssh"
  chown -R "$DEPLOY_USER:$DEPLOY_USER" "$d/home/$DEPLOY_USER"
  ssh-keygen -q -t ed25519 -N '' -C "kp-sandbox-$1" -f "$d/etc/ssh_host_ed25519_key"
}

host_mount_ns() { # host: a persistent mount namespace with the host's own files
  local h="$1" d="$S/hosts/$1"
  touch "$S/ns/$h"
  unshare --mount="$S/ns/$h" --propagation private true
  nsenter --mount="$S/ns/$h" -- sh -ec "
    mount --bind '$d/root' /root
    mount --bind '$d/home' /home
    mount --bind '$d/tmp' /tmp
    mount --bind '$d/run' /run
    mkdir -p /var/lib/docker && mount --bind '$d/docker' /var/lib/docker
  "
  is_fresh "$h" || return 0
  rm -rf "$d/etc-root" && cp -a /etc "$d/etc-root"
  printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$DEPLOY_USER" >"$d/etc-root/sudoers.d/kp-sandbox"
  chmod 440 "$d/etc-root/sudoers.d/kp-sandbox"
  # This machine caps open files and processes below what Debian's init script asks for, even
  # for root (no CAP_SYS_RESOURCE), and the script stops there (set -e): the copy asks, then
  # goes on with the machine's limits.
  sed -i -E 's/^([[:space:]]*ulimit .*)$/\1 || true/' "$d/etc-root/init.d/docker"
  cat >>"$d/etc-root/default/docker" <<EOF

# This sandbox host's engine (scripts/sandbox.sh): what dockerd_start gives the other hosts.
DOCKER_OPTS="$(dockerd_options "$h")"
DOCKER_LOGFILE=$d/log/dockerd.log
EOF
  # apt reads only the sandbox's repository (the machine's own sources are not reachable
  # from a host's network).
  echo "deb [trusted=yes] file:$S/apt ./" >"$d/etc-root/apt/sources.list"
  rm -f "$d/etc-root/apt/sources.list.d/"*
  nsenter --mount="$S/ns/$h" -- sh -ec "
    mount --bind '$d/etc-root' /etc
    for dir in /usr /var/lib/dpkg /var/lib/apt /var/cache/apt /var/log; do
      o='$d/overlay'/\$(echo \$dir | tr / _)
      mkdir -p \$o/upper \$o/work
      mount -t overlay overlay -o lowerdir=\$dir,upperdir=\$o/upper,workdir=\$o/work \$dir
    done
  "
  fresh_reset "$h"
}

# The one package a fresh host installs, Debian's docker.io at the version this machine has
# (its dependencies are installed already), as a flat apt repository in $S/apt; the .deb is
# cached by version under $KP_CACHE/debs.
apt_repo() {
  local v cache="$KP_CACHE/debs" f
  v="$(dpkg-query -W -f='${Version}' docker.io)"
  mkdir -p "$cache" "$S/apt"
  find_deb() { find "$cache" -maxdepth 1 -name 'docker.io_*.deb' | grep -F "_${v#*:}_" | head -1 || true; }
  f="$(find_deb)"
  if [ -z "$f" ]; then
    (cd "$cache" && { apt-get download -q "docker.io=$v" >/dev/null 2>&1 || { apt-get update -qq && apt-get download -q "docker.io=$v" >/dev/null 2>&1; }; }) ||
      die "could not download Debian's docker.io $v (the fresh host's bootstrap installs it)"
    f="$(find_deb)"
  fi
  cp -l "$f" "$S/apt/" 2>/dev/null || cp "$f" "$S/apt/"
  { dpkg-deb -f "$f"; echo "Filename: ./$(basename "$f")"; echo "Size: $(stat -c %s "$f")"; echo "SHA256: $(sha256sum "$f" | cut -d' ' -f1)"; echo; } >"$S/apt/Packages"
}

# A new server's state again: no Docker (removed as a package, its configuration kept),
# no engine data, the deploy user out of the docker group, no ~/.kamal.
fresh_reset() {
  local h="$1" d="$S/hosts/$1"
  is_fresh "$h" || die "$h is not a fresh host (fresh1 is)"
  dockerd_stop "$h"
  in_host "$h" sh -c "
    if dpkg-query -W -f='\${Status}' docker.io 2>/dev/null | grep -q ' installed'; then DEBIAN_FRONTEND=noninteractive dpkg --remove docker.io >/dev/null 2>&1; fi
    rm -f /usr/local/bin/docker
    if id -nG '$DEPLOY_USER' | tr ' ' '\n' | grep -qx docker; then gpasswd -d '$DEPLOY_USER' docker >/dev/null; fi
    rm -rf /home/'$DEPLOY_USER'/.kamal /root/.kamal /run/docker /run/docker-ssd.pid /run/containerd
    find /var/lib/docker -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null || true
  "
}

sshd_start() {
  local h="$1" d="$S/hosts/$1"
  cat >"$d/etc/sshd_config" <<EOF
ListenAddress ${HOST_IP[$h]}
Port 22
HostKey $d/etc/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile .ssh/authorized_keys
Subsystem sftp internal-sftp
# Real servers default to 10; the executor multiplexes well below that.
MaxSessions 10
MaxStartups 50:30:100
ClientAliveInterval 15
EOF
  in_host "$h" /usr/sbin/sshd -f "$d/etc/sshd_config" -E "$d/log/sshd.log"
  wait_for "sshd on $h" 15 bash -c "exec 3<>/dev/tcp/${HOST_IP[$h]}/22"
}
sshd_stop() { local h="$1"; in_host "$h" sh -c 'kill $(cat /run/sshd.pid) 2>/dev/null; rm -f /run/sshd.pid' || true; }

dockerd_options() { # host
  printf -- "--host unix:///run/docker.sock --data-root /var/lib/docker --exec-root /run/docker"
  printf -- " --insecure-registry ${REGISTRY_ADDR%:*}:%s" "${REGISTRY_PORTS[@]}"
  printf -- " --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent /kp-%s --storage-driver overlay2 --log-level warn" "$1"
}
dockerd_start() {
  local h="$1" d="$S/hosts/$1"
  if is_fresh "$h"; then
    in_host "$h" service docker start >>"$d/log/dockerd.log" 2>&1
  else
    # shellcheck disable=SC2046
    in_host "$h" setsid dockerd --pidfile /run/docker.pid $(dockerd_options "$h") \
      >>"$d/log/dockerd.log" 2>&1 </dev/null &
  fi
  wait_for "dockerd on $h" 60 env DOCKER_HOST="unix://$d/run/docker.sock" docker version
}
dockerd_stop() {
  local h="$1" d="$S/hosts/$1"
  pid_alive "$d/run/docker.pid" || return 0
  local pid; pid="$(cat "$d/run/docker.pid")"
  kill "$pid"
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

net_cut() { ip -n "$(ns_of "$1")" link set eth0 down; }
net_restore() { ip -n "$(ns_of "$1")" link set eth0 up; }
# Traefik's API (published on the host's 127.0.0.1:8080) refuses connections, or answers again.
API_BLOCK=(INPUT -i lo -p tcp --dport 8080 -j REJECT --reject-with tcp-reset)
api_block() { ip netns exec "$(ns_of "$1")" iptables -C "${API_BLOCK[@]}" 2>/dev/null || ip netns exec "$(ns_of "$1")" iptables -I "${API_BLOCK[@]}"; }
api_unblock() { while ip netns exec "$(ns_of "$1")" iptables -C "${API_BLOCK[@]}" 2>/dev/null; do ip netns exec "$(ns_of "$1")" iptables -D "${API_BLOCK[@]}"; done; }

# ---------------------------------------------------------------- images
build_images() {
  local b="$S/build" docker_host="unix://$S/hosts/app1/run/docker.sock"
  local user pass; user="$(cat "$S/registry/username")"; pass="$(cat "$S/registry/password")"
  local traefik; traefik="$(bash "$KP_ROOT/scripts/toolchain/traefik.sh")"
  mkdir -p "$b"
  export DOCKER_HOST="$docker_host" DOCKER_CONFIG="$S/docker-client"
  printf "%s" "$pass" | docker login --username "$user" --password-stdin "$REGISTRY_ADDR" >/dev/null 2>&1

  # Traefik: the static binary alone.
  rm -rf "$b/traefik" && mkdir -p "$b/traefik/tmp" && cp "$traefik" "$b/traefik/traefik"
  push_rootfs "$b/traefik" "$REGISTRY_ADDR/kp/traefik:$KP_TRAEFIK_VERSION" \
    --change 'ENTRYPOINT ["/traefik"]' --change 'EXPOSE 80'
  # The same Traefik as another image (its own ID): changing Traefik's image under load.
  push_rootfs "$b/traefik" "$REGISTRY_ADDR/kp/traefik:$KP_TRAEFIK_VERSION-alt" \
    --change 'ENTRYPOINT ["/traefik"]' --change 'EXPOSE 80 443' --change 'LABEL kp.variant=alt'

  # kamal-proxy as Kamal 2 runs it (its Dockerfile: the binary in /usr/local/bin, user
  # kamal-proxy, ~/.config/kamal-proxy for its state volume), for takeover tests.
  local kproxy; kproxy="$(bash "$KP_ROOT/scripts/toolchain/kamal-proxy.sh")"
  rm -rf "$b/kamal-proxy" && mkdir -p "$b/kamal-proxy/usr/local/bin" "$b/kamal-proxy/etc" "$b/kamal-proxy/tmp" \
    "$b/kamal-proxy/home/kamal-proxy/.config/kamal-proxy"
  cp "$kproxy" "$b/kamal-proxy/usr/local/bin/kamal-proxy"
  echo 'kamal-proxy:x:1000:1000::/home/kamal-proxy:/bin/false' >"$b/kamal-proxy/etc/passwd"
  echo 'kamal-proxy:x:1000:' >"$b/kamal-proxy/etc/group"
  chown -R 1000:1000 "$b/kamal-proxy/home/kamal-proxy"
  push_rootfs "$b/kamal-proxy" "$REGISTRY_ADDR/basecamp/kamal-proxy:$KP_KAMAL_PROXY_VERSION" \
    --change 'CMD ["kamal-proxy", "run"]' --change 'ENV PATH=/usr/local/bin HOME=/home/kamal-proxy' \
    --change 'USER kamal-proxy:kamal-proxy' --change 'EXPOSE 80 443' \
    --change 'LABEL org.opencontainers.image.title=kamal-proxy'

  # The test app: a static binary, and busybox as /bin/sh because Docker runs a
  # --health-cmd through /bin/sh -c (the probe itself is the app's own "probe" command).
  local tag mode
  for spec in v1:healthy v2:healthy broken:unhealthy; do
    tag="${spec%%:*}" mode="${spec#*:}"
    rm -rf "$b/app-$tag" && mkdir -p "$b/app-$tag/bin" "$b/app-$tag/tmp" "$b/app-$tag/data" "$b/app-$tag/public/assets"
    # A fingerprinted asset of this version only, as a Rails app's (asset bridging).
    printf '/* testapp %s */\nbody { --version: "%s"; }\n' "$tag" "$tag" >"$b/app-$tag/public/assets/app-$tag.css"
    (cd "$KP_ROOT/testapp" && CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=$tag -X main.defaultMode=$mode" -o "$b/app-$tag/app" .)
    cp /bin/busybox "$b/app-$tag/bin/busybox"
    for a in sh stat test cat ls sleep; do ln -s busybox "$b/app-$tag/bin/$a"; done
    push_rootfs "$b/app-$tag" "$REGISTRY_ADDR/kp/testapp:$tag" \
      --change 'CMD ["/app"]' --change 'EXPOSE 80' --change 'ENV PATH=/bin'
  done
  docker logout "$REGISTRY_ADDR" >/dev/null
  unset DOCKER_HOST DOCKER_CONFIG
}

push_rootfs() { # dir, image, import options...
  local dir="$1" image="$2"; shift 2
  chmod 1777 "$dir/tmp"
  tar -C "$dir" -c . | docker import "$@" - "$image" >/dev/null
  docker push -q "$image" >/dev/null
  # Hosts must get images from the registry, never from a builder's leftovers.
  docker rmi -f "$image" >/dev/null
  kp_log "pushed $image"
}

# ---------------------------------------------------------------- state
write_state() {
  node - "$S" "$REGISTRY_ADDR" "$KP_TRAEFIK_VERSION" "$KP_KAMAL_PROXY_VERSION" "$DEPLOY_USER" "${HOSTS[@]}" <<'EOF' >"$S/state.json"
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
  [[ "$want" =~ ^[0-9]+$ ]] && [ "$want" -ge 1 ] && [ "$want" -le 40 ] || die "--hosts takes a number of app hosts from 1 to 40"
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
  kp_log "sandbox up in $(( $(date +%s) - t0 ))s: $(printf '%s ' "${HOSTS[@]}")+ registry $REGISTRY_ADDR + ACME CA $ACME_IP"
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
