#!/usr/bin/env bash
# Everything the demo and the tests stand on, installed by the project itself and
# idempotent (quick when warm): Debian packages (Ruby renders deploy.yml's ERB as Kamal does), Node >= 22, npm dependencies, the Pulumi
# CLI + language host, Traefik, the sandbox, and the compiled provider.
# Prints the path of an env file to `source` (PATH and Pulumi settings).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain/lib.sh
KP_STEP=setup
[ "$(id -u)" = 0 ] || { kp_log "error: run as root (the sandbox creates network namespaces)"; exit 1; }

need=()
for pair in dockerd:docker.io docker-registry:docker-registry sshd:openssh-server htpasswd:apache2-utils \
            iptables:iptables ip:iproute2 curl:curl git:git ruby:ruby strace:strace; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  kp_log "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v go >/dev/null || { kp_log "error: Go is required to build the Pulumi CLI and Traefik"; exit 1; }

export PATH="$(bash scripts/toolchain/node.sh):$PATH"
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  kp_log "installing npm dependencies (npm ci)"
  # The registry reachable here lacks some of rollup's optional platform packages (404),
  # so the lockfile cannot list them and `npm ci` refuses it; `npm install` honours the
  # lockfile's versions and skips what it cannot fetch.
  npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
    { kp_log "npm ci refused the lockfile (optional packages missing from this registry): npm install";
      npm install --no-audit --no-fund --loglevel=error >/dev/null; }
fi
# Programs and the provider find this package by name, as a user's project does (the
# provider text in the state names no path): the repository's own node_modules links it.
ln -sfn .. node_modules/pulumi-kamal
# And its command, as `npx pulumi-kamal` finds it in such a project.
mkdir -p node_modules/.bin && ln -sfn ../../dist/cli/main.js node_modules/.bin/pulumi-kamal
env_file="$(bash scripts/toolchain/install.sh)"
source "$env_file"
# A new shell finds the same tools (the demo's closing hints, `pulumi preview` at the root):
# commands in /usr/local/bin that take this toolchain's settings, then run the real thing.
# One that is not ours is left alone.
link_command() {
  local name="$1" target="$2" wrapper="/usr/local/bin/$1"
  [ -e "$wrapper" ] && ! grep -q "kamal-pulumi toolchain" "$wrapper" 2>/dev/null && return 0
  printf '#!/usr/bin/env bash\n# kamal-pulumi toolchain (written by %s/scripts/setup.sh)\nsource %q\nexec %s "$@"\n' \
    "$PWD" "$env_file" "$target" >"$wrapper.tmp" && chmod +x "$wrapper.tmp" && mv -f "$wrapper.tmp" "$wrapper"
}
if [ -w /usr/local/bin ]; then
  link_command pulumi "$(printf %q "$(command -v pulumi)")"
  # The project's own pulumi-kamal (node_modules/.bin, as npx finds it), else this checkout's.
  link_command pulumi-kamal "node \"\$(d=\$PWD; while [ \"\$d\" != / ] && [ ! -e \"\$d/node_modules/.bin/pulumi-kamal\" ]; do d=\$(dirname \"\$d\"); done; [ -e \"\$d/node_modules/.bin/pulumi-kamal\" ] && readlink -f \"\$d/node_modules/.bin/pulumi-kamal\" || echo $(printf %q "$PWD/dist/cli/main.js"))\""
fi
# KP_SANDBOX_HOSTS: the number of app hosts (npm test runs the fault scenarios on app3 and
# app4 beside the rest); unset, whatever is up.
bash scripts/sandbox.sh up ${KP_SANDBOX_HOSTS:+--hosts "$KP_SANDBOX_HOSTS"} >&2
kp_log "compiling the provider (dist/)"
npm run --silent build >&2
echo "$env_file"
