#!/usr/bin/env bash
# Builds a static Traefik ($KP_TRAEFIK_VERSION) from Go modules into
# $KP_CACHE/traefik/<version>/traefik. Idempotent. Prints the binary's path on stdout.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KP_STEP=traefik
out="$KP_CACHE/traefik/$KP_TRAEFIK_VERSION/traefik"
if [ ! -x "$out" ]; then
  kp_log "building Traefik $KP_TRAEFIK_VERSION from Go modules (first time only, ~5-10 min)"
  t0=$(date +%s)
  src="$KP_CACHE/traefik/$KP_TRAEFIK_VERSION/src"
  rm -rf "$src" && mkdir -p "$src"
  gomod="$(cd "$src" && printf 'module kpbuild/traefik\ngo 1.25.0\n' >go.mod &&
    go mod download -json "github.com/traefik/traefik/v3@$KP_TRAEFIK_VERSION" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).GoMod))')"
  # go build refuses to apply a dependency's replace/exclude directives: copy them.
  {
    printf 'module kpbuild/traefik\ngo 1.25.0\nrequire github.com/traefik/traefik/v3 %s\n' "$KP_TRAEFIK_VERSION"
    awk '/^(replace|exclude) \(/{b=1} b{print} b&&/^\)/{b=0;next} !b&&/^(replace|exclude) /{print}' "$gomod"
  } >"$src/go.mod"
  printf 'package tools\nimport _ "github.com/traefik/traefik/v3/cmd/traefik"\n' >"$src/tools.go"
  (cd "$src" && go mod tidy >/dev/null 2>&1 || true
   cd "$src" && CGO_ENABLED=0 go build -trimpath \
     -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${KP_TRAEFIK_VERSION#v}" \
     -o "$out.tmp" github.com/traefik/traefik/v3/cmd/traefik && mv "$out.tmp" "$out")
  kp_log "built traefik in $(( $(date +%s) - t0 ))s"
fi
echo "$out"
