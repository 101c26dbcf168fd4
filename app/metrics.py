"""All Prometheus metrics of cosmos-serve, in base units, one histogram per pipeline stage.

Ours live in a private registry (not the process-global default) so several apps in one
process, as in tests, do not collide. `/metrics` renders it followed by the process-global
registry, where vLLM's AsyncLLM registers its own metrics (`vllm:num_requests_waiting`,
`vllm:kv_cache_usage_perc`, token counters, TTFT/TPOT histograms: what `vllm serve` and NIM
export, so dashboards and autoscalers written for them work unchanged) and prometheus_client its
`process_*` / `python_*` collectors (`process_start_time_seconds` counts restarts).
"""
from __future__ import annotations

import logging

from prometheus_client import REGISTRY as GLOBAL_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TOKEN_BUCKETS = (16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)

# --- requests ------------------------------------------------------------------------------
REQUESTS = Counter("cosmos_requests_total", "Chat completion requests by outcome.",
                   ["endpoint", "status"], registry=REGISTRY)
REQUESTS_IN_FLIGHT = Gauge("cosmos_requests_in_flight", "Requests being served.",
                           registry=REGISTRY)
REQUEST_SECONDS = Histogram("cosmos_request_duration_seconds", "Whole request, first byte in to "
                            "last byte out.", ["endpoint"], buckets=_LATENCY_BUCKETS,
                            registry=REGISTRY)
DEADLINES_EXCEEDED = Counter("cosmos_request_deadline_exceeded_total", "Requests ended by their "
                             "deadline (504).", registry=REGISTRY)
TTFT_SECONDS = Histogram("cosmos_time_to_first_token_seconds", "Request arrival to first token.",
                         buckets=_LATENCY_BUCKETS, registry=REGISTRY)

# --- stage: ingestion -----------------------------------------------------------------------
FETCH_SECONDS = Histogram("cosmos_ingest_fetch_seconds", "Fetching media bytes.", ["scheme"],
                          buckets=_LATENCY_BUCKETS, registry=REGISTRY)
FETCH_BYTES = Counter("cosmos_ingest_fetched_bytes_total", "Encoded media bytes fetched.",
                      ["scheme"], registry=REGISTRY)
DECODE_SECONDS = Histogram("cosmos_ingest_decode_seconds", "Decoding, sampling and resizing one "
                           "video.", buckets=_LATENCY_BUCKETS, registry=REGISTRY)
DECODES = Counter("cosmos_ingest_decodes_total", "Videos decoded, by the decoder that produced "
                  "their frames (cpu, nvdec).", ["decoder"], registry=REGISTRY)
NVDEC_FALLBACKS = Counter("cosmos_ingest_nvdec_fallbacks_total", "Videos NVDEC failed on and the "
                          "CPU decoded instead.", registry=REGISTRY)
NVDEC_OVERFLOWS = Counter("cosmos_ingest_nvdec_overflows_total", "Videos that would have queued "
                          "for NVDEC and were decoded on CPU cores lent to it instead, sooner "
                          "(video_nvdec_cpu_cores).", registry=REGISTRY)
DECODE_PROCESS_RESTARTS = Counter("cosmos_ingest_decode_process_restarts_total", "Decode "
                                  "processes (video_decode_processes) that stopped and were "
                                  "started again.", registry=REGISTRY)
FRAMES_SAMPLED = Histogram("cosmos_ingest_frames_sampled", "Frames kept per video.",
                           buckets=(2, 4, 8, 16, 32, 64, 128, 256, 512, 768), registry=REGISTRY)
VISION_TOKENS = Histogram("cosmos_ingest_vision_tokens", "Vision tokens per request.",
                          buckets=_TOKEN_BUCKETS, registry=REGISTRY)
SKIPPED_FRAMES = Counter("cosmos_ingest_skipped_frames_total", "Corrupt frames skipped.",
                         registry=REGISTRY)
CACHE_EVENTS = Counter("cosmos_ingest_cache_total", "Decoded-clip cache lookups.", ["result"],
                       registry=REGISTRY)
