# Sourced by the third device call's scripts (call_mix.sh, call_procs.sh, call_ours.sh), from the repository root, on
# a machine that has had the two transfer calls: the payload's last parts and the camera clip staged, vLLM and our
# packages installed, py-spy from the tails, the environment set, ../shared/media where the tests look for it.
cp .gpu/p2/* .gpu/p3/* /root/stage/ && cp .gpu/clipb/*.mp4 /root/clip/
bash .gpu/bin/install.sh > /tmp/install.log 2>&1; echo INSTALL_RC $?; tail -3 /tmp/install.log
source .gpu/bin/env.sh
python3 -c "import pybase64" 2>/dev/null || python3 -m zipfile -e .gpu/bin/wheels/pybase64-*.whl /root/site
command -v py-spy >/dev/null || (python3 -m zipfile -e /root/clip/py_spy-*.whl /root/pyspy && \
  install -m 755 /root/pyspy/py_spy-*.data/scripts/py-spy /usr/local/bin/py-spy); py-spy --version
export PYTHONPATH=/root/site:$PWD
mkdir -p /work/shared && ln -sfn /root/media /work/shared/media
