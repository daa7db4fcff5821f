#!/usr/bin/env bash
# Builds the `otelcol-aitrack` collector binary into collector/_build/ from collector/builder-config.yaml.
# Run by developers and CI before the stack tests (tests/stack/); takes minutes on 2 cores the first time.
# Overrides (environment):
#   AITRACK_CACHE   one directory for the builder binary and, when set, Go's module and build caches
#                   (default: ~/.cache/otel-aitrack for the builder; Go's own GOCACHE/GOMODCACHE otherwise)
#   GOCACHE, GOMODCACHE   respected when set
#   AITRACK_FORCE_BUILD=1 rebuilds even when the binary matches the manifest
# The builder version is read from the manifest, so the version lives in one place.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/builder-config.yaml"
out_dir="$here/_build"
binary="$out_dir/otelcol-aitrack"
stamp="$out_dir/.manifest.sha256"

# Every core v0 module in the manifest carries the same version; the builder must match it.
versions="$(grep -oE 'go\.opentelemetry\.io/collector/[a-z/]+ v0\.[0-9]+\.[0-9]+' "$manifest" | awk '{print $2}' | sort -u)"
if [ "$(printf '%s\n' "$versions" | wc -l)" -ne 1 ]; then
  echo "build.sh: the manifest mixes collector versions: $versions" >&2
  exit 1
fi
version="$versions"

# A machine keeps the Go it has: never let a go.mod line fetch another toolchain behind our back.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
cache="${AITRACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-aitrack}"
if [ -n "${AITRACK_CACHE:-}" ]; then
  export GOCACHE="${GOCACHE:-$AITRACK_CACHE/go-build}"
  export GOMODCACHE="${GOMODCACHE:-$AITRACK_CACHE/go-mod}"
fi

# The stamp covers what decides the binary: the manifest and the Go that compiles it.
wanted="$( (cat "$manifest"; go version) | sha256sum | cut -d' ' -f1)"
if [ -x "$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ] && [ "${AITRACK_FORCE_BUILD:-0}" != 1 ]; then
  echo "build.sh: $binary is up to date with the manifest ($version); nothing to do"
  exit 0
fi

builder_bin="$cache/ocb/$version"
builder="$builder_bin/builder"
if [ ! -x "$builder" ]; then
  echo "build.sh: installing the collector builder $version into $builder_bin"
  GOBIN="$builder_bin" go install "go.opentelemetry.io/collector/cmd/builder@$version"
fi

echo "build.sh: building otelcol-aitrack $version into $out_dir (minutes on a cold cache)"
rm -f "$stamp"
start=$SECONDS
(cd "$here" && "$builder" --config="$manifest")
echo "$wanted" >"$stamp"
echo "build.sh: built $binary in $((SECONDS - start))s"
"$binary" --version
