#!/bin/bash
# One call on a machine that has had the two transfer calls (the payload's first part, the x264
# clip, the real media, the tails): install, the NVDEC tests, then the whole benchmark with
# /proc sampled beside it (threads.py), and where the host's cores went during each burst.
cd "$(dirname "$0")/../../.."
cp .gpu/p2/* .gpu/p3/* /root/stage/ && cp .gpu/clipb/*.mp4 /root/clip/
bash .gpu/bin/install.sh > /tmp/install.log 2>&1; echo INSTALL_RC $?; tail -3 /tmp/install.log
source .gpu/bin/env.sh
python3 -c "import pybase64" 2>/dev/null || python3 -m zipfile -e .gpu/bin/wheels/pybase64-*.whl /root/site
export PYTHONPATH=/root/site:$PWD
mkdir -p /work/shared && ln -sfn /root/media /work/shared/media
t0=$(date +%s)
timeout 120 python3 -m pytest tests/ingest/test_nvdec.py -q -rs -p no:cacheprovider > $OUT/nvdec_tests.log 2>&1; echo NVDEC_TESTS_RC $? $(( $(date +%s)-t0 ))s
tail -2 $OUT/nvdec_tests.log
python3 -m tests.bench.gpu_bench.threads --out $OUT/threads.jsonl --seconds 560 --interval 0.5 &
SAMPLER=$!
python3 tests/bench/gpu.py run --quant none --which ours,vllm,engine --clips default,gop1s \
  --clip /root/clip/drv_dusk_1080p30_10s.mp4 --tails /root/clip/tails.npz \
  --clip-gop1s /root/clip/drv_dusk_1080p30_10s_gop1s.mp4 --tails-gop1s /root/clip/tails_gop1s.npz \
  --deadline-at $(( $(date +%s) + ${DEADLINE_S:-500} )) > $OUT/run.log 2>&1; echo RUN_RC $?
kill $SAMPLER 2>/dev/null
python3 - <<'PY' > $OUT/bursts.json
import json, os, subprocess
res = json.load(open(os.environ["OUT"] + "/results.json"))
out = {}
for key, run in res.get("runs", {}).items():
    for phase, v in (run.get("phases") or run).items() if isinstance(run, dict) else []:
        if isinstance(v, dict) and "epoch_start" in v:
            w = subprocess.run(["python3", "-m", "tests.bench.gpu_bench.threads", "--window",
                                str(v["epoch_start"]), str(v["epoch_end"])],
                               stdin=open(os.environ["OUT"] + "/threads.jsonl"),
                               capture_output=True, text=True).stdout
            out[f"{key}/{phase}"] = json.loads(w) if w else None
print(json.dumps(out, indent=1))
PY
grep -v '^\[' $OUT/run.log | tail -22
head -c 2500 $OUT/bursts.json
