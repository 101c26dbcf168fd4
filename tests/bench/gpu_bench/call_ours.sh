#!/bin/bash
# Third call on a machine that has had the two transfer calls, when device time is short: install, the decode
# processes' tests on the GPU, then our server alone with its defaults: the single 1080p requests (both budgets)
# and the burst of 32, both clips.
cd "$(dirname "$0")/../../.."
source tests/bench/gpu_bench/install_call.sh
timeout 60 python3 -m pytest tests/ingest/test_procpool.py -q -rs -p no:cacheprovider > $OUT/procpool_tests.log 2>&1
echo PROCPOOL_TESTS_RC $?; tail -3 $OUT/procpool_tests.log
python3 tests/bench/gpu.py run --quant none --which ours --clips default,gop1s \
  --phases warmup,video_81920,video_default,conc32 --label _defaults \
  --clip /root/clip/drv_dusk_1080p30_10s.mp4 --tails /root/clip/tails.npz \
  --clip-gop1s /root/clip/drv_dusk_1080p30_10s_gop1s.mp4 --tails-gop1s /root/clip/tails_gop1s.npz \
  --out $OUT/ours_defaults.json --out-logs "" --deadline-at $(( $(date +%s) + ${OURS_S:-240} )) \
  > $OUT/ours_defaults.log 2>&1; echo "OURS RC $?"
grep -E "conc32|video_81920|video_default" $OUT/ours_defaults.log | cut -c1-330
