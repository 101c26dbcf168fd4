#!/bin/bash
# Call 3 on the GPU machine: install the payload, check imports, the NVDEC tests, then the decode
# bench with the burst exploration; the pick goes to /root/best.env for call 4.
cd "$(dirname "$0")/../../.."
cp .gpu/p2/* .gpu/p3/* /root/stage/ && cp .gpu/clipb/*.mp4 /root/clip/
bash .gpu/bin/install.sh > $OUT/install.log 2>&1; echo INSTALL_RC $?
source .gpu/bin/env.sh
python3 -c "import pybase64" 2>/dev/null || python3 -m zipfile -e .gpu/bin/wheels/pybase64-*.whl /root/site
python3 -c "import pybase64; print('pybase64', pybase64.__version__)"
bash .gpu/bin/importcheck.sh > $OUT/importcheck.log 2>&1; tail -2 $OUT/importcheck.log
export PYTHONPATH=/root/site:$PWD
mkdir -p /work/shared && ln -sfn /root/media /work/shared/media
t0=$(date +%s)
timeout 240 python3 -m pytest tests/ingest/test_nvdec.py -q -rs -p no:cacheprovider > $OUT/nvdec_tests.log 2>&1; echo NVDEC_TESTS_RC $? $(( $(date +%s)-t0 ))s
tail -4 $OUT/nvdec_tests.log
t0=$(date +%s)
timeout 300 python3 tests/bench/gpu.py decode-bench --explore --env-out /root/best.env \
  --clip /root/clip/drv_dusk_1080p30_10s.mp4 --tails /root/clip/tails.npz \
  --clip-gop1s /root/clip/drv_dusk_1080p30_10s_gop1s.mp4 --tails-gop1s /root/clip/tails_gop1s.npz \
  > $OUT/decode_bench.jsonl 2> $OUT/decode_bench.err; echo DECODE_BENCH_RC $? $(( $(date +%s)-t0 ))s
cp /root/best.env $OUT/ 2>/dev/null; cat /root/best.env
tail -c 3000 $OUT/decode_bench.jsonl
