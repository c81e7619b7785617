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
# Last, the HA sync channel fuzzer (Tests/Fuzz/SyncFuzzer.swift, with Sources/Masqd/Sync/,
# linked against CounterSet and NATCore):
# a quarter of SECONDS, at least 10 s (FUZZ_SYNC_SECONDS), corpus sync-corpus/, crashes
# artifacts/sync-*, log sync-fuzz.log. Reproduce: .build-fuzz/sync-fuzzer CRASH-FILE
set -euo pipefail

DURATION=${1:-60}
JOBS=${2:-1}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${FUZZ_OUT:-$ROOT/.build-fuzz}
OBJ=$OUT/obj
SWIFTC=${SWIFTC:-swiftc}
SCRIPT=$ROOT/Tests/Fuzz/run-fuzz.sh
CHECK=$ROOT/Tests/Fuzz/FuzzCheck.swift   # say and check, linked into every harness
FLAGS=(-O -g -sanitize=fuzzer,address -parse-as-library -swift-version 6)
QUARTER=$(( DURATION / 4 > 10 ? DURATION / 4 : 10 ))
SYNC_SOURCES=("$ROOT"/Sources/Masqd/Sync/{SHA256,HMACSHA256,SyncMessage,SyncReceiveWindow,SyncSnapshotAssembly,SyncResendQueue,SyncIncrement,SyncHelperState,SyncIncrementQueue,SyncIncrementInbox,SyncCounters,SyncSession}.swift)
# shellcheck disable=SC2206
EXTRA=(${FUZZ_ARGS:-})

mkdir -p "$OBJ" "$OUT/corpus" "$OUT/artifacts"

# Links the harness against objects built from whole modules (swiftc's executable module
# files land in the current directory: in $OBJ).
link() { # OUTPUT HARNESS [SWIFTC ARGUMENTS...]
    local output=$1 harness=$2
    shift 2
    (cd "$OBJ" && "$SWIFTC" "${FLAGS[@]}" "$@" -I "$OBJ" "$harness" "$CHECK" -o "$output.tmp" 2> >(grep -v "Cannot export local symbol" >&2))
    mv "$output.tmp" "$output"
}

module() { # NAME SOURCES...
    local name=$1
    shift
    "$SWIFTC" "${FLAGS[@]}" -wmo -module-name "$name" -I "$OBJ" \
        -emit-module -emit-module-path "$OBJ/$name.swiftmodule" -c "$@" -o "$OBJ/$name.o"
}

