#!/usr/bin/env bash
# Builds the image every compiled task runs, from the project's Dockerfile (`make image`),
# and prints its size and the build's time.
#
#   scripts/build_image.sh [IMAGE]          (default movielens-tfx:latest)
#   BASE=stand-in scripts/build_image.sh    where the Dockerfile's base cannot be pulled
#
# BASE=pull (the default) is a normal machine's build: docker pulls the Dockerfile's FROM
# image (tensorflow/tfx:1.16.0) when it is not there. BASE=stand-in first builds a local
# stand-in with the base's name (scripts/stand_in_base.sh) unless one is already tagged, so
# that nothing is pulled; the Dockerfile is the same either way. The build uses the host's
# network (--network=host: pip reaches the package index the way the host does; no
# container bridge) and the legacy builder, whose layer cache in the daemon's data root
# makes a rebuild with an unchanged requirements.lock take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:-${IMAGE:-movielens-tfx:latest}}
base_mode=${BASE:-pull}
base=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' Dockerfile | head -1)

docker version >/dev/null 2>&1 || {
  echo "error: no Docker daemon answers (DOCKER_HOST=${DOCKER_HOST:-unset}); on a machine" \
    "without one: eval \"\$(sudo scripts/dockerd.sh start)\"" >&2; exit 1; }
case "$base_mode" in
  pull) ;;
  stand-in)
    if docker image inspect "$base" >/dev/null 2>&1; then
      echo "Base $base: the local image ($(docker image inspect --format \
        '{{if index .Config.Labels "movielens-tfx.stand-in"}}stand-in{{else}}pulled{{end}}' "$base"))"
    else
      scripts/stand_in_base.sh "$base"
    fi ;;
  *) echo "error: BASE must be pull or stand-in, not '$base_mode'" >&2; exit 2 ;;
esac

start=$(date +%s)
# The legacy builder (Debian's docker.io has no buildx); its deprecation notice is noise.
set +e
DOCKER_BUILDKIT=0 docker build --network=host --tag "$image" . 2>&1 \
  | grep --line-buffered -v -E '^(DEPRECATED: The legacy builder|            |Install the buildx)'
status=${PIPESTATUS[0]}
set -e
[ "$status" = 0 ] || { echo "error: the build of $image failed (above)" >&2; exit 1; }
seconds=$(( $(date +%s) - start ))
created=$(docker image inspect --format '{{.Created}}' "$image")
size=$(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.2f GB", $1/1e9}')
echo "Built $image from $base in ${seconds}s: $size (created $created)"
