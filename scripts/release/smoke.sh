#!/usr/bin/env bash
# Smoke test of a tftpkit binary against real TFTP clients:
#
#   bash scripts/release/smoke.sh dist/tftpkit
#
# Starts `BINARY serve DIR --port 0 --address 127.0.0.1 --write` (the port it prints is used;
# SMOKE_PORT=N picks one), downloads two files with each client, uploads one file with each client,
# compares every byte with cmp, stops the server with SIGTERM and checks that it exits 0.
#
# Clients: SMOKE_CLIENTS="tftp-hpa busybox curl" requires exactly those (fails if one is missing);
# unset, every one found is used and at least one must be found. tftp-hpa (`tftp`) and curl
# download and upload; busybox's tftp uploads and downloads too.
#
# Exits 0 when everything matched, non-zero (with the reason on stderr) otherwise.
# Portable to macOS's bash 3.2: no arrays, no `wait -n`, no GNU-only options.
set -euo pipefail

BINARY="${1:-}"
if [ -z "$BINARY" ] || [ "$#" -ne 1 ]; then
  echo "usage: bash scripts/release/smoke.sh BINARY" >&2
  exit 2
fi
case "$BINARY" in
  */*) ;;
  *) BINARY="./$BINARY" ;;
esac
[ -x "$BINARY" ] || { echo "smoke: $BINARY is not an executable file" >&2; exit 2; }

fail() {
  echo "smoke: FAIL: $*" >&2
  if [ -n "${LOG:-}" ] && [ -s "$LOG" ]; then
    echo "smoke: server log:" >&2
    sed 's/^/  | /' "$LOG" >&2
  fi
  exit 1
}
say() { echo "smoke: $*"; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tftpkit-smoke.XXXXXX")"
SERVER_PID=""
WATCHDOG_PID=""
LOG="$WORK/server.log"
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  stop_watchdog
  rm -rf "$WORK"
}
trap cleanup EXIT

# watchdog SECONDS PID: kills PID after SECONDS unless stop_watchdog runs first.
watchdog() {
  (
    sleep "$1" &
    s=$!
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    wait "$s"
    kill -KILL "$2" 2>/dev/null
  ) </dev/null >/dev/null 2>&1 &
  WATCHDOG_PID=$!
}
stop_watchdog() {
  if [ -n "$WATCHDOG_PID" ]; then
    kill -TERM "$WATCHDOG_PID" 2>/dev/null || true
    wait "$WATCHDOG_PID" 2>/dev/null || true
    WATCHDOG_PID=""
  fi
}
# limited SECONDS CMD…: runs CMD (stdin from /dev/null), killing it after SECONDS.
limited() {
  local secs="$1" pid rc=0
  shift
  "$@" </dev/null &
  pid=$!
  watchdog "$secs" "$pid"
  wait "$pid" || rc=$?
  stop_watchdog
  return "$rc"
}

# --- which clients -------------------------------------------------------------------------
# (Outputs are captured first: with pipefail, `cmd | grep -q` fails when cmd exits non-zero.)
have_tftp_hpa() {
  command -v tftp >/dev/null 2>&1 || return 1
  local v
  v="$(tftp -V 2>&1 </dev/null || true)"
  case "$v" in *tftp-hpa*) return 0 ;; *) return 1 ;; esac
}
have_busybox() {
  command -v busybox >/dev/null 2>&1 || return 1
  local v
  v="$(busybox --list 2>/dev/null || true)"
  printf '%s\n' "$v" | grep -qx tftp
}
have_curl() {
  command -v curl >/dev/null 2>&1 || return 1
  local v
  v="$(curl -V 2>/dev/null || true)"
  printf '%s\n' "$v" | grep -i '^protocols:' | grep -qw tftp
}

CLIENTS=""
if [ -n "${SMOKE_CLIENTS:-}" ]; then
  for c in $SMOKE_CLIENTS; do
    case "$c" in
      tftp-hpa) have_tftp_hpa || fail "SMOKE_CLIENTS names tftp-hpa, but no tftp-hpa 'tftp' is on PATH" ;;
      busybox) have_busybox || fail "SMOKE_CLIENTS names busybox, but busybox has no tftp applet" ;;
      curl) have_curl || fail "SMOKE_CLIENTS names curl, but curl is missing or lacks tftp://" ;;
      *) fail "unknown client '$c' in SMOKE_CLIENTS (tftp-hpa, busybox, curl)" ;;
    esac
    CLIENTS="$CLIENTS $c"
  done
else
  have_tftp_hpa && CLIENTS="$CLIENTS tftp-hpa"
  have_busybox && CLIENTS="$CLIENTS busybox"
  have_curl && CLIENTS="$CLIENTS curl"
fi
[ -n "$CLIENTS" ] || fail "no TFTP client found: install tftp-hpa, busybox or curl (with tftp://)"
say "clients:$CLIENTS"

# --- files ---------------------------------------------------------------------------------
SERVED="$WORK/served"
LOCAL="$WORK/local"
mkdir -p "$SERVED" "$LOCAL"
chmod 0755 "$WORK" "$SERVED"
# 300123 bytes: many blocks and a short last one; 32768: a multiple of 512 (ends with an empty block)
head -c 300123 /dev/urandom >"$SERVED/download.bin"
head -c 32768 /dev/urandom >"$SERVED/exact.bin"
head -c 200123 /dev/urandom >"$LOCAL/upload.bin"

# --- version -------------------------------------------------------------------------------
version="$(limited 60 "$BINARY" --version 2>&1)" || fail "$BINARY --version failed: $version"
case "$version" in
  "tftpkit "*) say "$version" ;;
  *) fail "$BINARY --version printed '$version', not 'tftpkit VERSION'" ;;
esac

# --- start the server ----------------------------------------------------------------------
# Two transfer workers at least, so the binary's compiled-in worker module is exercised.
"$BINARY" serve "$SERVED" --port "${SMOKE_PORT:-0}" --address 127.0.0.1 --write --workers 2 \
  </dev/null >"$LOG" 2>&1 &
SERVER_PID=$!
PORT=""
i=0
while [ "$i" -lt 600 ]; do
  line="$(grep -m1 'listening on ' "$LOG" 2>/dev/null || true)"
  if [ -n "$line" ]; then
    PORT="$(printf '%s\n' "$line" | sed -E 's/.*listening on 127\.0\.0\.1:([0-9]+).*/\1/')"
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited before listening"
  sleep 0.1
  i=$((i + 1))
