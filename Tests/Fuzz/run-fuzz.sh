#!/usr/bin/env bash
# Builds and runs the NATCore libFuzzer harness (Tests/Fuzz/TranslatorFuzzer.swift).
#
#   Tests/Fuzz/run-fuzz.sh [SECONDS] [JOBS]      (defaults: 60 seconds, 1 job)
#
# Builds NATCore and NATHelpers as modules (the IRC helper is included when it compiles),
# with -sanitize=fuzzer,address, links the harness against them, writes a seed corpus and a
# dictionary, then fuzzes for SECONDS with -max_len=2048. Everything goes to .build-fuzz/
# (gitignored): the binary, corpus/ (kept and grown between runs), artifacts/ (crashes) and
# fuzz-history-PID/ (the inputs that led to a failure). Rebuilds only when a source changed.
#
# Exit status: 0 when no crash was found; non-zero otherwise, after printing the reproducer.
# Reproduce: .build-fuzz/translator-fuzzer CRASH-FILE          (state fresh for that input)
#            FUZZ_RESET_EVERY=1000 .build-fuzz/translator-fuzzer .build-fuzz/fuzz-history-PID/*
#                                                  (the inputs since the last state reset, in order)
# Environment: SWIFTC (compiler), FUZZ_OUT (build/output directory), FUZZ_ARGS (extra libFuzzer flags).
#
# Then the state-file fuzzer (Tests/Fuzz/StateFileFuzzer.swift: any bytes as a state file,
# decoded, restored into a translator with the helpers, and packets replayed through it) for a
# quarter of SECONDS, at least 10 s (FUZZ_STATE_SECONDS overrides), one job, -max_len=8192,
# corpus state-corpus/, crashes artifacts/state-*, log state-fuzz.log. Reproduce:
# .build-fuzz/state-fuzzer CRASH-FILE
#
# Then, when the translator fuzzer found nothing, the capture fuzzer (Tests/Fuzz/CaptureFuzzer.swift:
# the PacketCapture reader and writer, any bytes as a capture file) runs for a quarter of
# SECONDS, at least 10 s (FUZZ_CAPTURE_SECONDS overrides), one job, -max_len=4096, with its own
# corpus (capture-corpus/) and seeds; its crashes go to artifacts/capture-*, its log to
# capture-fuzz.log. Reproduce: .build-fuzz/capture-fuzzer CRASH-FILE
#
# Last, the HA sync channel fuzzer (Tests/Fuzz/SyncFuzzer.swift, with Sources/Masqd/Sync/):
# a quarter of SECONDS, at least 10 s (FUZZ_SYNC_SECONDS), corpus sync-corpus/, crashes
# artifacts/sync-*, log sync-fuzz.log. Reproduce: .build-fuzz/sync-fuzzer CRASH-FILE
set -euo pipefail

DURATION=${1:-60}
JOBS=${2:-1}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${FUZZ_OUT:-$ROOT/.build-fuzz}
BIN=$OUT/translator-fuzzer
OBJ=$OUT/obj
SWIFTC=${SWIFTC:-swiftc}
HARNESS=$ROOT/Tests/Fuzz/TranslatorFuzzer.swift
FLAGS=(-O -g -sanitize=fuzzer,address -parse-as-library -swift-version 6)

mkdir -p "$OBJ" "$OUT/corpus" "$OUT/artifacts"

needs_build() {
    [[ -x $BIN ]] || return 0
    [[ -n $(find "$ROOT/Sources/NATCore" "$ROOT/Sources/NATHelpers" "$HARNESS" "${BASH_SOURCE[0]}" -newer "$BIN" -print -quit) ]]
}

