#!/bin/bash
# Third call on a machine that has had the two transfer calls (call_mix.sh's first lines): install, the NVDEC
# tests (decode processes' among them), then our server alone with decode processes at each of AB_VALUES
# (video_decode_processes; 0 = the server's own threads): the single 1080p request and the burst of 32, both clips.
# Installs py-spy from the tails for call_final.sh.
cd "$(dirname "$0")/../../.."
cp .gpu/p2/* .gpu/p3/* /root/stage/ && cp .gpu/clipb/*.mp4 /root/clip/
bash .gpu/bin/install.sh > /tmp/install.log 2>&1; echo INSTALL_RC $?; tail -3 /tmp/install.log
source .gpu/bin/env.sh
python3 -c "import pybase64" 2>/dev/null || python3 -m zipfile -e .gpu/bin/wheels/pybase64-*.whl /root/site
command -v py-spy >/dev/null || (python3 -m zipfile -e /root/clip/py_spy-*.whl /root/pyspy && \
  install -m 755 /root/pyspy/py_spy-*.data/scripts/py-spy /usr/local/bin/py-spy); py-spy --version
export PYTHONPATH=/root/site:$PWD
mkdir -p /work/shared && ln -sfn /root/media /work/shared/media
t0=$(date +%s)
timeout 150 python3 -m pytest tests/ingest/test_nvdec.py tests/ingest/test_gpu_frames.py tests/ingest/test_procpool.py \
  -q -rs -p no:cacheprovider > $OUT/nvdec_tests.log 2>&1; echo NVDEC_TESTS_RC $? $(( $(date +%s)-t0 ))s
tail -3 $OUT/nvdec_tests.log
# AB_VALUES=none: no A/B (call_final.sh follows in the same call)
[ "${AB_VALUES:-}" = none ] || \
  AB_KEY=COSMOS_VIDEO_DECODE_PROCESSES AB_VALUES=${AB_VALUES:-"0 2"} bash tests/bench/gpu_bench/call_ab.sh
