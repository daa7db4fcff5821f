#!/usr/bin/env bash
# Builds Prometheus and promtool 3.x from source, through the Go module proxy, for the stack tests
# (tests/stack/, tests/cli/test_failures_stack.py): the same release docker-compose.yml ships, so every
# query, rule and rule test is verified on the Prometheus users run. Linux distributions package 2.x.
# Run by developers and CI (.ci/run) before `pytest -m stack`; minutes on 2 cores the first time, then
# nothing (the binaries are kept). The tests find the binaries in the cache directory below
# (tests/stack/stack_support.py); PROMETHEUS_BIN / PROMTOOL_BIN point them at others.
# The version lives in one place: docker-compose.yml's prom/prometheus:v3.MINOR.PATCH image, whose
# module is github.com/prometheus/prometheus v0.3MINOR.PATCH (minor on two digits).
# Overrides (environment):
#   AITRACK_CACHE   one directory for the binaries and, when set, Go's module and build caches
#                   (default: ~/.cache/otel-aitrack for the binaries; Go's own GOCACHE/GOMODCACHE otherwise)
#   GOCACHE, GOMODCACHE   respected when set
#   AITRACK_FORCE_BUILD=1 rebuilds even when both binaries are there
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
compose="$here/../docker-compose.yml"

tag="$(grep -oE 'image: prom/prometheus:v3\.[0-9]+\.[0-9]+' "$compose" | sed 's/.*:v//' | sort -u)"
if [ "$(printf '%s\n' "$tag" | grep -c .)" -ne 1 ]; then
  echo "build-prometheus.sh: expected one prom/prometheus:v3.x.y image in docker-compose.yml, got: $tag" >&2
  exit 1
fi
IFS=. read -r _ minor patch <<<"$tag"
module_version="$(printf 'v0.3%02d.%d' "$minor" "$patch")"

# A machine keeps the Go it has: never let a go.mod line fetch another toolchain behind our back.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
cache="${AITRACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-aitrack}"
if [ -n "${AITRACK_CACHE:-}" ]; then
  export GOCACHE="${GOCACHE:-$AITRACK_CACHE/go-build}"
  export GOMODCACHE="${GOMODCACHE:-$AITRACK_CACHE/go-mod}"
fi
out="$cache/prometheus/$module_version"

if [ -x "$out/prometheus" ] && [ -x "$out/promtool" ] && [ "${AITRACK_FORCE_BUILD:-0}" != 1 ]; then
  echo "build-prometheus.sh: Prometheus $tag ($module_version) is in $out; nothing to do"
  exit 0
fi

echo "build-prometheus.sh: building Prometheus $tag ($module_version) into $out (minutes on a cold cache)"
start=$SECONDS
# remove_all_sd leaves out the service-discovery plugins (cloud SDKs): the build then fits these
# machines' memory, and static_configs, all the stack uses, still work. The -X flag gives
# `prometheus --version` its version, as the release build does.
ldflags="-X github.com/prometheus/common/version.Version=$tag"
for command in prometheus promtool; do
  GOBIN="$out" go install -tags remove_all_sd -ldflags "$ldflags" \
    "github.com/prometheus/prometheus/cmd/$command@$module_version"
done
echo "build-prometheus.sh: built $out/{prometheus,promtool} in $((SECONDS - start))s"
"$out/prometheus" --version | head -1
