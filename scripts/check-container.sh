#!/usr/bin/env bash
# The container path, proven without a Docker engine (none runs on these machines). It reads
# the Dockerfile itself (scripts/dockerfile.py), so it cannot drift from it:
#   1. compose.yaml is valid against the Compose specification's JSON schema (check-jsonschema,
#      from PyPI, with its vendored copy of the schema: no download). That every BASALT__*
#      variable it sets is a setting Basalt knows is a Rust test (tests/api/container.rs).
#   2. The build stage, replayed: exactly the files its COPY lines send (a clean checkout's,
#      less .dockerignore) are laid out in a directory standing for its WORKDIR, and its RUN
#      lines run there in order, with `cargo build` turned into `cargo check`: once as the
#      image builds (every domain), once with the README's subset (--build-arg FEATURES=...).
#      A manifest error or a file the build needs but does not get fails here in seconds.
#   3. The runtime stage, for real: a Debian root filesystem made by debootstrap
#      --variant=minbase (the suite of the image's FROM), the stage's RUN lines run in it
#      through chroot, its COPY lines done; then `basalt serve` runs in it as the image's USER
#      with only the image's ENV (a production profile) against this machine's PostgreSQL. It
#      must refuse the development JWT secret, then with a secret pass the image's HEALTHCHECK
#      command, answer /health/ready, log JSON lines and stop cleanly on SIGTERM. `ldd`
#      inside the root must find every shared library.
# The release binary of step 3 is built by the build stage's own cargo command (as the
# Dockerfile writes it), run in this checkout with the shared $CARGO_TARGET_DIR (.ci/run:
# /var/tmp/basalt-target), which is also where the replayed build stage's target/ points, and
# with incremental compilation: a warm run recompiles only what changed in Basalt (measured
# here: 10 s after changing one message in src/config.rs, against 7 minutes for a plain
# rebuild of the crate under load), never a dependency. The trade-off: a Docker builder
# compiles the replayed context from scratch (~6 minutes on two cores) into a fully
# optimised binary. The context is the same files (step 2 proves it complete) and the code
# the same; what is specific to the image (libraries, paths, user, environment) is in the
# runtime stage, checked for real.
# The root filesystem up to the runtime stage's first COPY is cached outside the checkout,
# keyed by a hash of those instructions (its apt line), so only the first run, or a change
# there, pays for debootstrap (~1.5 minutes).
# Needs root (debootstrap, chroot, mount); installs what it needs from Debian's packages and
# PyPI. Idempotent: run it as often as you like.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/basalt-target}"
CONTEXT_DIR="${BASALT_CONTAINER_CONTEXT:-/var/tmp/basalt-build-context}"
ROOTFS_PREFIX="${BASALT_ROOTFS_PREFIX:-/var/tmp/basalt-rootfs}"
# The subset the README's `--build-arg FEATURES=...` example builds.
SUBSET_FEATURES="${BASALT_CONTAINER_SUBSET:-auth,catalog}"
CHECK_JSONSCHEMA_VERSION=0.39.0
DATABASE=basalt_container_check
DOCKERFILE=(python3 scripts/dockerfile.py --dockerfile Dockerfile)

[ "$(id -u)" = 0 ] || { say "check-container.sh needs root (debootstrap, chroot, mount)"; exit 1; }
# One run at a time on a machine: they share the root filesystem and the build directory.
exec 9>/var/tmp/basalt-container-check.lock
flock 9

# Each step's time, summed up at the end.
started=$SECONDS
step_name=""
step_started=$SECONDS
timings=()
step() {
  [ -z "$step_name" ] || timings+=("$(printf '%5d s  %s' $((SECONDS - step_started)) "$step_name")")
  step_name=$*
  step_started=$SECONDS
  [ -z "$step_name" ] || say "$step_name"
}

# --- 1. compose.yaml against the Compose specification -------------------------------------
step "compose.yaml against the Compose specification's schema"
venv="$BASALT_STATE_DIR/venv-container"
if [ "$("$venv/bin/check-jsonschema" --version 2>/dev/null)" != "check-jsonschema, version $CHECK_JSONSCHEMA_VERSION" ]; then
  # Pinned: the vendored compose-spec schema changes with check-jsonschema's releases.
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >/dev/null 2>&1 \
    || { apt_install python3-venv python3-pip; python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q "check-jsonschema==$CHECK_JSONSCHEMA_VERSION" >&2
fi
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml

# --- 2. The build stage, replayed ------------------------------------------------------------
step "Build stage, replayed with cargo check (every domain, as the image builds)"
"${DOCKERFILE[@]}" build --check --out "$CONTEXT_DIR"
step "Build stage, replayed with cargo check and --build-arg FEATURES=$SUBSET_FEATURES"
"${DOCKERFILE[@]}" build --check --build-arg "FEATURES=$SUBSET_FEATURES" --out "$CONTEXT_DIR-subset"

step "The release binary: the build stage's last cargo command, in this checkout"
eval "build_command=($(tail -n 1 "$CONTEXT_DIR.cargo"))"
[ "${build_command[0]:-}" = build ] || { say "The build stage's last cargo command is not a build"; exit 1; }
echo "    cargo ${build_command[*]}"
# Incremental, unlike a release build by default: after a change to Basalt, seconds to a minute
# or two rather than ~7 minutes on two cores. Same code, same libraries, same behaviour; only
# the machine code is optimised a little less, which nothing checked below depends on.
CARGO_INCREMENTAL=1 cargo "${build_command[@]}"

# --- 3. The runtime stage ---------------------------------------------------------------------
mounted=()
unmount_all() {
  local m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    m=${mounted[$i]}
    mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }
  done
  mounted=()
}
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  unmount_all
}
trap cleanup EXIT

