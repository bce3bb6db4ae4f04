# shellcheck shell=bash
# Shared helpers for scripts/observability/*.sh (sourced, not executed).
#
#   OBS_CACHE   ${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-~/.cache}/otel-rust-demo}
#   OBS_TOOLS   $OBS_CACHE/tools       built tools, one directory per <tool>-<version>
#   $OBS_CACHE/go/{mod,build}          Go module and build caches of these builds

OBS_CACHE="${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-demo}"
OBS_TOOLS="$OBS_CACHE/tools"

obs_log() { printf '[observability] %s\n' "$*" >&2; }
obs_die() {
  printf '[observability] ERROR: %s\n' "$*" >&2
  exit 1
}

# Go environment for reproducible builds of pinned versions.
obs_go_env() {
  command -v go >/dev/null 2>&1 || obs_die "go is not installed (Go >= 1.25 is needed to build the tools)"
  export GOMODCACHE="$OBS_CACHE/go/mod"
  export GOCACHE="$OBS_CACHE/go/build"
  # Upstream go.mod files may be incomplete for our wrapper modules; let go fix them up.
  case " ${GOFLAGS:-} " in
    *" -mod="*) ;;
    *) export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" ;;
  esac
  # Prometheus ships a go.work file; workspace mode rejects -mod=mod and is never wanted here.
  export GOWORK=off
  # Never download another Go toolchain behind the caller's back; fail with a clear message instead.
  export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
  # The checksum database is often unreachable from sandboxes. The versions are pinned and the
  # module proxy serves immutable content, so fall back to GOSUMDB=off rather than failing.
  if [ -z "${GOSUMDB:-}" ] && [ -z "${GONOSUMDB:-}" ] && [ -z "${GONOSUMCHECK:-}" ]; then
    if ! curl -fsS -m 5 -o /dev/null https://sum.golang.org/latest 2>/dev/null; then
      obs_log "sum.golang.org unreachable: using GOSUMDB=off"
      export GOSUMDB=off
    fi
  fi
}

# obs_go_install_tool NAME VERSION PACKAGE MODULE_VERSION BINARY
# `go install PACKAGE@MODULE_VERSION` into $OBS_TOOLS/NAME-VERSION/bin (cached); prints the path.
obs_go_install_tool() {
  local name="$1" version="$2" pkg="$3" modver="$4" binary="$5"
  local dir="$OBS_TOOLS/$name-$version"
  if [ ! -x "$dir/bin/$binary" ]; then
    obs_log "go install $pkg@$modver"
    mkdir -p "$dir/bin"
    GOBIN="$dir/bin" go install "$pkg@$modver" >&2 || obs_die "go install $pkg@$modver failed"
  fi
  echo "$dir/bin/$binary"
}

# obs_module_source MODULE MODULE_VERSION DEST
# Download MODULE@MODULE_VERSION from the Go module proxy and copy it to DEST (writable), for
# modules whose go.mod carries replace/exclude lines that make `go install` refuse them.
obs_module_source() {
  local module="$1" modver="$2" dest="$3" json moddir
  obs_log "downloading $module@$modver"
  json="$(go mod download -json "$module@$modver")" || obs_die "go mod download $module@$modver failed: $json"
  moddir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$moddir" ] && [ -d "$moddir" ] || obs_die "no module directory in: $json"
  # The module cache is read-only; build in a writable copy so go may complete go.mod/go.sum.
  rm -rf "$dest"
  cp -R "$moddir" "$dest"
  chmod -R u+w "$dest"
}

# obs_go_build SRC_DIR LOG OUT PACKAGE [go build flags...]
# `go build` PACKAGE inside SRC_DIR into OUT; on failure print the log's tail and stop.
obs_go_build() {
  local src="$1" log="$2" out="$3" pkg="$4"
  shift 4
  if ! (cd "$src" && go build -trimpath "$@" -o "$out.tmp" "$pkg") >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    obs_die "building $pkg failed (full log: $log)"
  fi
  mv "$out.tmp" "$out"
}
