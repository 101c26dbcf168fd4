#!/bin/bash
# The whole benchmark, on a machine that has had call_mix.sh (installed, and the CPU-core budget its
# bursts picked in /root/mix_pick.env, passed to our server), with /proc sampled beside it
# (threads.py), where the host's cores went during each burst, and py-spy's samples of our server's
# threads through each burst (BENCH_PYSPY_DIR).
cd "$(dirname "$0")/../../.."
source .gpu/bin/env.sh
export PYTHONPATH=/root/site:$PWD BENCH_PYSPY_DIR=$OUT
PICK=$(cat /root/mix_pick.env 2>/dev/null); echo "PICK $PICK"
python3 -m tests.bench.gpu_bench.threads --out $OUT/threads.jsonl --seconds 560 --interval 0.5 &
SAMPLER=$!
python3 tests/bench/gpu.py run --quant none --which ours,vllm,engine --clips default,gop1s ${PICK:+--ours-env $PICK} \
  --clip /root/clip/drv_dusk_1080p30_10s.mp4 --tails /root/clip/tails.npz \
  --clip-gop1s /root/clip/drv_dusk_1080p30_10s_gop1s.mp4 --tails-gop1s /root/clip/tails_gop1s.npz \
  --out-logs "" --deadline-at $(( $(date +%s) + ${DEADLINE_S:-500} )) > $OUT/run.log 2>&1; echo RUN_RC $?
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
