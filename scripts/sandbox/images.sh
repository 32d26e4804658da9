# Sourced by scripts/sandbox.sh (its settings and helpers are in scope): the images the registry serves.
# shellcheck shell=bash

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
