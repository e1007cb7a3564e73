#!/usr/bin/env bash
# Build fitserve's container image with podman, run it, check it, and clean up.
#
#   deploy/container.sh [--fresh] [--keep]
#
# 1. The base: a slim Debian bookworm made with debootstrap and imported with `podman import`
#    (no image registry is needed), unless an image of that name is already there.
#    --fresh removes it first, to measure a build from nothing.
# 2. The build context: the fitserve wheel and its dependencies' wheels, made on the host
#    (a build may not reach PyPI), for the base's Python (3.11 on bookworm).
# 3. `podman build` of deploy/Containerfile (runc: crun does not work on these machines).
# 4. A run publishing a loopback port only, read-only, with no capabilities: /health, two fits
#    checked against their known answers, the image's HEALTHCHECK, a non-root user, then
#    SIGTERM while a request is still arriving: it must be answered, and the exit status 0.
# 5. Prints the base, wheel and build times and the image size; removes the container, the
#    context and the image (--keep keeps the image). Exits 1 if a check fails.
#
# Needs root (debootstrap), podman, runc, debootstrap, curl and python3 on the host.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${FITSERVE_BASE_IMAGE:-localhost/debian:bookworm-slim}
IMAGE=${FITSERVE_IMAGE:-localhost/fitserve:check}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PYTHON=${PYTHON:-python3}
IMAGE_PYTHON=3.11 # Debian bookworm's python3
PODMAN=(podman --runtime runc)
NAME=fitserve-check-$$
FRESH=0
KEEP=0
for arg in "$@"; do
  case $arg in
    --fresh) FRESH=1 ;;
    --keep) KEEP=1 ;;
    *) echo "usage: $0 [--fresh] [--keep]" >&2; exit 2 ;;
  esac
done

for tool in podman runc debootstrap curl "$PYTHON"; do
  command -v "$tool" >/dev/null || { echo "container.sh: $tool is not installed" >&2; exit 1; }
done

