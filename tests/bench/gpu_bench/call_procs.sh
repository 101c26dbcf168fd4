#!/bin/bash
# Third call on a machine that has had the two transfer calls (call_mix.sh's first lines): install, the NVDEC
# tests (decode processes' among them), then our server alone with decode processes at each of AB_VALUES
# (video_decode_processes; 0 = the server's own threads): the single 1080p request and the burst of 32, both clips.
# Installs py-spy from the tails for call_final.sh.
cd "$(dirname "$0")/../../.."
source tests/bench/gpu_bench/install_call.sh
t0=$(date +%s)
timeout 150 python3 -m pytest tests/ingest/test_nvdec.py tests/ingest/test_gpu_frames.py tests/ingest/test_procpool.py \
  -q -rs -p no:cacheprovider > $OUT/nvdec_tests.log 2>&1; echo NVDEC_TESTS_RC $? $(( $(date +%s)-t0 ))s
tail -3 $OUT/nvdec_tests.log
# AB_VALUES=none: no A/B (call_final.sh follows in the same call)
[ "${AB_VALUES:-}" = none ] || \
  AB_KEY=COSMOS_VIDEO_DECODE_PROCESSES AB_VALUES=${AB_VALUES:-"0 2"} bash tests/bench/gpu_bench/call_ab.sh
