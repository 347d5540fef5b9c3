#!/usr/bin/env bash
# The generator's GPU path on a lent CUDA machine: bf16 training throughput, peak memory, MFU,
# and CUDA against CPU greedy replies. Results: benchmarks/results/gpu_check.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
export RASA_TELEMETRY_ENABLED=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"${PYTHON:-.venv/bin/python}" benchmarks/gpu_check.py "$@"
