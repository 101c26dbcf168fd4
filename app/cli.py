"""`cosmos-serve`: serve, inspect, guardrail, profile, dev build-tiny-model, dev demo.

`serve` has one flag per settings field (`--max-model-len`, `--video-fps`, ...), generated from
the Settings model so the two can never drift apart; flags override `COSMOS_*` variables.
"""
from __future__ import annotations

import argparse
import signal
import sys
import typing

from app import __version__


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    from app.config import Settings

    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_ = field.description or None
        if field.annotation is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_)
        elif typing.get_origin(field.annotation) is tuple:
            parser.add_argument(flag, dest=name, nargs="*", default=None, help=help_)
        else:
            parser.add_argument(flag, dest=name, default=None, help=help_)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api.app import create_app
    from app.config import Settings
    from app.lifecycle.server import ManagedServer
    from app.logs import configure as configure_logging

    from pydantic import ValidationError

    fields = Settings.model_fields
    from app.errors import ConfigError

    try:
        if getattr(args, "lora", None):  # --lora NAME=PATH, repeatable: adds to --lora-modules
            args.lora_modules = [*(args.lora_modules or ()), *args.lora]
        settings = Settings(**{k: v for k, v in vars(args).items()
                               if k in fields and v is not None})
    except ValidationError as exc:
        print(f"cosmos-serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except ConfigError as exc:  # a setting, profile or checkpoint that can never serve
        print(f"cosmos-serve: {exc}", file=sys.stderr)
        return 2
    # SIGTERM at any moment stops everything started here within shutdown_grace_s, and a
    # watchdog kills vLLM's processes if this one is killed (app/lifecycle).
    server = ManagedServer(uvicorn.Config(app, host=settings.host, port=settings.port,
                                          log_level=settings.log_level, access_log=False,
                                          log_config=None if settings.log_format == "json"
                                          else uvicorn.config.LOGGING_CONFIG),
                           grace_s=settings.shutdown_grace_s)
    server.start_guards()
    app.state.on_engine_failure = lambda: server.begin_stop("the engine died")
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C/SIGINT after its graceful shutdown
        return 130
    # The re-raised SIGINT only cancels asyncio's main task, which may have finished first.
    if server.signal_received == signal.SIGINT:
        return 130
    return 1 if app.state.engine_failure else 0


def _profile(args: argparse.Namespace) -> int:
    from app.errors import ConfigError
    from app.profiles import load_profile
    from app.profiles.training import dump, from_training

    try:
        if args.profile_command == "from-training":
            text = dump(from_training(args.config, args.eval_config))
        else:
            text = dump(load_profile(args.profile)[1])
    except ConfigError as exc:
        print(f"cosmos-serve profile: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "output", None):
        with open(args.output, "w") as f:
            f.write(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _dev(args: argparse.Namespace) -> int:
    if args.dev_command == "build-tiny-model":
        from app.dev.tiny_model import build_tiny_model

        print(build_tiny_model(args.dir))
        return 0
    from app.dev.demo import run_demo

    return run_demo(clip=args.clip, port=args.port, model_dir=args.model_dir,
                    question=args.question)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cosmos-serve", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the OpenAI-compatible server")
    _add_settings_flags(serve)
    serve.add_argument("--lora", action="append", metavar="NAME=PATH",
                       help="serve the LoRA adapter in directory PATH as model NAME "
                            "(repeatable; as any flag, replaces COSMOS_LORA_MODULES)")
    sub.add_parser("inspect", help="show what the model sees of a video", add_help=False)
    sub.add_parser("guardrail", help="check a model output read from stdin", add_help=False)
    sub.add_parser("quantize", help="write an FP8 copy of a Qwen2.5-VL checkpoint",
                   add_help=False)
    sub.add_parser("eval", help="video-QA accuracy and speed of a deployment (and `eval compare`)",
                   add_help=False)
    prof = sub.add_parser("profile", help="model profiles: what the model sees, how it is asked")
    prof_sub = prof.add_subparsers(dest="profile_command", required=True)
    train = prof_sub.add_parser("from-training",
                                help="write a profile from a cosmos-rl training config")
    train.add_argument("config", metavar="CONFIG.toml", help="cosmos-rl SFT config (TOML)")
    train.add_argument("--eval-config", metavar="EVAL.yaml",
                       help="the recipe's eval_config.yaml: its `generation` sampling too")
    train.add_argument("-o", "--output", metavar="FILE",
                       help="write here (e.g. CHECKPOINT/cosmos-serve.yaml); default: stdout")
    show = prof_sub.add_parser("show", help="print a built-in profile or a profile file")
    show.add_argument("profile", metavar="NAME|FILE")
    dev = sub.add_parser("dev", help="developer tools")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)
    tiny = dev_sub.add_parser("build-tiny-model", help="write the tiny random Qwen2.5-VL checkpoint")
    tiny.add_argument("dir")
    demo = dev_sub.add_parser("demo", help="tiny model + server + one clip through the openai SDK")
    demo.add_argument("--clip", default=None, help="video file (default: a clip in ../shared/media)")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--model-dir", default=".cache/tiny-model")
    demo.add_argument("--question", default="What is the ego vehicle doing? A) turning left "
                      "B) driving straight C) reversing D) parked")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # inspect and guardrail own their argument parsing.
    if argv and argv[0] == "inspect":
        from app.ingest.inspect import main as inspect_main

        return inspect_main(argv[1:])
    if argv and argv[0] == "guardrail":
        from app.guardrail.cli import main as guardrail_main

        return guardrail_main(argv[1:])
    if argv and argv[0] == "quantize":
        from app.quantize.cli import main as quantize_main

        return quantize_main(argv[1:])
    if argv and argv[0] == "eval":
        from app.eval.cli import main as eval_main

        return eval_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "profile":
        return _profile(args)
    return _dev(args)


if __name__ == "__main__":
    sys.exit(main())
