#!/usr/bin/env bash
# Builds a local stand-in for the Dockerfile's base image, tensorflow/tfx:1.16.0, and tags it
# with that name, for machines that cannot pull from Docker Hub (these development machines,
# their CI). The project's Dockerfile then builds unchanged: `FROM tensorflow/tfx:1.16.0`
# finds the local tag and never contacts a registry.
#
#   scripts/stand_in_base.sh [TAG]        (default tensorflow/tfx:1.16.0; DOCKER_HOST as usual)
#
# What it is: Debian bookworm (minbase, from this machine's own apt sources, by mmdebstrap)
# with a Python 3.10 copied from this machine's pyenv build (Debian ships only 3.11; TFX 1.16
# supports up to 3.10) as `python` (the scripts pip installs on PATH), with its pip, and
# this machine's CA bundle, so that pip inside the build trusts what pip here trusts.
# Unlike the real base it holds no TFX: the Dockerfile's `pip install --requirement
# requirements.lock` installs all of the lock (the real base already holds most of it), so
# a cold build takes longer, and what the image then holds is exactly the lock. The tag
# carries the label movielens-tfx.stand-in=1.
#
# Settings: PYTHON310 (default /root/.pyenv/versions/3.10.13, or `pyenv prefix 3.10`),
# APT_SOURCES (default /etc/apt/sources.list.d/debian.sources, else /etc/apt/sources.list),
# CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt).
set -euo pipefail
tag=${1:-tensorflow/tfx:1.16.0}
python_dir=${PYTHON310:-$(pyenv prefix 3.10 2>/dev/null || echo /root/.pyenv/versions/3.10.13)}
sources=${APT_SOURCES:-}
if [ -z "$sources" ]; then
  for candidate in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -s "$candidate" ] && { sources=$candidate; break; }
  done
fi
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

fail() { echo "error: $*" >&2; exit 1; }
[ -x "$python_dir/bin/python3.10" ] || fail "no Python 3.10 at $python_dir (set PYTHON310 to" \
  "a CPython 3.10 installation directory, e.g. \`pyenv install 3.10\`)"
[ -s "$ca_bundle" ] || fail "no CA bundle at $ca_bundle (set CA_BUNDLE)"
[ -n "$sources" ] || fail "no apt sources found (set APT_SOURCES to a sources.list file)"
command -v mmdebstrap >/dev/null 2>&1 || fail "no mmdebstrap: apt-get install mmdebstrap"
docker version >/dev/null 2>&1 || fail "no Docker daemon answers (DOCKER_HOST=${DOCKER_HOST:-}):" \
  "eval \"\$(scripts/dockerd.sh start)\""

# pip's settings inside the image: the CA bundle, and the host's index when it has one that
# a container can reach (an http(s) URL: file:// indexes and find-links are this machine's
# disk, not the container's). Taken from pip's own view of its config and environment.
host_pip() { "$python_dir/bin/python3.10" -m pip config list 2>/dev/null || true; }
pip_value() { host_pip | sed -n "s/^[a-z:]*\.$1='\(.*\)'$/\1/p" | tail -1; }
index_url=${PIP_INDEX_URL:-$(pip_value index-url)}
extra_index=$(pip_value extra-index-url | tr ' ' '\n' | grep -E '^https?://' | tr '\n' ' ' || true)
trusted=$(pip_value trusted-host)
timeout=$(pip_value default-timeout)
pip_conf=$(mktemp)
trap 'rm -f "$pip_conf"' EXIT
{
  echo '[global]'
  echo 'cert = /etc/ssl/certs/ca-certificates.crt'
  echo 'disable-pip-version-check = 1'
  case "$index_url" in http://*|https://*) echo "index-url = $index_url" ;; esac
  [ -n "${extra_index// }" ] && echo "extra-index-url = $extra_index"
  [ -n "$trusted" ] && echo "trusted-host = $trusted"
  [ -n "$timeout" ] && echo "timeout = $timeout"
} > "$pip_conf"