# What a container sees: /proc, and a small /dev like Docker's (no host devices but these).
mount_container_fs() {
  local root=$1
  mount -t proc proc "$root/proc"; mounted+=("$root/proc")
  mount -t tmpfs -o mode=755,nosuid,size=1m dev "$root/dev"; mounted+=("$root/dev")
  local dev
  for dev in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
    set -- $dev
    mknod -m 666 "$root/dev/$1" c "$2" "$3"
  done
  ln -s /proc/self/fd "$root/dev/fd"
  ln -s /proc/self/fd/0 "$root/dev/stdin"
  ln -s /proc/self/fd/1 "$root/dev/stdout"
  ln -s /proc/self/fd/2 "$root/dev/stderr"
  mkdir "$root/dev/pts" "$root/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"; mounted+=("$root/dev/pts")
  ln -s pts/ptmx "$root/dev/ptmx"
  mount -t tmpfs -o mode=1777,nosuid,nodev,size=64m shm "$root/dev/shm"; mounted+=("$root/dev/shm")
}

# Never delete a directory something is still mounted in.
remove_root() {
  if findmnt -rn -o TARGET | awk -v p="$1/" 'index($0, p) == 1 {found = 1} END {exit !found}'; then
    say "$1 still has mounts; not removing it"; return 1
  fi
  rm -rf "$1"
}

suite_key=$("${DOCKERFILE[@]}" key)
read -r suite key <<<"$suite_key"
base="$ROOTFS_PREFIX-$suite-$key"
if [ ! -d "$base" ]; then
  step "Root filesystem: debootstrap --variant=minbase $suite, then the runtime stage's first instructions (cached in $base)"
  command -v debootstrap >/dev/null || apt_install debootstrap
  # The mirror this machine's apt uses (or BASALT_DEBIAN_MIRROR), and its security archive.
  sources=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true)
  mirror=${BASALT_DEBIAN_MIRROR:-$(awk '($1 == "URIs:" || $1 == "deb") && !/security/ { print $2; exit }' <<<"$sources")}
  security=$(awk '($1 == "URIs:" || $1 == "deb") && /security/ { print $2; exit }' <<<"$sources")
  [ -n "$mirror" ] || { say "No Debian mirror in /etc/apt: set BASALT_DEBIAN_MIRROR"; exit 1; }
  tmp="$base.tmp"
  [ ! -e "$tmp" ] || remove_root "$tmp"
  debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >"$ROOTFS_PREFIX-debootstrap.log" 2>&1 \
    || { tail -n 30 "$ROOTFS_PREFIX-debootstrap.log"; exit 1; }
  # The sources a debian:<suite> image has: the release, its updates and security.
  rm -f "$tmp/etc/apt/sources.list"
  cat >"$tmp/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  [ -z "$security" ] || cat >>"$tmp/etc/apt/sources.list.d/debian.sources" <<EOF

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cp /etc/resolv.conf "$tmp/etc/resolv.conf"
  mount_container_fs "$tmp"
  "${DOCKERFILE[@]}" base "$tmp" >"$ROOTFS_PREFIX-base.log" 2>&1 \
    || { tail -n 30 "$ROOTFS_PREFIX-base.log"; exit 1; }
  unmount_all
  mv "$tmp" "$base"
  # Roots cached for an older runtime stage.
  for old in "$ROOTFS_PREFIX-$suite"-*; do
    [ "$old" = "$base" ] || [ ! -d "$old" ] || remove_root "$old"
  done
else
  step "Root filesystem: cached $base"
fi

root="$ROOTFS_PREFIX-run"
[ ! -e "$root" ] || remove_root "$root"
cp -a "$base" "$root"
mount_container_fs "$root"
step "Runtime stage: its COPY and RUN lines in a copy of the cached root ($root)"
"${DOCKERFILE[@]}" apply "$root" --build-out "$CONTEXT_DIR"
image_config=$("${DOCKERFILE[@]}" config "$root")
eval "$image_config"

# Runs a command in the root as the image would: only its ENV (plus the given variables),
# its USER, its WORKDIR.
chroot_bin=$(command -v chroot)
# `image_argv VAR=value... -- command...` sets image_argv to that command line; every program
# in it execs the next, so a background job's $! is the command itself.
image_argv() {
  local extra=()
  while [ "$1" != -- ]; do extra+=("$1"); shift; done
  shift
  image_argv=(env -i "${IMAGE_ENV[@]}" "${extra[@]}" "$chroot_bin" --userspec="$IMAGE_USERSPEC"
    --groups= "$root" /bin/sh -c 'cd "$0" && exec "$@"' "$IMAGE_WORKDIR" "$@")
}
in_image() { image_argv "$@"; "${image_argv[@]}"; }

