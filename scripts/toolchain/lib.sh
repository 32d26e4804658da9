# Shared settings for the toolchain and sandbox scripts. Sourced, never run.
# Everything slow is cached by version outside the repository, under $KP_CACHE.
KP_CACHE="${KP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kamal-pulumi}"
KP_NODE_VERSION="${KP_NODE_VERSION:-24.9.0}"
KP_TRAEFIK_VERSION="${KP_TRAEFIK_VERSION:-v3.6.12}"
# The nodejs language host stopped being part of the sdk/v3 module after v3.68.0 and
# its own module is not served by the module proxy reachable here (see README, Sandbox).
KP_LANGHOST_SDK_VERSION="${KP_LANGHOST_SDK_VERSION:-v3.68.0}"
KP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export GOFLAGS="${GOFLAGS:--mod=mod}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

kp_log() { printf '\033[1m[%s]\033[0m %s\n' "${KP_STEP:-toolchain}" "$*" >&2; }

# The version of @pulumi/pulumi that package-lock.json pins; the CLI must match it.
kp_pulumi_version() {
  node -e 'const l=require(process.argv[1]);const p=l.packages["node_modules/@pulumi/pulumi"];if(!p)process.exit(1);console.log(p.version)' "$KP_ROOT/package-lock.json"
}
