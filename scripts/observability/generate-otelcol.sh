#!/usr/bin/env bash
# Regenerate tools/otelcol/, the Go module of the native collector, from
# observability/otelcol-builder.yaml with the OpenTelemetry Collector Builder (ocb, built from the
# wrapper module tools/ocb) and `--skip-compilation`. Run it after editing the manifest and commit
# the result: module resolution (ocb's `go mod tidy`, checksum-verified) happens here, once, and
# build-otelcol.sh builds the committed module with -mod=readonly.
#
#   scripts/observability/generate-otelcol.sh        rewrite tools/otelcol/
#   scripts/observability/generate-otelcol.sh DIR    write the module into DIR instead
#                                                    (check-configs.sh diffs it with tools/otelcol/)
#
# Prints the output directory on stdout, progress on stderr. Environment: OTEL_DEMO_CACHE (see
# lib.sh). Warm: about 2 s (ocb's `go mod tidy` on cached modules); cold: building ocb adds about
# a minute, and the collector's modules are downloaded if build-otelcol.sh has not done so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/observability/lib.sh
. "$ROOT/scripts/observability/lib.sh"

MANIFEST="$ROOT/observability/otelcol-builder.yaml"
OUT="${1:-$ROOT/tools/otelcol}"
OCB_SRC="$ROOT/tools/ocb"

obs_go_env
OCB="$OBS_TOOLS/ocb-$(obs_files_key "$OCB_SRC/go.mod" "$OCB_SRC/go.sum")/ocb"
if [ ! -x "$OCB" ]; then
  obs_log "building ocb from tools/ocb (log: $(dirname "$OCB")/build.log)"
  obs_go_build "$OCB_SRC" "$(dirname "$OCB")/build.log" "$OCB" go.opentelemetry.io/collector/cmd/builder
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# output_path is ./tools/otelcol; ocb creates only its last element.
mkdir -p "$work/tools"
obs_log "running ocb --skip-compilation on observability/otelcol-builder.yaml"
if ! (cd "$work" && "$OCB" --skip-compilation --config="$MANIFEST") >"$work/ocb.log" 2>&1; then
  grep -v '^go: downloading' "$work/ocb.log" | tail -n 30 >&2
  obs_die "ocb failed on $MANIFEST"
fi
gen="$work/tools/otelcol"
for f in go.sum components.go; do
  [ -s "$gen/$f" ] || obs_die "ocb wrote no ./tools/otelcol/$f from $MANIFEST (output_path changed?)"
done
mkdir -p "$OUT"
# Only ocb's files: a removed component must not leave a stale file behind.
rm -f "$OUT"/go.mod "$OUT"/go.sum "$OUT"/*.go
cp "$gen"/go.mod "$gen"/go.sum "$gen"/*.go "$OUT"/
obs_log "wrote $OUT"
echo "$OUT"
