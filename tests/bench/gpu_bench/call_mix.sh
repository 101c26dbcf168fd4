#!/bin/bash
# Third call on a machine that has had the two transfer calls (call 1: the payload's first part, the x264
# clip, the real media; call 2: the tails): install, the NVDEC tests, then the mixed-decoder burst
# (gpu_bench/mix.py: NVDEC alone against NVDEC with CPU cores lent to it, GPU idle and busy), which
# writes the best budget to /root/mix_pick.env for call_final.sh.
cd "$(dirname "$0")/../../.."
source tests/bench/gpu_bench/install_call.sh
t0=$(date +%s)
timeout 120 python3 -m pytest tests/ingest/test_nvdec.py tests/ingest/test_placement.py tests/ingest/test_gpu_frames.py -q -rs -p no:cacheprovider \
  > $OUT/nvdec_tests.log 2>&1; echo NVDEC_TESTS_RC $? $(( $(date +%s)-t0 ))s
tail -2 $OUT/nvdec_tests.log
timeout ${MIX_S:-240} python3 -m tests.bench.gpu_bench.mix --clip /root/clip/drv_dusk_1080p30_10s.mp4 \
  --tails /root/clip/tails.npz --clip-gop1s /root/clip/drv_dusk_1080p30_10s_gop1s.mp4 \
  --tails-gop1s /root/clip/tails_gop1s.npz --pick /root/mix_pick.env ${MIX_ARGS:-} > $OUT/mix.jsonl 2> $OUT/mix.err
echo MIX_RC $?; tail -3 $OUT/mix.err; cat $OUT/mix.jsonl | cut -c1-400; cat /root/mix_pick.env
