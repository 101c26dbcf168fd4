"""A run: every item asked with N in flight, each answer scored and written as it lands.

The progress bar shows the running accuracy and throughput. A refused key or an unknown model
stops the run (every item would fail the same way); anything else fails only its item, and the
run goes on. Whatever stops it (the end, Ctrl-C, a kill), the items written so far stay, and
`--resume` continues from them.
"""
from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import openai

from app.eval.client import AskPlan, FatalError, ask, build_messages, describe, media_url
from app.eval.dataset import EvalItem, Problem, resolve_media
from app.eval.results import RUN, Result, ResultWriter, read_json, write_json
from app.eval.scoring import LETTERS, parse_letter


@dataclass
class RunConfig:
    dataset: str
    base_url: str
    api_key: str
    model: str | None
    concurrency: int
    profile: str | None
    out: Path
    media_dir: Path
    media_by_path: bool
    max_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    retries: int = 4
    timeout_s: float = 600.0
    progress: bool = True


class RunAborted(Exception):
    """Nothing more can be evaluated (the message says why)."""


def problem_result(p: Problem) -> Result:
    return Result(id=p.id, category=p.category, question=p.question, error=p.error)


async def _media(item: EvalItem, cfg: RunConfig) -> str:
    media = resolve_media(item.media, cfg.media_dir)
    if isinstance(media, Path) and not media.is_file():
        raise FileNotFoundError(f"{item.media_type} not found: {media}")
    return await asyncio.to_thread(media_url, media, cfg.media_by_path)


async def evaluate_item(client, plan: AskPlan, item: EvalItem, cfg: RunConfig) -> Result:
    base = dict(id=item.id, category=item.category, media=item.media, question=item.question,
                options=item.options, expected=item.expected)
    try:
        url = await _media(item, cfg)
    except OSError as exc:
        return Result(**base, error=str(exc) if isinstance(exc, FileNotFoundError)
                      else f"cannot read {item.media}: {exc.strerror or exc}")
    try:
        reply = await ask(client, plan, build_messages(item, url, plan), retries=cfg.retries)
    except FatalError:
        raise
    except Exception as exc:  # noqa: BLE001 - the item's error, the run goes on
        return Result(**base, attempts=cfg.retries + 1, error=describe(exc))
    letter = parse_letter(reply.answer, "".join(item.options) or LETTERS[:4])
    return Result(**base, reasoning=reply.reasoning, answer=reply.answer, letter=letter,
                  correct=letter == item.expected, ttft_s=reply.ttft_s,
                  latency_s=reply.latency_s, tokens=reply.tokens, guardrail=reply.guardrail,
                  finish_reason=reply.finish_reason, attempts=reply.attempts)


async def served_model(client: openai.AsyncOpenAI, base_url: str, model: str | None) -> str:
    """Check that the server answers and takes the key; the model to ask."""
    try:
        models = [m.id for m in (await client.models.list()).data]
    except openai.AuthenticationError as exc:
        raise RunAborted(f"the server at {base_url} refused the API key ({describe(exc)}); "
                         "pass the right one with --api-key") from exc
    except openai.APIConnectionError as exc:
        raise RunAborted(f"cannot reach the server at {base_url}: {describe(exc)}") from exc
    except openai.APIStatusError as exc:
        if model:  # a server without /v1/models can still be asked
            return model
        raise RunAborted(f"cannot list the models of {base_url} ({describe(exc)}); "
                         "pass --model") from exc
    if model:
        if models and model not in models:
            raise RunAborted(f"model {model!r} is not served at {base_url} "
                             f"(it serves: {', '.join(models)})")
        return model
    if not models:
        raise RunAborted(f"{base_url} lists no model; pass --model")
    return models[0]


class Progress:
    """The bar, and the session's entry in run.json kept current after every item."""

    def __init__(self, cfg: RunConfig, run: dict, total: int, already: list[Result]):
        from tqdm import tqdm

        self.cfg, self.run = cfg, run
        self.start = time.perf_counter()
        self.session = {"started": _now(), "wall_s": 0.0, "items": 0}
        run.setdefault("sessions", []).append(self.session)
        self.done = [r for r in already if r.evaluated]
        self.bar = tqdm(total=total, unit="item", file=sys.stderr, disable=not cfg.progress,
                        dynamic_ncols=True, desc="eval")

    def update(self, r: Result) -> None:
        self.session["wall_s"] = time.perf_counter() - self.start
        if r.evaluated:
            self.done.append(r)
            self.session["items"] += 1
        write_json(self.cfg.out / RUN, self.run)
        correct = sum(bool(x.correct) for x in self.done)
        rate = self.session["items"] / self.session["wall_s"] if self.session["wall_s"] else 0
        self.bar.set_postfix_str(f"acc={correct}/{len(self.done)}"
                                 f"={correct / max(len(self.done), 1):.1%} {rate:.2f} items/s")
        self.bar.update(1)

    def close(self) -> None:
        self.session["wall_s"] = time.perf_counter() - self.start
        write_json(self.cfg.out / RUN, self.run)
        self.bar.close()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


async def run_items(cfg: RunConfig, todo: list[EvalItem | Problem], run: dict,
                    already: list[Result], profile=None) -> None:
    """Ask every entry of `todo`, appending each result to results.jsonl as it lands."""
    client = openai.AsyncOpenAI(base_url=cfg.base_url, api_key=cfg.api_key, max_retries=0,
                                timeout=cfg.timeout_s)
    writer = ResultWriter(cfg.out)
    progress = None
    try:
        model = await served_model(client, cfg.base_url, cfg.model)
        plan = AskPlan.build(model, profile, cfg.max_tokens, cfg.temperature, cfg.seed)
        run.update(model=model, params=plan.params, extra_body=plan.extra_body,
                   config={k: str(v) for k, v in asdict(cfg).items() if k != "api_key"})
        progress = Progress(cfg, run, len(todo), already)
        queue: asyncio.Queue = asyncio.Queue()
        for entry in todo:
            queue.put_nowait(entry)

        async def worker() -> None:
            while not queue.empty():
                entry = queue.get_nowait()
                result = (problem_result(entry) if isinstance(entry, Problem)
                          else await evaluate_item(client, plan, entry, cfg))
                writer.write(result)
                progress.update(result)

        workers = [asyncio.create_task(worker()) for _ in range(max(1, cfg.concurrency))]
        try:
            await asyncio.gather(*workers)
        except FatalError as exc:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise RunAborted(f"stopped: {exc}") from exc
    finally:
        if progress is not None:
            progress.close()
        writer.close()
        await client.close()


def load_run(out: Path) -> dict:
    return read_json(out / RUN)
