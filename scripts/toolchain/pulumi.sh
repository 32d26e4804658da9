#!/usr/bin/env bash
# Installs the Pulumi CLI at exactly the version of @pulumi/pulumi in package-lock.json,
# with the Node.js language host and the dynamic-provider launcher, into
# $KP_CACHE/pulumi/<version>/bin. Idempotent: a finished build is reused.
# Prints the bin directory on stdout.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KP_STEP=pulumi

version="v$(kp_pulumi_version)"
bin="$KP_CACHE/pulumi/$version/bin"
mkdir -p "$bin"

# A pulumi of that version already on PATH is used as is.
if [ ! -x "$bin/pulumi" ] && command -v pulumi >/dev/null 2>&1; then
  if [ "$(pulumi version 2>/dev/null)" = "$version" ]; then
    ln -sf "$(command -v pulumi)" "$bin/pulumi"
    kp_log "using $(command -v pulumi) ($version)"
  fi
fi

build_module() { # dir, go.mod body, package, output, ldflags version
  local dir="$1" gomod="$2" pkg="$3" out="$4" ver="$5"
  rm -rf "$dir" && mkdir -p "$dir"
  printf '%s\n' "$gomod" >"$dir/go.mod"
  printf 'package tools\nimport _ "%s"\n' "$pkg" >"$dir/tools.go"
  (cd "$dir" && go mod tidy >/dev/null 2>&1 || true
   cd "$dir" && CGO_ENABLED=0 go build -trimpath \
     -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$ver" \
     -o "$out.tmp" "$pkg" && mv "$out.tmp" "$out")
}

if [ ! -x "$bin/pulumi" ]; then
  kp_log "building the Pulumi CLI $version from Go modules (first time only, ~10-20 min)"
  t0=$(date +%s)
  build_module "$KP_CACHE/pulumi/$version/src-cli" "module kpbuild/pulumi
go 1.26.6
require (
	github.com/pulumi/pulumi/pkg/v3 $version
	github.com/pulumi/pulumi/sdk/v3 $version
)
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$bin/pulumi" "$version"
  kp_log "built pulumi in $(( $(date +%s) - t0 ))s"
fi

if [ ! -x "$bin/pulumi-language-nodejs" ]; then
  kp_log "building the Node.js language host (sdk $KP_LANGHOST_SDK_VERSION)"
  build_module "$KP_CACHE/pulumi/$version/src-langhost" "module kpbuild/langhost
go 1.26.6
require github.com/pulumi/pulumi/sdk/v3 $KP_LANGHOST_SDK_VERSION" \
    github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs "$bin/pulumi-language-nodejs" "$KP_LANGHOST_SDK_VERSION"
fi

# The dynamic-provider launcher is the same tiny script Pulumi ships: it runs the
# provider host of the @pulumi/pulumi that the program itself resolves.
cat >"$bin/pulumi-resource-pulumi-nodejs" <<'SH'
#!/bin/sh
exec node "$(node -p 'require.resolve("@pulumi/pulumi/cmd/dynamic-provider")' 2>/dev/null || echo ./node_modules/@pulumi/pulumi/cmd/dynamic-provider)" "$@"
SH
chmod +x "$bin/pulumi-resource-pulumi-nodejs"

echo "$bin"
