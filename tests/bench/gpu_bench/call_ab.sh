#!/bin/bash
# After call_final.sh, on the same machine: our server alone, CUDA's blocking sync off and on
# (video_nvdec_blocking_sync), the single 1080p request and the burst of 32 for both clips.
cd "$(dirname "$0")/../../.."
source .gpu/bin/env.sh
export PYTHONPATH=/root/site:$PWD
for bs in 0 1; do
  python3 tests/bench/gpu.py run --quant none --which ours --clips default,gop1s \
    --phases warmup,video_81920,conc32 --label _bs$bs --ours-env COSMOS_VIDEO_NVDEC_BLOCKING_SYNC=$bs \
    --clip /root/clip/drv_dusk_1080p30_10s.mp4 --tails /root/clip/tails.npz \
    --clip-gop1s /root/clip/drv_dusk_1080p30_10s_gop1s.mp4 --tails-gop1s /root/clip/tails_gop1s.npz \
    --out $OUT/ab_$bs.json --out-logs "" --deadline-at $(( $(date +%s) + ${AB_S:-250} )) \
    > $OUT/ab_$bs.log 2>&1; echo "AB $bs RC $?"
  grep -E "conc32|video_81920" $OUT/ab_$bs.log | cut -c1-260
done