done
case "$PORT" in
  '' | *[!0-9]*) fail "no 'listening on 127.0.0.1:PORT' line within 60 s" ;;
esac
say "server pid $SERVER_PID listening on 127.0.0.1:$PORT"

# --- transfers -----------------------------------------------------------------------------
transfers=0
check_same() { # check_same EXPECTED ACTUAL WHAT
  [ -f "$2" ] || fail "$3: $2 was not created"
  cmp -s "$1" "$2" || fail "$3: contents differ ($(wc -c <"$1" | tr -d ' ') bytes expected, $(wc -c <"$2" | tr -d ' ') received)"
  transfers=$((transfers + 1))
  say "ok: $3 ($(wc -c <"$2" | tr -d ' ') bytes)"
}

download() { # download CLIENT NAME LOCALFILE
  case "$1" in
    tftp-hpa) limited 120 tftp -m binary 127.0.0.1 "$PORT" -c get "$2" "$3" ;;
    busybox) limited 120 busybox tftp -g -r "$2" -l "$3" 127.0.0.1 "$PORT" ;;
    curl) limited 120 curl -sS --max-time 100 -o "$3" "tftp://127.0.0.1:$PORT/$2" ;;
  esac
}
upload() { # upload CLIENT LOCALFILE NAME
  case "$1" in
    tftp-hpa) limited 120 tftp -m binary 127.0.0.1 "$PORT" -c put "$2" "$3" ;;
    busybox) limited 120 busybox tftp -p -l "$2" -r "$3" 127.0.0.1 "$PORT" ;;
    curl) limited 120 curl -sS --max-time 100 -T "$2" "tftp://127.0.0.1:$PORT/$3" ;;
  esac
}

for c in $CLIENTS; do
  for name in download.bin exact.bin; do
    got="$LOCAL/$c-$name"
    download "$c" "$name" "$got" || fail "$c: download of $name exited non-zero"
    check_same "$SERVED/$name" "$got" "$c download of $name"
  done
  remote="up-$c.bin"
  upload "$c" "$LOCAL/upload.bin" "$remote" || fail "$c: upload of $remote exited non-zero"
  # The server renames an upload into place after its last block: allow the final ACK to land.
  i=0
  while [ ! -f "$SERVED/$remote" ] && [ "$i" -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  check_same "$LOCAL/upload.bin" "$SERVED/$remote" "$c upload as $remote"
done

# Every transfer logs one line when it ends (an upload's only after the server's dally for a
# repeated last block), so wait a little for the count.
i=0
while :; do
  logged="$(grep -c -e ' ok: ' -e '"outcome":"ok"' "$LOG" || true)"
  [ "$logged" -ge "$transfers" ] && break
  [ "$i" -lt 300 ] || fail "the server logged $logged successful transfers, expected $transfers"
  sleep 0.1
  i=$((i + 1))
done
say "the server logged $logged successful transfers"

# --- stop ----------------------------------------------------------------------------------
kill -TERM "$SERVER_PID" || fail "could not signal the server"
watchdog 30 "$SERVER_PID"
rc=0
wait "$SERVER_PID" || rc=$?
stop_watchdog
SERVER_PID=""
[ "$rc" -eq 0 ] || fail "the server exited $rc after SIGTERM (expected 0)"
say "server stopped by SIGTERM with exit 0"
say "PASS: $transfers transfers compared byte for byte"
