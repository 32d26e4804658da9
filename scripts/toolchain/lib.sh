# Shared settings for the toolchain and sandbox scripts. Sourced, never run.
# Everything slow is cached by version outside the repository, under $KP_CACHE.
KP_CACHE="${KP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kamal-pulumi}"
KP_NODE_VERSION="${KP_NODE_VERSION:-24.9.0}"
KP_TRAEFIK_VERSION="${KP_TRAEFIK_VERSION:-v3.6.12}"
# Kamal 2.11+ boots this kamal-proxy (MINIMUM_VERSION); the sandbox builds it for takeover tests.
KP_KAMAL_PROXY_VERSION="${KP_KAMAL_PROXY_VERSION:-v0.9.2}"
# Let's Encrypt's ACME test server, for the HTTPS tests (see ../shared/TESTBED.md).
KP_PEBBLE_VERSION="${KP_PEBBLE_VERSION:-v2.10.1}"
# Docker buildx (image builds, as Kamal 2 runs them), built from Go modules.
KP_BUILDX_VERSION="${KP_BUILDX_VERSION:-v0.38.2}"
# The AWS CLI and moto (an AWS Secrets Manager API server), from PyPI: the vault tests.
KP_AWSCLI_VERSION="${KP_AWSCLI_VERSION:-1.46.3}"
KP_MOTO_VERSION="${KP_MOTO_VERSION:-5.2.6}"
# SeaweedFS (an S3-compatible object store): shared Pulumi state as teams keep it.
# The module proxy serves one pseudo-version of it (see ../shared/TESTBED.md).
KP_SEAWEEDFS_VERSION="${KP_SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"
# The nodejs language host stopped being part of the sdk/v3 module after v3.68.0 and
# its own module is not served by the module proxy reachable here (see docs/testing.md).
KP_LANGHOST_SDK_VERSION="${KP_LANGHOST_SDK_VERSION:-v3.68.0}"
KP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export GOFLAGS="${GOFLAGS:--mod=mod}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

kp_log() { printf '\033[1m[%s]\033[0m %s\n' "${KP_STEP:-toolchain}" "$*" >&2; }

# The version of @pulumi/pulumi that package-lock.json pins; the CLI must match it.
kp_pulumi_version() {
  node -e 'const l=require(process.argv[1]);const p=l.packages["node_modules/@pulumi/pulumi"];if(!p)process.exit(1);console.log(p.version)' "$KP_ROOT/package-lock.json"
}

# Builds a Go command from the module proxy in a throwaway module under $dir.
# `go install mod@version` refuses modules whose go.mod has replace directives, and a
# dependency's replace/exclude directives do not apply to the main module: copy them in
# (except relative-path replaces, which point into the dependency's own repository).
#   kp_go_build DIR MODULE VERSION PACKAGE OUT LDFLAGS [EXTRA_REQUIRE...]
kp_go_build() {
  local dir="$1" module="$2" version="$3" pkg="$4" out="$5" ldflags="$6"; shift 6
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'module kpbuild/tool\ngo 1.25.0\n' >"$dir/go.mod"
  local gomod
  gomod="$(cd "$dir" && go mod download -json "$module@$version" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);if(j.Error){console.error(j.Error);process.exit(1)}console.log(j.GoMod)})')"
  {
    printf 'module kpbuild/tool\n%s\nrequire %s %s\n' "$(grep -m1 '^go ' "$gomod")" "$module" "$version"
    for r in "$@"; do printf 'require %s\n' "$r"; done
    awk '/^(replace|exclude) \(/{b=1} b{print} b&&/^\)/{b=0;next} !b&&/^(replace|exclude) /{print}' "$gomod" |
      { grep -vE '=>[[:space:]]*\.\.?/' || true; }
  } >"$dir/go.mod"
  printf 'package tools\nimport _ "%s"\n' "$pkg" >"$dir/tools.go"
  (cd "$dir" && go mod tidy >/dev/null 2>&1 || true
   cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg" &&
   mv "$out.tmp" "$out")
}
