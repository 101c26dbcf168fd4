"""Model profiles: what the model sees and how it is asked, as it was trained."""
from app.profiles.builtin import (BUILTIN, CHECKPOINT_PROFILE, checkpoint_profile,
                                  load_profile, read_profile_file)
from app.profiles.model import PROMPT_KEYS, SAMPLING_KEYS, VIDEO_KEYS, Profile
from app.profiles.resolve import Resolved
from app.profiles.select import deployment_profile

__all__ = ["BUILTIN", "CHECKPOINT_PROFILE", "PROMPT_KEYS", "Profile", "SAMPLING_KEYS",
           "Resolved", "VIDEO_KEYS", "checkpoint_profile", "deployment_profile", "load_profile", "read_profile_file"]