step "Shared libraries and CA bundle in the root"
libs=$(in_image -- /bin/sh -c 'ldd "$(command -v "$0")"' "${IMAGE_COMMAND[0]}" 2>&1) \
  || { echo "$libs"; say "ldd failed inside the root"; exit 1; }
if grep -q "not found" <<<"$libs"; then
  echo "$libs"; say "Shared libraries missing from the image"; exit 1
fi
echo "$libs" | sed 's/^/    /'
# rustls-platform-verifier (object_store's HTTPS client, for S3) reads the system store.
[ -s "$root/etc/ssl/certs/ca-certificates.crt" ] || { say "No CA bundle in the image"; exit 1; }

step "A fresh database on this machine's PostgreSQL"
ensure_postgres
PGOPTIONS=--client-min-messages=warning psql "$ADMIN_DATABASE_URL" -qc "drop database if exists $DATABASE" >/dev/null
database_url=$(ensure_database "$DATABASE")

# The image's port, unless something on this machine already listens there (say a developer's
# scripts/serve.sh): then another one, and the HEALTHCHECK command is pointed at it.
port=""
for kv in "${IMAGE_ENV[@]}"; do
  case $kv in BASALT__SERVER__PORT=*) port=${kv#*=} ;; esac
done
port=${port:-${IMAGE_EXPOSE[0]%/*}}
overrides=("DATABASE_URL=$database_url")
healthcheck=("${IMAGE_HEALTHCHECK[@]}")
if port_open "$port"; then
  image_port=$port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  say "Port $image_port is taken on this machine: serving on $port instead"
  overrides+=("BASALT__SERVER__PORT=$port")
  healthcheck=("${healthcheck[@]//:$image_port\//:$port/}")
fi

step "The production profile refuses the development JWT secret"
set +e
refusal=$(in_image "${overrides[@]}" -- timeout 60 "${IMAGE_COMMAND[@]}" 2>&1)
code=$?
set -e
echo "    exit $code: $refusal"
if [ "$code" = 0 ] || ! grep -q "identity.jwt_secret" <<<"$refusal"; then
  say "Expected a refusal naming identity.jwt_secret"; exit 1
fi

step "basalt serve in the root, as $IMAGE_USER ($IMAGE_USERSPEC), with the image's environment"
secret=$(head -c 48 /dev/urandom | base64 -w0)
log="$ROOTFS_PREFIX-serve.log"
image_argv "${overrides[@]}" "BASALT__IDENTITY__JWT_SECRET=$secret" -- "${IMAGE_COMMAND[@]}"
"${image_argv[@]}" >"$log" 2>&1 &
server_pid=$!
healthy=""
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ]; do
  kill -0 "$server_pid" 2>/dev/null || { cat "$log"; say "basalt exited before it was healthy"; exit 1; }
  if in_image -- timeout "$IMAGE_HEALTHCHECK_TIMEOUT" "${healthcheck[@]}" >/dev/null 2>&1; then
    healthy=1; break
  fi
  sleep 0.5
done
[ -n "$healthy" ] || { cat "$log"; say "The HEALTHCHECK command did not pass within 60 s"; exit 1; }
echo "    HEALTHCHECK passed: ${healthcheck[*]}"
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health/ready")
[ "$status" = 200 ] || { say "/health/ready answered $status"; exit 1; }
echo "    GET /health/ready: 200"
# Listening on every interface (BASALT__SERVER__HOST=0.0.0.0), not only on loopback.
python3 - "$port" <<'EOF'
import sys
port = int(sys.argv[1])
rows = [l.split() for l in open("/proc/net/tcp").read().splitlines()[1:]]
if not any(r[1] == f"00000000:{port:04X}" and r[3] == "0A" for r in rows):
    sys.exit(f"nothing listens on 0.0.0.0:{port}")
print(f"    listening on 0.0.0.0:{port}")
EOF

step "SIGTERM stops it cleanly"
kill -TERM "$server_pid"
set +e
wait "$server_pid"
code=$?
set -e
server_pid=""
[ "$code" = 0 ] || { cat "$log"; say "basalt exited with $code after SIGTERM"; exit 1; }
python3 - "$log" "$secret" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
for l in lines:
    try:
        json.loads(l)
    except ValueError:
        sys.exit(f"not a JSON log line: {l}")
text = "\n".join(lines)
if "shutdown complete" not in text:
    sys.exit("no 'shutdown complete' in the logs")
if sys.argv[2] in text:
    sys.exit("the JWT secret was logged")
print(f"    {len(lines)} log lines, all JSON; shutdown complete; the secret never logged")
EOF
unmount_all
remove_root "$root"
step
say "Container checks passed in $((SECONDS - started)) s:"
printf '%s\n' "${timings[@]}"
