#!/bin/sh
# Retry a real HTTP fetch with `recovery run`.
#
# Starts examples/flaky_service.py on a free local port (it answers 503 with
# a Retry-After header to its first two requests), fetches from it through
# `recovery run`, stops the service and exits with recovery's status.
#
# Run from anywhere after `pip install .`:   sh examples/demo.sh
# PYTHON picks the interpreter (default python3). The `recovery` command on
# PATH is used when there is one, else `$PYTHON -m recovery.cli`.

set -eu

PYTHON=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/recovery-demo.XXXXXX")
service=""

cleanup() {
    if [ -n "$service" ]; then
        kill "$service" 2>/dev/null || true
        wait "$service" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

recovery_cmd() {
    if command -v recovery >/dev/null 2>&1; then
        recovery "$@"
    else
        "$PYTHON" -m recovery.cli "$@"
    fi
}

nap() {
    # Fractional sleep is not POSIX; fall back to whole seconds.
    sleep 0.1 2>/dev/null || sleep 1
}

"$PYTHON" "$here/flaky_service.py" --port 0 --failures 2 --retry-after 0.3 \
    >"$work/service.out" 2>"$work/service.log" &
service=$!

# Wait (up to about 10 s) for the service to print its address.
tries=0
while ! grep -q '^listening on ' "$work/service.out" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ] || ! kill -0 "$service" 2>/dev/null; then
        echo "demo: the flaky service did not start" >&2
        cat "$work/service.log" >&2
        exit 1
    fi
    nap
done
url=$(sed -n 's/^listening on //p' "$work/service.out")
echo "demo: the service listens on $url and fails its first 2 requests" >&2

status=0
recovery_cmd run --attempts 5 --backoff exponential --initial 0.2 --max-delay 2 \
    --retry-on-exit 75 -- "$PYTHON" "$here/fetch.py" "$url" || status=$?

echo "demo: what the service saw:" >&2
sed 's/^/demo:   /' "$work/service.log" >&2
echo "demo: recovery run exited with status $status" >&2

exit "$status"