WORK=$(mktemp -d /var/tmp/fitserve-container.XXXXXX)
DANGLING_BEFORE=$(podman images -q --no-trunc --filter dangling=true | sort)
cleanup() {
  "${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
  [ "$KEEP" = 1 ] || "${PODMAN[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
  # The build stage's image (untagged) that this build left; no one else's.
  comm -13 <(echo "$DANGLING_BEFORE") <(podman images -q --no-trunc --filter dangling=true | sort) \
    | xargs -r podman rmi -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "container.sh: FAILED: $*" >&2; "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -20 >&2 || true; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# 1. The base image.
if [ "$FRESH" = 1 ]; then
  "${PODMAN[@]}" rmi -f "$BASE_IMAGE" >/dev/null 2>&1 || true
fi
start=$(now)
if "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
  base_time="already there"
else
  echo "== debootstrap of Debian bookworm (minbase) into $WORK/rootfs"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap"; }
  # What a slim image leaves out: docs, man pages, locales but English, apt's lists and caches.
  rm -rf "$WORK"/rootfs/usr/share/{doc,man,info}/* "$WORK"/rootfs/var/lib/apt/lists/* "$WORK"/rootfs/var/cache/apt/*.bin
  find "$WORK/rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'en*' ! -name locale.alias -exec rm -rf {} +
  # apt in a build: no recommends, no docs, as Debian's own slim images are set up.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$WORK/rootfs/etc/apt/apt.conf.d/90slim"
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n' \
    >"$WORK/rootfs/etc/dpkg/dpkg.cfg.d/90slim"
  tar --numeric-owner -C "$WORK/rootfs" -c . \
    | "${PODMAN[@]}" import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$WORK/rootfs"
  base_time="$(since "$start") s"
fi
echo "== base $BASE_IMAGE: $base_time"

# 2. The wheels: fitserve's, then its dependencies' for the image's Python and platform.
start=$(now)
mkdir -p "$WORK/context/wheels"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/context/wheels" . >"$WORK/pip.log" 2>&1 \
  || { tail -20 "$WORK/pip.log" >&2; fail "pip wheel of fitserve"; }
"$PYTHON" -m pip download --quiet --only-binary=:all: --python-version "$IMAGE_PYTHON" \
  --platform "manylinux_2_28_$(uname -m)" --platform "manylinux_2_17_$(uname -m)" --platform "manylinux2014_$(uname -m)" \
  --dest "$WORK/context/wheels" "$WORK"/context/wheels/fitserve-*.whl pip >"$WORK/pip.log" 2>&1 \
  || { tail -20 "$WORK/pip.log" >&2; fail "pip download of the dependencies"; }
wheel_time=$(since "$start")
echo "== wheels: $(ls "$WORK/context/wheels" | wc -l) in ${wheel_time} s"

# 3. The image.
start=$(now)
"${PODMAN[@]}" build --runtime runc --format docker --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  -t "$IMAGE" -f deploy/Containerfile "$WORK/context" >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log" >&2; fail "podman build"; }
build_time=$(since "$start")
size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
echo "== image $IMAGE built in ${build_time} s, $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }')"

# 4. Run it on a free loopback port and check it.
# Podman run as root asks runc to raise the open-files and processes limits to its own
# maximums; where podman lacks CAP_SYS_RESOURCE (as on these VMs) runc cannot, and the run
# fails ("error setting rlimit type 7"). The host's own open-files limit and a few thousand
# processes (the service runs one per core) need no raise. Podman schedules HEALTHCHECK runs
# with systemd timers; without systemd they are off here, and the check runs once below.
# The rest as Kubernetes runs it (deploy/kubernetes): a read-only root with a tmpfs /tmp, no
# capabilities, no privilege escalation.
RUN_ARGS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096 --health-interval disable
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges)
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${PODMAN[@]}" run -d "${RUN_ARGS[@]}" --name "$NAME" -p "127.0.0.1:$port:8000" "$IMAGE" >/dev/null 2>"$WORK/run.log" \
  || { cat "$WORK/run.log" >&2; fail "podman run"; }
url="http://127.0.0.1:$port"
start=$(now)
for _ in $(seq 1 120); do
  if curl -fsS -m 2 "$url/health" >"$WORK/health.json" 2>/dev/null; then break; fi
  sleep 0.5
done
grep -q '"status":"ok"' "$WORK/health.json" 2>/dev/null || fail "/health did not answer within 60 s"
echo "== /health after $(since "$start") s: $(cat "$WORK/health.json")"

curl -fsS -m 30 --json @examples/predict.json "$url/predict" >"$WORK/predict.json" || fail "POST /predict"
curl -fsS -m 30 --json @examples/statistics.json "$url/fit" >"$WORK/statistics.json" || fail "POST /fit with statistics"
"$PYTHON" - "$WORK/predict.json" "$WORK/statistics.json" <<'EOF' || fail "the fit's answer"
import json, sys

answer = json.load(open(sys.argv[1]))
expected = {"coef": [0.8533333333333328, 1.1333333333333329], "intercept": -0.07999999999999652,
            "predictions": [11.839999999999998, 16.093333333333327]}
for key, values in expected.items():
    got = answer[key] if isinstance(answer[key], list) else [answer[key]]
    want = values if isinstance(values, list) else [values]
    assert all(abs(g - w) <= 1e-9 * max(1.0, abs(w)) for g, w in zip(got, want, strict=True)), (key, got, want)
print("== POST /predict:", json.dumps({k: answer[k] for k in expected}))
# statistics and intervals use scipy: the image has what they need
statistics = json.load(open(sys.argv[2]))["statistics"]
assert abs(statistics["r_squared"] - 0.9804881636253894) <= 1e-9, statistics["r_squared"]
assert abs(statistics["f_p_value"] - 3.538965358012573e-7) <= 1e-15, statistics["f_p_value"]
print("== POST /fit with statistics: r_squared", statistics["r_squared"], "f_p_value", statistics["f_p_value"])
EOF

"${PODMAN[@]}" healthcheck run "$NAME" >/dev/null || fail "the image's HEALTHCHECK"
echo "== HEALTHCHECK: healthy"
uid=$("${PODMAN[@]}" exec "$NAME" /opt/fitserve/bin/python -c 'import os; print(os.getuid())')
[ "$uid" != 0 ] || fail "the service runs as root"
echo "== runs as uid $uid"

# SIGTERM while a request is under way: a body of ~70 kB trickled at 20 kB/s is still
# arriving when the signal comes; fitserve must stop listening, finish it (200), and exit 0.
"$PYTHON" -c 'import json, random; r = random.Random(1); X = [[r.random() for _ in range(3)] for _ in range(1200)]
print(json.dumps({"X_train": X, "y_train": [1 + a + 2 * b - c for a, b, c in X]}))' >"$WORK/slow.json"
curl -sS -m 60 -o "$WORK/slow-answer.json" -w '%{http_code}' --limit-rate 20k \
  -H 'Content-Type: application/json' --data-binary @"$WORK/slow.json" "$url/fit" >"$WORK/slow-status" 2>&1 &
slow=$!
sleep 1
start=$(now)
"${PODMAN[@]}" kill --signal TERM "$NAME" >/dev/null
status=$(timeout 40 "${PODMAN[@]}" wait "$NAME") || fail "still running 40 s after SIGTERM"
[ "$status" = 0 ] || fail "exit status $status after SIGTERM"
"${PODMAN[@]}" logs "$NAME" 2>&1 | grep -q "fitserve stopped" || fail "no 'fitserve stopped' line after SIGTERM"
wait "$slow" || true
[ "$(cat "$WORK/slow-status")" = 200 ] || fail "the request under way at SIGTERM got: $(cat "$WORK/slow-status")"
"$PYTHON" -c 'import json, sys; a = json.load(open(sys.argv[1]))
assert all(abs(g - w) < 1e-9 for g, w in zip(a["coef"] + [a["intercept"]], [1, 2, -1, 1], strict=True)), a' \
  "$WORK/slow-answer.json" || fail "the answer of the request under way at SIGTERM"
echo "== SIGTERM with a request under way: it was answered (200), then exit status 0 after $(since "$start") s"

echo "container.sh: OK (base: $base_time; wheels: ${wheel_time} s; build: ${build_time} s; image: $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }'))"
