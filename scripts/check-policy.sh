#!/usr/bin/env bash
# The project's supply-chain rules, checked on every run instead of hoped for:
#   1. no script, tool module, CI file or Dockerfile fetches or builds an AGPL tool (k6, Loki,
#      Tempo, Grafana): compose pulls their images for users, nothing here builds them;
#   2. nothing switches off Go's checksum verification (each Go tool is a wrapper module with a
#      committed go.sum, built with -mod=readonly);
#   3. the services' image ships no busybox (the static `healthcheck` probe answers instead);
#   4. every URL names a loopback address, a compose service, a test placeholder or a site on
#      the short list below: no package registry's host, so builds use whatever registry or
#      mirror the machine is configured with;
#   5. deny.toml allows one version of every OpenTelemetry crate in Cargo.lock (two versions
#      in one binary mean two globals and silently broken propagation).
# A self-test feeds each rule a violation and requires it to fail.
#
#   scripts/check-policy.sh        exit 0 = all rules hold, 1 = a rule is broken
set -euo pipefail
cd "$(dirname "$0")/.."

# Written as regular expressions, so this file does not itself name what it forbids.
AGPL_MODULES='go\.k6\.io/k6|github\.com/grafana/(loki|tempo|grafana)\b'
CHECKSUMS_OFF='GOSUMDB=[o]ff|GONOSUM(DB|CHECK)=|GOFLAGS=[^ ]*-mod=[m]od|-mod=[m]od|GOINSECURE='
# Hosts a URL may name besides loopback and the compose services.
URL_HOSTS='example\.com|h|user|rustup\.rs|go\.dev|github\.com|maven\.apache\.org'

failures=0
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }
pass() { printf 'ok    %s\n' "$*"; }

# Each rule reads the files named on stdin (one per line) and prints its violations.
agpl_builds() { xargs -r grep -nHE "$AGPL_MODULES" -- || true; }
checksums_off() { xargs -r grep -nHE "$CHECKSUMS_OFF" -- | grep -vE '^[^:]+:[0-9]+:[[:space:]]*#' || true; }
busybox_in_image() { xargs -r grep -nHi 'busybox' -- || true; }
foreign_urls() {
  local services
  services=$(sed -n 's/^  \([a-z0-9-]*\):$/\1/p' docker-compose.yml | paste -sd'|')
  xargs -r grep -noHE 'https?://[A-Za-z0-9.-]+' -- |
    grep -vE "://(127\.0\.0\.1|localhost|$services|$URL_HOSTS)$" || true
}
otel_crates_unguarded() { # LOCKFILE DENY_TOML
  local name
  for name in $(sed -n 's/^name = "\(\(tracing-\)\{0,1\}opentelemetry[a-z_-]*\)"$/\1/p' "$1" | sort -u); do
    grep -qE "name = \"$name\", deny-multiple-versions = true" "$2" || echo "$name"
  done
}

# What each rule reads.
existing() { while read -r f; do [ -f "$f" ] && echo "$f"; done; }
build_files() { git ls-files -- scripts tools .ci .github Dockerfile ':!scripts/check-policy.sh' | grep -vE '\.(md|json)$' | existing; }
# Not the generated collector module (tools/otelcol: ocb's output, checked against the manifest).
text_files() { git ls-files | grep -vE '^(Cargo\.lock|tools/otelcol/.*|.*\.(png|svg))$' | existing; }

rule() {
  local what="$1" found="$2"
  if [ -n "$found" ]; then fail "$what"; printf '%s\n' "$found" | sed 's/^/      /'; else pass "$what"; fi
}
rule "no AGPL tool fetched or built (k6, Loki, Tempo, Grafana)" "$(build_files | agpl_builds)"
rule "Go checksum verification stays on" "$(build_files | checksums_off)"
rule "no busybox in the services' image" "$(echo Dockerfile | busybox_in_image)"
rule "URLs name no package registry (only loopback, compose services, listed sites)" "$(text_files | foreign_urls)"
rule "deny.toml: one version of each OpenTelemetry crate" "$(otel_crates_unguarded Cargo.lock deny.toml)"

# Self-test: every rule must catch a planted violation.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'go install %s/%s@v2.2.0\n' "go.k6.io" "k6" >"$tmp/build.sh"
printf 'export GOSUMDB=%s\n' "off" >"$tmp/sumdb.sh"
printf 'COPY --from=%s /bin/busybox /bin/\n' "busybox:1" >"$tmp/Dockerfile"
printf 'curl -fsSL https://%s/simple/\n' "packages.example.org" >"$tmp/fetch.sh"
printf 'name = "%s"\n' "opentelemetry-zipkin" >"$tmp/Cargo.lock"
selftest() {
  local what="$1" found="$2"
  if [ -n "$found" ]; then pass "self-test: $what is caught"; else fail "self-test: $what was NOT caught"; fi
}
selftest "an AGPL module in a build script" "$(echo "$tmp/build.sh" | agpl_builds)"
selftest "GOSUMDB switched off" "$(echo "$tmp/sumdb.sh" | checksums_off)"
selftest "busybox copied into an image" "$(echo "$tmp/Dockerfile" | busybox_in_image)"
selftest "a URL naming an unlisted host" "$(echo "$tmp/fetch.sh" | foreign_urls)"
selftest "an OpenTelemetry crate deny.toml does not guard" "$(otel_crates_unguarded "$tmp/Cargo.lock" deny.toml)"

if [ "$failures" -gt 0 ]; then
  printf '\ncheck-policy: %d rule(s) broken\n' "$failures"
  exit 1
fi
printf '\ncheck-policy: all rules hold\n'
