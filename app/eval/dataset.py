"""Evaluation items from the recipe's LLaVA-style JSON or from JSONL.

LLaVA JSON (what cosmos-cookbook's recipes train and evaluate on): a list of
`{"id", "video" | "image", "conversations": [{"from": "human", "value": "<video>\\nQ\\nA: ..."},
{"from": "gpt", "value": "B"}], "category"?}`; the `<video>`/`<image>` tags are stripped from
the question, as the recipe's evaluate.py does, and the options are read from its lettered lines.

JSONL: one `{"id", "video" | "image", "question", "options", "answer", "category"?}` a line,
`options` a list (lettered A, B, ...) or a `{"A": ...}` mapping, `answer` a letter or an
option's text.

A malformed item does not stop the load: it becomes a `Problem` with a message naming it, and
the run records it in results.jsonl like any failed item.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from app.eval.scoring import LETTERS, parse_letter

_TAG = re.compile(r"<(?:video|image)>\s*", re.I)
_OPTION = re.compile(r"^\s*\(?([A-J])\s*[).:]\s*(.+?)\s*$")
_URL = re.compile(r"^(?:https?|data|file):", re.I)


class DatasetError(Exception):
    """The dataset file as a whole cannot be read."""


class EvalItem(BaseModel):
    id: str
    media: str                      # as the dataset names it: a path or a URL
    media_type: Literal["video", "image"]
    question: str                   # the text sent, options included
    options: dict[str, str]         # letter -> option text
    expected: str                   # the right letter
    category: str | None = None


class Problem(BaseModel):
    """An item that cannot be asked, and why."""
    id: str
    error: str
    question: str | None = None
    category: str | None = None


def parse_options(question: str) -> dict[str, str]:
    """The lettered option lines of a question ("A: text", "B) text", "(C) text")."""
    options: dict[str, str] = {}
    for line in question.splitlines():
        m = _OPTION.match(line)
        if m and m.group(1) == LETTERS[len(options)]:
            options[m.group(1)] = m.group(2)
    return options


def _expected(answer: object, options: dict[str, str]) -> str:
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError("no expected answer")
    text = answer.strip()
    for letter, option in options.items():  # the answer given as the option's text
        if text.lower() == option.lower():
            return letter
    letter = parse_letter(text, "".join(options) or LETTERS)
    if letter is None:
        raise ValueError(f"expected answer {text!r} is not one of the options "
                         f"{', '.join(options) or '(none found)'}")
    return letter


def _media(raw: dict) -> tuple[str, str]:
    for kind in ("video", "image"):
        value = raw.get(kind)
        if isinstance(value, list):  # LLaVA allows a list; one clip per question here
            value = value[0] if len(value) == 1 else None
        if isinstance(value, str) and value:
            return value, kind
    raise ValueError("no 'video' or 'image' file")


def _llava_item(raw: dict) -> EvalItem:
    turns = raw.get("conversations")
    if not isinstance(turns, list):
        raise ValueError("no 'conversations' list")
    human = next((t.get("value") for t in turns if isinstance(t, dict)
                  and t.get("from") in ("human", "user")), None)
    gpt = next((t.get("value") for t in turns if isinstance(t, dict)
                and t.get("from") in ("gpt", "assistant")), None)
    if not isinstance(human, str) or not human.strip():
        raise ValueError("no human turn with a question")
    question = _TAG.sub("", human).strip()
    options = parse_options(question)
    media, kind = _media(raw)
    return EvalItem(id=str(raw["id"]), media=media, media_type=kind, question=question,
                    options=options, expected=_expected(gpt, options),
                    category=raw.get("category"))


def _jsonl_item(raw: dict) -> EvalItem:
    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("no 'question'")
    options = raw.get("options")
    if isinstance(options, list):
        options = dict(zip(LETTERS, map(str, options)))
    elif isinstance(options, dict):
        options = {str(k).strip().upper(): str(v) for k, v in options.items()}
    elif options is None:
        options = parse_options(question)
    else:
        raise ValueError("'options' must be a list or a mapping")
    text = _TAG.sub("", question).strip()
    if options and not parse_options(text):  # options given apart: write them as the recipe does
        text += "\n" + "\n".join(f"{k}: {v}" for k, v in options.items())
    media, kind = _media(raw)
    return EvalItem(id=str(raw["id"]), media=media, media_type=kind, question=text,
                    options=options, expected=_expected(raw.get("answer"), options),
                    category=raw.get("category"))


def _records(path: Path) -> list[object]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc.strerror or exc}") from exc
    stripped = text.lstrip()
    if path.suffix == ".jsonl" or not stripped.startswith("["):
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                records.append(ValueError(f"line {n} is not JSON: {exc}"))
        return records
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DatasetError(f"dataset {path} is not valid JSON: {exc}") from exc
    return data


def load_dataset(path: str | Path) -> list[EvalItem | Problem]:
    """Every record in file order: an item, or a Problem saying why it is not one."""
    path = Path(path)
    records = _records(path)
    if not isinstance(records, list):
        raise DatasetError(f"dataset {path} must be a JSON list of items (LLaVA) or JSONL")
    entries: list[EvalItem | Problem] = []
    seen: set[str] = set()
    for n, raw in enumerate(records, 1):
        if isinstance(raw, Exception):
            entries.append(Problem(id=f"#{n}", error=str(raw)))
            continue
        if not isinstance(raw, dict):
            entries.append(Problem(id=f"#{n}", error=f"item {n} is not a JSON object"))
            continue
        item_id = str(raw["id"]) if raw.get("id") not in (None, "") else f"#{n}"
        try:
            if "id" not in raw or raw["id"] in (None, ""):
                raise ValueError("no 'id'")
            if item_id in seen:  # its own id, so that it cannot replace the first one's result
                item_id = f"{item_id}#{n}"
                raise ValueError("duplicate id")
            item = _llava_item(raw) if "conversations" in raw else _jsonl_item(raw)
        except (ValueError, KeyError, TypeError) as exc:
            entries.append(Problem(id=item_id, error=f"item {n} ({item_id}): {exc}",
                                    category=raw.get("category")
                                    if isinstance(raw.get("category"), str) else None))
            continue
        seen.add(item_id)
        entries.append(item)
    if not entries:
        raise DatasetError(f"dataset {path} has no items")
    return entries


def is_url(media: str) -> bool:
    return bool(_URL.match(media))


def resolve_media(media: str, media_dir: Path) -> Path | str:
    """A URL as it is; a path relative to `media_dir` (the recipe's `media_dir`)."""
    if is_url(media):
        return media
    return (media_dir / media).resolve()
