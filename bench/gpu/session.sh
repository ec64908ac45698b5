#!/usr/bin/env bash
# The GPU-only work of issue 7, for a session lent an H100/H200 (see bench/gpu/README.md).
#
#   bash bench/gpu/session.sh setup   # call 1, carry .whl: install the wheels into .site, smoke-test
#   bash bench/gpu/session.sh run     # call 2, carry .data: the paper's grid and the strong recipe
#
# `run` starts the grid (several points at a time) and the strong recipe on both protocols side by
# side on the one GPU, each bounded so that the call ends within its 10 minutes, and copies the
# tables and logs to $OUT. Environment knobs (defaults in brackets): ACCELERATOR [gpu],
# GRID_EPOCHS [8, the protocol's], GRID_WORKERS [4], GRID_STOP_S [360: no grid row starts later],
# GRID_ROWS [all 19; ids from bench/paper_grid.py --list], GRID_PRECISION [auto], STRONG_EPOCHS [60], STRONG_MAX_TIME [00:00:08:00],
# STRONG_PRECISION [auto], DATA [.data/fer2013_images.u8.xz].
# tests/bench/test_gpu_session.py runs `run` on CPU with tiny data and one grid point.
# Runs (MLflow store, checkpoints) land in the working folder, as with ferlight.fit.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export PYTHONPATH="$ROOT/.site:$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-results/gpu}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
ACCELERATOR="${ACCELERATOR:-gpu}"
DATA="${DATA:-$ROOT/.data/fer2013_images.u8.xz}"

case "${1:-}" in
setup)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$ROOT/.site" "$ROOT"/.whl/*.whl || exit 1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$PY" - <<'PY' || exit 1
import sys, tempfile, subprocess
import torch, lightning, mlflow, optuna, jsonargparse
from ferlight.testing.tiny_data import write_tiny_fer2013
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "lightning", lightning.__version__,
      "mlflow", mlflow.__version__, "optuna", optuna.__version__)
with tempfile.TemporaryDirectory() as tmp:
    csv = write_tiny_fer2013(f"{tmp}/fer2013.csv")
    subprocess.run([sys.executable, "-m", "ferlight.fit", "--arch", "fervgg", "--data", str(csv), "--epochs", "2",
                    "--accelerator", "gpu", "--precision", "bf16-mixed", "--augment", "strong", "--crop-size", "40",
                    "--tta", "tencrop", "--progress-bar", "false", "--tracking-uri", f"sqlite:///{tmp}/mlflow.db",
                    "--checkpoint-dir", f"{tmp}/checkpoints"], check=True, cwd=tmp)
PY
  ;;
run)
  [ -f "$DATA" ] || { echo "error: $DATA not found (carry .data, see bench/gpu/README.md)" >&2; exit 2; }
  "$PY" -c "from ferlight.data import load_fer2013; load_fer2013('$DATA')"  # fill the parse cache once
  "$PY" -c "from ferlight import tracking; tracking.ensure_store()"        # create the MLflow schema once
  strong() {  # the strong recipe; options after it override the file's
    "$PY" -m ferlight.fit --config "$ROOT/recipes/gpu_strong.yaml" --data "$DATA" --accelerator "$ACCELERATOR" \
      --epochs "${STRONG_EPOCHS:-60}" --max-time "${STRONG_MAX_TIME:-00:00:08:00}" --progress-bar false \
      --precision "${STRONG_PRECISION:-auto}" "$@"
  }
  strong >"$OUT/strong_standard.log" 2>&1 &
  strong --protocol paper --run-name gpu-strong-paper >"$OUT/strong_paper.log" 2>&1 &
  "$PY" "$ROOT/bench/paper_grid.py" --data "$DATA" --accelerator "$ACCELERATOR" --precision "${GRID_PRECISION:-auto}" \
    --epochs "${GRID_EPOCHS:-8}" --workers "${GRID_WORKERS:-4}" --timeout "${GRID_STOP_S:-360}" \
    ${GRID_ROWS:+--rows $GRID_ROWS} --output "$OUT/paper_grid.jsonl" --log-dir "$OUT/grid-logs" >"$OUT/grid.log" 2>&1 &
  wait
  for protocol in standard paper; do  # the per-class report of each strong run (paper layout)
    run="$(sed -n 's/^MLflow run \([0-9a-f]*\):.*/\1/p' "$OUT/strong_$protocol.log")"
    report="$(find mlruns -path "*/$run/artifacts/classification_report.txt" 2>/dev/null | head -1)"
    [ -n "$run" ] && [ -n "$report" ] && cp "$report" "$OUT/strong_${protocol}_report.txt"
  done
  grep -h "^MLflow run" "$OUT"/strong_*.log
  cat "$OUT/paper_grid.md"
  ;;
*)
  echo "usage: bash bench/gpu/session.sh setup|run" >&2
  exit 2
  ;;
esac