# The shared libraries the Python build's own extension modules link (ssl, ctypes, sqlite3,
# lzma, bz2, readline, uuid, ...) and libgomp, which some wheels expect of a manylinux host.
packages=libssl3,libffi8,zlib1g,libbz2-1.0,liblzma5,libsqlite3-0,libreadline8,libncursesw6
packages=$packages,libuuid1,libexpat1,libcrypt1,libnsl2,libtirpc3,libgssapi-krb5-2,libgomp1
packages=$packages,libstdc++6
# A C++ compiler: the lock's pyfarmhash comes only as source (the real base holds it built).
packages=$packages,g++,libc6-dev

start=$(date +%s)
echo "Building the stand-in base $tag: Debian bookworm from $sources, Python from $python_dir"
# The Python build goes to /opt/python3.10 (not its pyenv path under /root, which a task
# running as another user could not enter); its libpython is found through ld.so.conf,
# since its RUNPATH names the pyenv directory. Left out: its test suite, static library,
# Tk and IDLE, and whatever this machine added to its site-packages (only pip and
# setuptools are kept). Its pyenv path stays as a link: sysconfig names it for the headers
# when pip compiles a source package.
mmdebstrap --quiet --variant=minbase --include="$packages" \
  --customize-hook="mkdir -p \"\$1/opt/python3.10\" && tar -C '$python_dir' -c \
      --exclude=./lib/python3.10/test --exclude='./lib/python3.10/*/test' \
      --exclude=./lib/python3.10/tkinter --exclude=./lib/python3.10/idlelib \
      --exclude=./lib/python3.10/turtledemo --exclude='./lib/python3.10/config-3.10-*/*.a' \
      ./bin ./include ./lib ./share | tar -C \"\$1/opt/python3.10\" -x" \
  --customize-hook="cd \"\$1/opt/python3.10/lib/python3.10/site-packages\" && \
      find . -mindepth 1 -maxdepth 1 ! -name 'pip' ! -name 'pip-*' ! -name 'setuptools' \
        ! -name 'setuptools-*' ! -name '_distutils_hack' ! -name 'pkg_resources' \
        ! -name 'distutils-precedence.pth' -exec rm -rf {} +" \
  --customize-hook="mkdir -p \"\$1$(dirname "$python_dir")\" && \
      ln -s /opt/python3.10 \"\$1$python_dir\"" \
  --customize-hook="echo /opt/python3.10/lib > \"\$1/etc/ld.so.conf.d/python3.10.conf\" && \
      chroot \"\$1\" ldconfig" \
  --customize-hook="for name in python python3 python3.10; do \
      ln -sf /opt/python3.10/bin/python3.10 \"\$1/usr/local/bin/\$name\"; done; \
      printf '#!/bin/sh\nexec /opt/python3.10/bin/python3.10 -m pip \"\$@\"\n' \
        > \"\$1/usr/local/bin/pip\" && chmod 755 \"\$1/usr/local/bin/pip\"" \
  --customize-hook="mkdir -p \"\$1/etc/ssl/certs\" && cp '$ca_bundle' \"\$1/etc/ssl/certs/ca-certificates.crt\" \
      && cp '$pip_conf' \"\$1/etc/pip.conf\" && chmod 644 \"\$1/etc/pip.conf\"" \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
  bookworm - "$sources" \
  | docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/opt/python3.10/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'LABEL movielens-tfx.stand-in=1' \
      --change 'CMD ["python"]' \
      --message "stand-in for $tag: Debian bookworm minbase, Python 3.10 from $python_dir" \
      - "$tag" >/dev/null
docker run --rm --network=none "$tag" python -c \
  'import ssl, sqlite3, ctypes, lzma, bz2, sys; assert sys.version_info[:2] == (3, 10), sys.version' \
  || fail "the stand-in's Python does not start or lacks a module: see above"
echo "Stand-in base $tag: $(docker run --rm --network=none "$tag" python --version)," \
  "$(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'), $(( $(date +%s) - start )) s"
