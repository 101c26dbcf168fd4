"""The profile a deployment serves with, chosen and checked once at start."""
from __future__ import annotations

import logging

from app.errors import ConfigError
from app.profiles.builtin import checkpoint_profile, load_profile
from app.profiles.resolve import Resolved, generation_config_layer, resolve

log = logging.getLogger(__name__)


def deployment_profile(settings) -> Resolved:
    """`--profile` (COSMOS_PROFILE), else the checkpoint's cosmos-serve.yaml, else none (the
    Cosmos-Reason1 defaults), merged with the checkpoint's generation_config.json and the
    settings given explicitly. Raises ConfigError for settings that can never serve."""
    chosen = load_profile(settings.profile) if settings.profile else \
        checkpoint_profile(settings.model)
    name, profile = chosen if chosen else ("cosmos-reason1", None)
    resolved = resolve(settings, profile, name, generation_config_layer(settings.model))
    if resolved["nframes"] is not None and resolved["nframes"] > resolved["max_frames"]:
        raise ConfigError(f"nframes {resolved['nframes']} is above max_frames "
                          f"{resolved['max_frames']} (video_nframes / video_max_frames)")
    log.info("profile %s: %s", name, {k: v for k, v in resolved.values.items()
                                      if k != "system_prompt"})
    return resolved