CACHE_BYTES = Gauge("cosmos_ingest_cache_bytes", "Bytes held by the decoded-clip cache.",
                    registry=REGISTRY)
DECODE_QUEUE = Gauge("cosmos_ingest_decode_queue_depth", "Decodes waiting for a worker.",
                     registry=REGISTRY)
DECODES_RUNNING = Gauge("cosmos_ingest_decodes_running", "Decodes running in a worker.",
                        registry=REGISTRY)
DECODES_CANCELLED = Counter("cosmos_ingest_decodes_cancelled_total", "Decodes cancelled because "
                            "every request waiting for them was gone.", registry=REGISTRY)
MEDIA_ERRORS = Counter("cosmos_ingest_errors_total", "Rejected media by error code.", ["code"],
                       registry=REGISTRY)

# --- stage: engine --------------------------------------------------------------------------
ENGINE_SECONDS = Histogram("cosmos_engine_generate_seconds", "Engine submit to last token.",
                           buckets=_LATENCY_BUCKETS, registry=REGISTRY)
PROMPT_TOKENS = Counter("cosmos_prompt_tokens_total", "Prompt tokens processed.",
                        registry=REGISTRY)
COMPLETION_TOKENS = Counter("cosmos_completion_tokens_total", "Tokens generated.",
                            registry=REGISTRY)
FINISH_REASONS = Counter("cosmos_finish_reason_total", "Choices by finish reason.", ["reason"],
                         registry=REGISTRY)
ENGINE_REQUESTS_RUNNING = Gauge("cosmos_engine_requests_running", "Engine requests started and "
                                "not yet finished or aborted.", registry=REGISTRY)
ENGINE_ABORTS = Counter("cosmos_engine_aborts_total", "Engine requests aborted before they "
                        "finished, by reason (client_gone, deadline, shutdown, error).",
                        ["reason"], registry=REGISTRY)
ENGINE_READY = Gauge("cosmos_engine_ready", "1 once the engine is loaded.", registry=REGISTRY)

# --- stage: reasoning parser and guardrail --------------------------------------------------
REASONING_PARSE = Counter("cosmos_reasoning_parse_total", "Parse outcomes.", ["outcome"],
                          registry=REGISTRY)
GUARDRAIL_SECONDS = Histogram("cosmos_guardrail_check_seconds", "One guardrail check.",
                              buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
                              registry=REGISTRY)
GUARDRAIL_VERDICTS = Counter("cosmos_guardrail_verdicts_total", "Verdicts.", ["verdict"],
                             registry=REGISTRY)
GUARDRAIL_FINDINGS = Counter("cosmos_guardrail_findings_total", "Findings by rule and severity.",
                             ["rule", "severity"], registry=REGISTRY)
GUARDRAIL_CRITIC_SECONDS = Histogram("cosmos_guardrail_critic_seconds", "One model critic ask "
                                     "(prompt, engine request, parse), per checked choice.",
                                     buckets=_LATENCY_BUCKETS, registry=REGISTRY)
GUARDRAIL_CRITIC_VERDICTS = Counter("cosmos_guardrail_critic_verdicts_total", "Model critic "
                                    "outcomes: plausible, implausible, unknown, skipped, timeout, "
                                    "error.", ["verdict"], registry=REGISTRY)


class _Exposition:
    """Our registry, then every family of the global one whose names are not ours.

    Two families with one name in one exposition make Prometheus reject the whole scrape, so a
    global family that shares a metric or sample name with ours is left out (and logged once)
    rather than breaking every other series.
    """

    _clashes_logged: set[str] = set()

    def collect(self):
        ours = list(REGISTRY.collect())
        taken = {m.name for m in ours} | {s.name for m in ours for s in m.samples}
        yield from ours
        for family in GLOBAL_REGISTRY.collect():
            names = {family.name} | {s.name for s in family.samples}
            if names & taken:
                if family.name not in self._clashes_logged:
                    self._clashes_logged.add(family.name)
                    log.warning("metric %s of the global registry clashes with ours; "
                                "left out of /metrics", family.name)
                continue
            yield family


def render() -> bytes:
    return generate_latest(_Exposition())