build() {
    echo "== building the fuzzer (NATCore, NATHelpers, harness) in $OUT"
    "$SWIFTC" "${FLAGS[@]}" -wmo -module-name NATCore \
        -emit-module -emit-module-path "$OBJ/NATCore.swiftmodule" \
        -c "$ROOT"/Sources/NATCore/*.swift -o "$OBJ/NATCore.o"
    local defines=()
    # The IRC helper is work in progress: include it only if NATHelpers compiles with it.
    if "$SWIFTC" "${FLAGS[@]}" -wmo -module-name NATHelpers -I "$OBJ" \
        -emit-module -emit-module-path "$OBJ/NATHelpers.swiftmodule" \
        -c "$ROOT"/Sources/NATHelpers/*.swift -o "$OBJ/NATHelpers.o" 2>"$OBJ/helpers-with-irc.log"; then
        if [[ -f $ROOT/Sources/NATHelpers/IRCHelper.swift ]]; then defines+=(-D FUZZ_IRC); fi
    else
        echo "== NATHelpers does not compile with the IRC files (see $OBJ/helpers-with-irc.log): fuzzing without IRC"
        local files=()
        for f in "$ROOT"/Sources/NATHelpers/*.swift; do
            case $(basename "$f") in IRC*) ;; *) files+=("$f") ;; esac
        done
        "$SWIFTC" "${FLAGS[@]}" -wmo -module-name NATHelpers -I "$OBJ" \
            -emit-module -emit-module-path "$OBJ/NATHelpers.swiftmodule" \
            -c "${files[@]}" -o "$OBJ/NATHelpers.o"
    fi
    "$SWIFTC" "${FLAGS[@]}" ${defines[@]+"${defines[@]}"} -I "$OBJ" "$HARNESS" "$OBJ/NATCore.o" "$OBJ/NATHelpers.o" \
        -o "$BIN.tmp" 2> >(grep -v "Cannot export local symbol" >&2)
    mv "$BIN.tmp" "$BIN"
    echo "== built $BIN ${defines[*]+(${defines[*]})}"
}

if needs_build; then build; else echo "== $BIN is up to date"; fi

# Seeds (real packets and helper conversations, encoded as harness programs) and a dictionary.
rm -rf "$OUT/seeds"
SWIFT_BACKTRACE=enable=no FUZZ_WRITE_SEEDS="$OUT/seeds" "$BIN" >/dev/null 2>&1 || true
[[ -n $(ls -A "$OUT/seeds" 2>/dev/null) ]] || { echo "seed corpus was not written" >&2; exit 2; }
cat >"$OUT/fuzz.dict" <<'EOF'
"PORT "
"SIP/2.0"
"Via: SIP/2.0/UDP "
"Contact: <sip:"
"Content-Length: "
"application/sdp"
"c=IN IP4 "
"m=audio "
"a=rtcp:"
"octet\x00"
"EPRT |1|"
"EPRT |2|"
"227 Entering Passive Mode ("
"229 Entering Extended Passive Mode (|||"
"\x01DCC SEND "
"\x01DCC CHAT "
"\x01DCC ACCEPT "
"\x01DCC RESUME "
"PRIVMSG "
"NOTICE "
"\x0d\x0a"
"192,0,2,10,"
"203,0,113,1,"
"192.0.2.10"
"3221225994"
"\xc0\x00\x02\x0a"
"\xc0\x00\x02\x0b"
"\xcb\x00\x71\x01"
"\xcb\x00\x71\x02"
"\x45\x00"
"\x00\x15"
"\x1a\x0b"
"\x9c\x40"
"\x20\x00"
EOF

cd "$OUT"
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
export FUZZ_STATS=1
START=$OUT/.start-stamp
touch "$START"
LOG=$OUT/fuzz.log
ARGS=(-max_len=2048 -max_total_time="$DURATION" -timeout=30 -print_final_stats=1
      -dict="$OUT/fuzz.dict" -artifact_prefix="$OUT/artifacts/")
# shellcheck disable=SC2206
EXTRA=(${FUZZ_ARGS:-})
echo "== fuzzing for ${DURATION}s with $JOBS job(s); log: $LOG"
status=0
if [[ $JOBS -gt 1 ]]; then
    "$BIN" "${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"} -jobs="$JOBS" -workers="$JOBS" "$OUT/corpus" "$OUT/seeds" >"$LOG" 2>&1 || status=$?
    cat "$OUT"/fuzz-*.log >>"$LOG" 2>/dev/null || true
else
    set +e
    "$BIN" "${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"} "$OUT/corpus" "$OUT/seeds" 2>&1 | tee "$LOG" | grep -E "^#[0-9]+.*(pulse|DONE)|ERROR|INVARIANT|Test unit written|history|^masqd-fuzz stats|^  (verdicts|drops|fragments|helpers):"
    status=${PIPESTATUS[0]}
    set -e
fi

echo "== summary"
grep -E "^#[0-9]+" "$LOG" | tail -n 1 || true
grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$LOG" || true
grep -A5 "^masqd-fuzz stats" "$LOG" || true
# slow-unit-* files only report inputs slower than 10 s (a loaded machine makes those); crashes,
# timeouts (-timeout=30), leaks and out-of-memory fail the run.
crashes=$(find "$OUT/artifacts" -type f -newer "$START" ! -name 'slow-unit-*' 2>/dev/null | sort)
if [[ $status -ne 0 || -n $crashes ]]; then
    echo "== FAILURE (libFuzzer exit status $status)"
    grep -E "INVARIANT BROKEN|ERROR: |Fatal error|SUMMARY" "$LOG" | head -n 20 || true
    for c in $crashes; do echo "reproducer: $c"; done
    grep -hE "fuzz-history-[0-9]+/" "$LOG" | head -n 5 || true
    echo "reproduce: $BIN <reproducer>   (or replay the history directory, in order, as printed above)"
    [[ $status -ne 0 ]] && exit "$status"
    exit 1
fi
echo "== no crash"

# The state-file fuzzer, after the translator's: linked against the same NATCore and NATHelpers objects.
STATE_BIN=$OUT/state-fuzzer
STATE_HARNESS=$ROOT/Tests/Fuzz/StateFileFuzzer.swift
STATE_SECONDS=${FUZZ_STATE_SECONDS:-$(( DURATION / 4 > 10 ? DURATION / 4 : 10 ))}
if [[ ! -x $STATE_BIN || -n $(find "$ROOT/Sources/NATCore" "$ROOT/Sources/NATHelpers" "$STATE_HARNESS" "$ROOT/Tests/Fuzz/run-fuzz.sh" -newer "$STATE_BIN" -print -quit) ]]; then
    echo "== building the state-file fuzzer in $OUT"
    "$SWIFTC" "${FLAGS[@]}" -I "$OBJ" "$STATE_HARNESS" "$OBJ/NATCore.o" "$OBJ/NATHelpers.o" \
        -o "$STATE_BIN.tmp" 2> >(grep -v "Cannot export local symbol" >&2)
    mv "$STATE_BIN.tmp" "$STATE_BIN"
    echo "== built $STATE_BIN"
else
    echo "== $STATE_BIN is up to date"
fi
mkdir -p "$OUT/state-corpus"
rm -rf "$OUT/state-seeds"
FUZZ_WRITE_SEEDS="$OUT/state-seeds" "$STATE_BIN" >/dev/null 2>&1 || true
[[ -n $(ls -A "$OUT/state-seeds" 2>/dev/null) ]] || { echo "state seed corpus was not written" >&2; exit 2; }
STATE_START=$OUT/.state-start-stamp
touch "$STATE_START"
STATE_LOG=$OUT/state-fuzz.log
echo "== fuzzing the state file for ${STATE_SECONDS}s; log: $STATE_LOG"
set +e
"$STATE_BIN" -max_len=8192 -max_total_time="$STATE_SECONDS" -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/state-" ${EXTRA[@]+"${EXTRA[@]}"} \
    "$OUT/state-corpus" "$OUT/state-seeds" 2>&1 | tee "$STATE_LOG" | grep -E "^#[0-9]+.*(pulse|DONE)|ERROR|INVARIANT|Test unit written"
status=${PIPESTATUS[0]}
set -e
echo "== state-file summary"
grep -E "^#[0-9]+" "$STATE_LOG" | tail -n 1 || true
grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$STATE_LOG" || true
grep -A2 "^state-fuzz stats" "$STATE_LOG" || true
crashes=$(find "$OUT/artifacts" -type f -name 'state-*' -newer "$STATE_START" ! -name 'state-slow-unit-*' 2>/dev/null | sort)
if [[ $status -ne 0 || -n $crashes ]]; then
    echo "== STATE-FILE FUZZER FAILURE (libFuzzer exit status $status)"
    grep -E "INVARIANT BROKEN|ERROR: |Fatal error|SUMMARY" "$STATE_LOG" | head -n 20 || true
    for c in $crashes; do echo "reproducer: $c"; done
    echo "reproduce: $STATE_BIN <reproducer>"
    [[ $status -ne 0 ]] && exit "$status"
    exit 1
fi
echo "== no crash in the state-file fuzzer"

# The capture fuzzer, after the translator's: PacketCapture compiled as a module the same way.
CAPTURE_BIN=$OUT/capture-fuzzer
CAPTURE_HARNESS=$ROOT/Tests/Fuzz/CaptureFuzzer.swift
CAPTURE_SECONDS=${FUZZ_CAPTURE_SECONDS:-$(( DURATION / 4 > 10 ? DURATION / 4 : 10 ))}
if [[ ! -x $CAPTURE_BIN || -n $(find "$ROOT/Sources/PacketCapture" "$CAPTURE_HARNESS" "$ROOT/Tests/Fuzz/run-fuzz.sh" -newer "$CAPTURE_BIN" -print -quit) ]]; then
    echo "== building the capture fuzzer (PacketCapture, harness) in $OUT"
    "$SWIFTC" "${FLAGS[@]}" -wmo -module-name PacketCapture \
        -emit-module -emit-module-path "$OBJ/PacketCapture.swiftmodule" \
        -c "$ROOT"/Sources/PacketCapture/*.swift -o "$OBJ/PacketCapture.o"
    "$SWIFTC" "${FLAGS[@]}" -I "$OBJ" "$CAPTURE_HARNESS" "$OBJ/PacketCapture.o" \
        -o "$CAPTURE_BIN.tmp" 2> >(grep -v "Cannot export local symbol" >&2)
    mv "$CAPTURE_BIN.tmp" "$CAPTURE_BIN"
    echo "== built $CAPTURE_BIN"
else
    echo "== $CAPTURE_BIN is up to date"
fi
mkdir -p "$OUT/capture-corpus"
rm -rf "$OUT/capture-seeds"
FUZZ_WRITE_SEEDS="$OUT/capture-seeds" "$CAPTURE_BIN" >/dev/null 2>&1 || true
[[ -n $(ls -A "$OUT/capture-seeds" 2>/dev/null) ]] || { echo "capture seed corpus was not written" >&2; exit 2; }
cat >"$OUT/capture.dict" <<'CAPTURE_DICT'
"\xd4\xc3\xb2\xa1"
"\xa1\xb2\xc3\xd4"
"\x4d\x3c\xb2\xa1"
"\xa1\xb2\x3c\x4d"
"\x0a\x0d\x0d\x0a"
"\x4d\x3c\x2b\x1a"
"\x1a\x2b\x3c\x4d"
"\x01\x00\x00\x00"
"\x03\x00\x00\x00"
"\x06\x00\x00\x00"
"\x02\x00\x04\x00"
"\x09\x00\x01\x00"
"\x08\x00"
"\x81\x00"
"\x14\x01"
"\x71\x00"
"\x65\x00"
"\xe4\x00"
"\xff\xff\xff\xff"
CAPTURE_DICT
CAPTURE_START=$OUT/.capture-start-stamp
touch "$CAPTURE_START"
CAPTURE_LOG=$OUT/capture-fuzz.log
echo "== fuzzing the capture reader for ${CAPTURE_SECONDS}s; log: $CAPTURE_LOG"
set +e
"$CAPTURE_BIN" -max_len=4096 -max_total_time="$CAPTURE_SECONDS" -timeout=30 -print_final_stats=1 \
    -dict="$OUT/capture.dict" -artifact_prefix="$OUT/artifacts/capture-" ${EXTRA[@]+"${EXTRA[@]}"} \
    "$OUT/capture-corpus" "$OUT/capture-seeds" 2>&1 | tee "$CAPTURE_LOG" | grep -E "^#[0-9]+.*(pulse|DONE)|ERROR|INVARIANT|Test unit written"
status=${PIPESTATUS[0]}
set -e
echo "== capture summary"
grep -E "^#[0-9]+" "$CAPTURE_LOG" | tail -n 1 || true
grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$CAPTURE_LOG" || true
crashes=$(find "$OUT/artifacts" -type f -name 'capture-*' -newer "$CAPTURE_START" ! -name 'capture-slow-unit-*' 2>/dev/null | sort)
if [[ $status -ne 0 || -n $crashes ]]; then
    echo "== CAPTURE FUZZER FAILURE (libFuzzer exit status $status)"
    grep -E "INVARIANT BROKEN|ERROR: |Fatal error|SUMMARY" "$CAPTURE_LOG" | head -n 20 || true
    for c in $crashes; do echo "reproducer: $c"; done
    echo "reproduce: $CAPTURE_BIN <reproducer>"
    [[ $status -ne 0 ]] && exit "$status"
    exit 1
fi
echo "== no crash in the capture fuzzer"

# The HA sync channel fuzzer (Tests/Fuzz/SyncFuzzer.swift), after the capture fuzzer: the
# import-free files of Sources/Masqd/Sync/ compiled with the harness into one module.
SYNC_BIN=$OUT/sync-fuzzer
SYNC_HARNESS=$ROOT/Tests/Fuzz/SyncFuzzer.swift
SYNC_SOURCES=("$ROOT"/Sources/Masqd/Sync/{SHA256,HMACSHA256,SyncMessage,SyncReceiveWindow,SyncSnapshotAssembly,SyncResendQueue,SyncIncrement,SyncIncrementQueue,SyncIncrementInbox,SyncCounters,SyncSession}.swift)
SYNC_SECONDS=${FUZZ_SYNC_SECONDS:-$(( DURATION / 4 > 10 ? DURATION / 4 : 10 ))}
if [[ ! -x $SYNC_BIN || -n $(find "${SYNC_SOURCES[@]}" "$SYNC_HARNESS" "$ROOT/Tests/Fuzz/run-fuzz.sh" -newer "$SYNC_BIN" -print -quit) ]]; then
    echo "== building the sync fuzzer (Sources/Masqd/Sync, harness) in $OUT"
    # In $OBJ: swiftc leaves the executable's module files in the current directory.
    (cd "$OBJ" && "$SWIFTC" "${FLAGS[@]}" -wmo -module-name SyncFuzzer "$SYNC_HARNESS" "${SYNC_SOURCES[@]}" \
        -o "$SYNC_BIN.tmp" 2> >(grep -v "Cannot export local symbol" >&2))
    mv "$SYNC_BIN.tmp" "$SYNC_BIN"
    echo "== built $SYNC_BIN"
else
    echo "== $SYNC_BIN is up to date"
fi
mkdir -p "$OUT/sync-corpus"
rm -rf "$OUT/sync-seeds"
FUZZ_WRITE_SEEDS="$OUT/sync-seeds" "$SYNC_BIN" >/dev/null 2>&1 || true
[[ -n $(ls -A "$OUT/sync-seeds" 2>/dev/null) ]] || { echo "sync seed corpus was not written" >&2; exit 2; }
SYNC_START=$OUT/.sync-start-stamp
touch "$SYNC_START"
SYNC_LOG=$OUT/sync-fuzz.log
echo "== fuzzing the sync channel for ${SYNC_SECONDS}s; log: $SYNC_LOG"
set +e
"$SYNC_BIN" -max_len=8192 -max_total_time="$SYNC_SECONDS" -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/sync-" ${EXTRA[@]+"${EXTRA[@]}"} \
    "$OUT/sync-corpus" "$OUT/sync-seeds" 2>&1 | tee "$SYNC_LOG" | grep -E "^#[0-9]+.*(pulse|DONE)|ERROR|INVARIANT|Test unit written"
status=${PIPESTATUS[0]}
set -e
echo "== sync summary"
grep -E "^#[0-9]+" "$SYNC_LOG" | tail -n 1 || true
crashes=$(find "$OUT/artifacts" -type f -name 'sync-*' -newer "$SYNC_START" ! -name 'sync-slow-unit-*' 2>/dev/null | sort)
if [[ $status -ne 0 || -n $crashes ]]; then
    echo "== SYNC FUZZER FAILURE (libFuzzer exit status $status)"
    grep -E "INVARIANT BROKEN|ERROR: |Fatal error|SUMMARY" "$SYNC_LOG" | head -n 20 || true
    for c in $crashes; do echo "reproducer: $c"; done
    echo "reproduce: $SYNC_BIN <reproducer>"
    [[ $status -ne 0 ]] && exit "$status"
    exit 1
fi
echo "== no crash in the sync fuzzer"
