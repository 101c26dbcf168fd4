#!/bin/bash
# After call_final.sh, on the same machine: our server alone, one setting at two values (AB_KEY, AB_VALUES;
# by default the CPU cores lent to NVDEC's queue, none against the budget call_mix.sh picked), the
# single 1080p request and the burst of 32 for both clips.
cd "$(dirname "$0")/../../.."
source .gpu/bin/env.sh
export PYTHONPATH=/root/site:$PWD
KEY=${AB_KEY:-COSMOS_VIDEO_NVDEC_CPU_CORES}
VALUES=${AB_VALUES:-"0 $(cut -d= -f2 /root/mix_pick.env 2>/dev/null || echo 8)"}
for v in $VALUES; do
  python3 tests/bench/gpu.py run --quant none --which ours --clips default,gop1s \
    --phases warmup,video_81920,conc32 --label _ab$v --ours-env $KEY=$v \
    --clip /root/clip/drv_dusk_1080p30_10s.mp4 --tails /root/clip/tails.npz \
    --clip-gop1s /root/clip/drv_dusk_1080p30_10s_gop1s.mp4 --tails-gop1s /root/clip/tails_gop1s.npz \
    --out $OUT/ab_$v.json --out-logs "" --deadline-at $(( $(date +%s) + ${AB_S:-250} )) \
    > $OUT/ab_$v.log 2>&1; echo "AB $KEY=$v RC $?"
  grep -E "conc32|video_81920" $OUT/ab_$v.log | cut -c1-260
done
