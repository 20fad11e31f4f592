# Shared shell helpers for scripts/quickstart and scripts/bench (sourced, not run).

# Start the patched emulator on a free port in the background; sets EMULATOR_PID and exports
# AWS_ENDPOINT_URL plus dummy credentials and region. Stops it when the calling script exits.
start_emulator() {
  local log
  log="$(mktemp)"
  .venv/emulator/bin/python tests/emulator/launcher.py --port 0 >"$log" 2>&1 &
  EMULATOR_PID=$!
  trap 'kill $EMULATOR_PID 2>/dev/null || true; rm -f "'"$log"'"' EXIT
  for _ in $(seq 1 300); do
    grep -q EMULATOR_READY "$log" && break
    kill -0 "$EMULATOR_PID" 2>/dev/null || { cat "$log"; echo "emulator failed to start" >&2; exit 1; }
    sleep 0.2
  done
  local url
  url="$(grep -o 'http://[^ ]*' "$log" | head -1)"
  [ -n "$url" ] || { cat "$log"; echo "emulator did not report its address" >&2; exit 1; }
  export AWS_ENDPOINT_URL="$url" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=ap-northeast-1
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  export MSKCTL_POLL_MS="${MSKCTL_POLL_MS:-300}"
  unset AWS_PROFILE
}
