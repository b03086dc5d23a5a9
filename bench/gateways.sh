#!/usr/bin/env bash
# Our router in the public federation-gateway benchmark, beside Apollo Gateway and Hive Gateway.
#
# Runs the shared harness (run_bench.sh in $PEK_BENCH_GATEWAYS, default ../shared/bench/gateways
# beside this repository) with:
#   apollo-gateway hive-gateway hive-gateway-dedup   (the harness's built-ins)
#   pek           our router as deployed: inbound dedup and fetch dedup on
#   pek-nodedup   our router with inbound dedup off (PEK_DEDUPLICATE=false; fetch dedup stays on,
#                 as in hive-gateway)
# then prints the BENCH lines and, per round, the two ratios the project tracks:
#   pek-nodedup / apollo-gateway      (target >= 1.5, goal 2)
#   pek / hive-gateway-dedup          (target >= 0.5, goal 1)
# Extra arguments are passed to the harness as further gateways (NAME=COMMAND or built-in names).
# The harness's knobs (DURATION, WARMUP, ROUNDS, BASELINE, PIN, ...) pass through the environment;
# BENCH_OTHERS replaces the list of built-in gateways compared against.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="${PEK_BENCH_GATEWAYS:-$ROOT/../shared/bench/gateways}"
if [[ -f "$BENCH_DIR" ]]; then
  RUN="$BENCH_DIR"
else
  RUN="$BENCH_DIR/run_bench.sh"
fi
if [[ ! -f "$RUN" ]]; then
  echo "bench/gateways.sh: no run_bench.sh at $RUN (set PEK_BENCH_GATEWAYS to the benchmark folder)" >&2
  exit 2
fi
PEK="${PEK_BIN:-$ROOT/.venv/bin/pek}"
if [[ ! -x "$PEK" ]]; then
  echo "bench/gateways.sh: $PEK is not executable (install the project: pip install -e .)" >&2
  exit 2
fi
read -r -a OTHERS <<< "${BENCH_OTHERS:-apollo-gateway hive-gateway hive-gateway-dedup}"
ROUTER="$PEK router --supergraph {supergraph} --host 127.0.0.1 --port {port}"

LOG="$(mktemp "${TMPDIR:-/tmp}/pek-bench.XXXXXX")"
trap 'rm -f "$LOG"' EXIT
bash "$RUN" "${OTHERS[@]}" \
  "pek=$ROUTER" \
  "pek-nodedup=env PEK_DEDUPLICATE=false $ROUTER" \
  "$@" 2>&1 | tee "$LOG" >&2
status="${PIPESTATUS[0]}"

echo
grep '^BENCH ' "$LOG"
# One ratio per round: the n-th BENCH line of each gateway belongs to round n.
awk '
  /^BENCH / {
    name = ""; rps = ""
    for (i = 2; i <= NF; i++) {
      split($i, kv, "=")
      if (kv[1] == "gateway") name = kv[2]
      else if (kv[1] == "rps") rps = kv[2]
    }
    n = ++count[name]; value[name, n] = rps
    if (n > rounds) rounds = n
  }
  function ratio(a, b, n) {
    if (!((a, n) in value) || !((b, n) in value)) return "n/a"
    if (value[b, n] + 0 == 0) return "n/a (" b " rps=0)"
    return sprintf("%.2f", value[a, n] / value[b, n])
  }
  END {
    for (n = 1; n <= rounds; n++) {
      printf "RATIO round=%d pek-nodedup/apollo-gateway=%s (target 1.5, goal 2)\n", n, ratio("pek-nodedup", "apollo-gateway", n)
      printf "RATIO round=%d pek/hive-gateway-dedup=%s (target 0.5, goal 1)\n", n, ratio("pek", "hive-gateway-dedup", n)
    }
  }' "$LOG"
exit "$status"
