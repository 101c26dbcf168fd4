#!/bin/bash
# Call 4: the whole benchmark, our server with the settings call 3 picked.
cd "$(dirname "$0")/../../.."
source .gpu/bin/env.sh
export PYTHONPATH=/root/site:$PWD
ENVS=()
if [ -f /root/best.env ]; then while read -r kv; do [ -n "$kv" ] && ENVS+=(--ours-env "$kv"); done < /root/best.env; fi
echo "ours env: ${ENVS[*]}"
python3 tests/bench/gpu.py run --quant none --which ours,vllm,engine --clips default,gop1s \
  --clip /root/clip/drv_dusk_1080p30_10s.mp4 --tails /root/clip/tails.npz \
  --clip-gop1s /root/clip/drv_dusk_1080p30_10s_gop1s.mp4 --tails-gop1s /root/clip/tails_gop1s.npz \
  "${ENVS[@]}" --deadline-at $(( $(date +%s) + ${DEADLINE_S:-560} )) > $OUT/run.log 2>&1; echo RUN_RC $?
tail -40 $OUT/run.log
