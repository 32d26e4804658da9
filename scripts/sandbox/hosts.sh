# Sourced by scripts/sandbox.sh (its settings and helpers are in scope): each host's files, mount namespace, sshd, dockerd and faults.
# shellcheck shell=bash

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
