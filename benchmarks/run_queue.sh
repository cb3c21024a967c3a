#!/usr/bin/env bash
# Run quality benchmarks one after another (never two at once on 2 cores). Each line of the queue file is the
# argument list of benchmarks/quality.py. Touch $PAUSE to hold
# the queue between runs (e.g. while the test suite runs).
#   bash benchmarks/run_queue.sh benchmarks/queues/screen.txt
set -uo pipefail
cd "$(dirname "$0")/.."
QUEUE=$1
PAUSE=${PAUSE:-/tmp/acgan-bench.pause}
while IFS= read -r line; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  while [[ -e "$PAUSE" ]]; do sleep 5; done
  echo "=== $(date +%T) quality.py $line"
  .venv/bin/python benchmarks/quality.py $line
done < "$QUEUE"
echo "=== $(date +%T) queue done"
