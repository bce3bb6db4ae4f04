# shellcheck shell=bash
# Shared helpers for scripts/observability/*.sh (sourced, not executed).
#
#   OBS_CACHE   ${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-~/.cache}/otel-rust-demo}
#   OBS_TOOLS   $OBS_CACHE/tools       built tools, one directory per <tool>-<version>-<key>
#   $OBS_CACHE/go/{mod,build}          Go module and build caches of these builds
#
# Every Go tool is built from a wrapper module of ours under tools/ whose go.mod and go.sum are
# committed, with -mod=readonly: nothing is resolved anew at build time, and the go command
# verifies every downloaded module against go.sum and the checksum database it is configured with.

OBS_CACHE="${OTEL_DEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-rust-demo}"
OBS_TOOLS="$OBS_CACHE/tools"

obs_log() { printf '[observability] %s\n' "$*" >&2; }
obs_die() {
  printf '[observability] ERROR: %s\n' "$*" >&2
  exit 1
}

# Go environment of the tool builds. GOPROXY/GOSUMDB stay as the machine sets them.
obs_go_env() {
  command -v go >/dev/null 2>&1 || obs_die "go is not installed (Go >= 1.26 is needed to build the tools)"
  # Under the cache root rather than ~/go, so the whole toolchain cache is one deletable directory.
  export GOMODCACHE="$OBS_CACHE/go/mod"
  export GOCACHE="$OBS_CACHE/go/build"
  # A go.work above a wrapper module would change what it resolves; each module stands alone.
  export GOWORK=off
  # Never download another Go toolchain behind the caller's back; fail with a clear message instead.
  export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
  # Static binaries, as upstream's release builds (and ocb) make them; no C compiler needed.
  export CGO_ENABLED=0
}

# Build tags of every tool. remove_all_sd leaves out Prometheus' service-discovery plugins
# (Kubernetes, the cloud providers, ...; file and HTTP stay), which the prometheus receiver and
# the Prometheus server both import: the demo's configs scrape static targets only, and without
# those SDKs a cold build takes about half the time. A config that names another discovery
# mechanism fails validation here (a false alarm, never a false pass) although the images have it.
OBS_GO_TAGS="remove_all_sd"

# obs_files_key FILE...: short hash of the files' contents and the build tags, for cache
# directory names, so that editing a wrapper module's go.mod/go.sum (or generated sources) or
# the tags rebuilds the tool.
obs_files_key() { { cat "$@"; echo "$OBS_GO_TAGS"; } | sha256sum | cut -c1-16; }

# obs_go_build MODULE_DIR LOG OUT PACKAGE [go build flags...]
# `go build -mod=readonly` PACKAGE inside MODULE_DIR into OUT; on failure print the log's tail
# and stop. -mod=readonly on the command line overrides any -mod in GOFLAGS.
obs_go_build() {
  local src="$1" log="$2" out="$3" pkg="$4"
  shift 4
  mkdir -p "$(dirname "$out")"
  if ! (cd "$src" && go build -mod=readonly -trimpath -tags "$OBS_GO_TAGS" "$@" -o "$out.tmp" "$pkg") >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    obs_die "building $pkg in $src failed (full log: $log)"
  fi
  mv "$out.tmp" "$out"
}