build_translator() {
    echo "== building the fuzzer (CounterSet, NATCore, NATHelpers, harness) in $OUT"
    module CounterSet "$ROOT"/Sources/CounterSet/*.swift
    module NATCore "$ROOT"/Sources/NATCore/*.swift
    local defines=()
    # The IRC helper is work in progress: include it only if NATHelpers compiles with it.
    if module NATHelpers "$ROOT"/Sources/NATHelpers/*.swift 2>"$OBJ/helpers-with-irc.log"; then
        if [[ -f $ROOT/Sources/NATHelpers/IRCHelper.swift ]]; then defines+=(-D FUZZ_IRC); fi
    else
        echo "== NATHelpers does not compile with the IRC files (see $OBJ/helpers-with-irc.log): fuzzing without IRC"
        local files=()
        for f in "$ROOT"/Sources/NATHelpers/*.swift; do
            case $(basename "$f") in IRC*) ;; *) files+=("$f") ;; esac
        done
        module NATHelpers "${files[@]}"
    fi
    link "$1" "$2" ${defines[@]+"${defines[@]}"} "$OBJ/CounterSet.o" "$OBJ/NATCore.o" "$OBJ/NATHelpers.o"
    echo "== built $1 ${defines[*]+(${defines[*]})}"
}

# After the translator's: linked against the same NATCore and NATHelpers objects.
build_state() {
    echo "== building the state-file fuzzer in $OUT"
    link "$1" "$2" "$OBJ/CounterSet.o" "$OBJ/NATCore.o" "$OBJ/NATHelpers.o"
    echo "== built $1"
}

build_capture() {
    echo "== building the capture fuzzer (PacketCapture, harness) in $OUT"
    module PacketCapture "$ROOT"/Sources/PacketCapture/*.swift
    link "$1" "$2" "$OBJ/PacketCapture.o"
    echo "== built $1"
}

# The files of Sources/Masqd/Sync/ that need no socket compiled with the harness into one
# module, linked against the translator's CounterSet and NATCore objects (built before it).
build_sync() {
    echo "== building the sync fuzzer (Sources/Masqd/Sync, harness) in $OUT"
    link "$1" "$2" -wmo -module-name SyncFuzzer "${SYNC_SOURCES[@]}" "$OBJ/CounterSet.o" "$OBJ/NATCore.o"
    echo "== built $1"
}

# Builds (when HARNESS, a SOURCE or this script changed) and runs one fuzzer for SECONDS:
# binary NAME-fuzzer, seeds written by the harness (FUZZ_WRITE_SEEDS), corpus, log and crash
# artifacts named by NAME (the translator's unprefixed: corpus/, fuzz.log, artifacts/*).
# Exits with the reproducer printed when it found anything.
fuzz() { # NAME LABEL WHAT SECONDS MAX_LEN DICT HARNESS SOURCES...
    local name=$1 label=$2 what=$3 seconds=$4 max_len=$5 dict=$6 harness=$ROOT/Tests/Fuzz/$7
    shift 7
    local bin=$OUT/$name-fuzzer prefix=$name-
    [[ $name == translator ]] && prefix=
    if [[ ! -x $bin || -n $(find "$@" "$harness" "$CHECK" "$SCRIPT" -newer "$bin" -print -quit) ]]; then
        "build_$name" "$bin" "$harness"
    else
        echo "== $bin is up to date"
    fi
    mkdir -p "$OUT/${prefix}corpus"
    rm -rf "$OUT/${prefix}seeds"
    SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no} FUZZ_WRITE_SEEDS="$OUT/${prefix}seeds" "$bin" >/dev/null 2>&1 || true
    [[ -n $(ls -A "$OUT/${prefix}seeds" 2>/dev/null) ]] || { echo "$name seed corpus was not written" >&2; exit 2; }
    local args=(-max_len="$max_len" -max_total_time="$seconds" -timeout=30 -print_final_stats=1)
    [[ -n $dict ]] && args+=(-dict="$OUT/$dict")
    args+=(-artifact_prefix="$OUT/artifacts/$prefix" ${EXTRA[@]+"${EXTRA[@]}"})

    cd "$OUT"
    export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
    export FUZZ_STATS=1
    local start=$OUT/.${prefix}start-stamp log=$OUT/${prefix}fuzz.log status=0
    # The translator's live output shows its history directories and its stats too.
    local shown="^#[0-9]+.*(pulse|DONE)|ERROR|INVARIANT|Test unit written" stats=$name-fuzz stats_lines=2 jobs= replay=
    if [[ $name == translator ]]; then
        shown+="|history|^masqd-fuzz stats|^  (verdicts|drops|fragments|helpers):"
        stats=masqd-fuzz stats_lines=5 jobs=" with $JOBS job(s)" replay="   (or replay the history directory, in order, as printed above)"
    fi
    touch "$start"
    echo "== fuzzing ${what:+$what }for ${seconds}s$jobs; log: $log"
    if [[ $name == translator && $JOBS -gt 1 ]]; then
        "$bin" "${args[@]}" -jobs="$JOBS" -workers="$JOBS" "$OUT/corpus" "$OUT/seeds" >"$log" 2>&1 || status=$?
        cat "$OUT"/fuzz-*.log >>"$log" 2>/dev/null || true
    else
        set +e
        "$bin" "${args[@]}" "$OUT/${prefix}corpus" "$OUT/${prefix}seeds" 2>&1 | tee "$log" | grep -E "$shown"
        status=${PIPESTATUS[0]}
        set -e
    fi

    echo "== ${label}summary"
    grep -E "^#[0-9]+" "$log" | tail -n 1 || true
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$log" || true
    grep -A"$stats_lines" "^$stats stats" "$log" || true
    # slow-unit-* files only report inputs slower than 10 s (a loaded machine makes those); crashes,
    # timeouts (-timeout=30), leaks and out-of-memory fail the run.
    local crashes
    crashes=$(find "$OUT/artifacts" -type f -name "${prefix}*" -newer "$start" ! -name "${prefix}slow-unit-*" 2>/dev/null | sort)
    if [[ $status -ne 0 || -n $crashes ]]; then
        echo "== ${label^^}${label:+FUZZER }FAILURE (libFuzzer exit status $status)"
        grep -E "INVARIANT BROKEN|ERROR: |Fatal error|SUMMARY" "$log" | head -n 20 || true
        for c in $crashes; do echo "reproducer: $c"; done
        grep -hE "fuzz-history-[0-9]+/" "$log" | head -n 5 || true
        echo "reproduce: $bin <reproducer>$replay"
        [[ $status -ne 0 ]] && exit "$status"
        exit 1
    fi
    echo "== no crash${label:+ in the ${label}fuzzer}"
}

# Dictionaries: strings the harnesses' inputs are made of.
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


fuzz translator "" "" "$DURATION" 2048 fuzz.dict TranslatorFuzzer.swift "$ROOT/Sources/CounterSet" "$ROOT/Sources/NATCore" "$ROOT/Sources/NATHelpers"
fuzz state "state-file " "the state file" "${FUZZ_STATE_SECONDS:-$QUARTER}" 8192 "" StateFileFuzzer.swift \
    "$ROOT/Sources/CounterSet" "$ROOT/Sources/NATCore" "$ROOT/Sources/NATHelpers"
fuzz capture "capture " "the capture reader" "${FUZZ_CAPTURE_SECONDS:-$QUARTER}" 4096 capture.dict CaptureFuzzer.swift \
    "$ROOT/Sources/PacketCapture"
fuzz sync "sync " "the sync channel" "${FUZZ_SYNC_SECONDS:-$QUARTER}" 8192 "" SyncFuzzer.swift "${SYNC_SOURCES[@]}" \
    "$ROOT/Sources/CounterSet" "$ROOT/Sources/NATCore"
