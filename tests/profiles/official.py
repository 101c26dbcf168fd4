# SPDX-FileCopyrightText: Copyright (c) 2025 NVIDIA CORPORATION & AFFILIATES. All rights reserved.
# SPDX-License-Identifier: Apache-2.0
#
# `create_conversation` from nvidia-cosmos/cosmos-reason1 @ 3e7f1cb11128,
# cosmos_reason1_utils/src/cosmos_reason1_utils/text.py, unchanged except that the
# `vision_kwargs` branch (set_vision_kwargs) is left out: the tests pass none. It is the
# reference the profile tests compare our prompts with, token for token.
from typing import Any


def create_conversation(
    *,
    system_prompt: str = "",
    user_prompt: str = "",
    response: str = "",
    images: list[Any] | None = None,
    videos: list[Any] | None = None,
) -> list[dict]:
    user_content = []
    if images is not None:
        for image in images:
            user_content.append({"type": "image", "image": image})
    if videos is not None:
        for video in videos:
            user_content.append({"type": "video", "video": video})
    if user_prompt:
        user_content.append({"type": "text", "text": user_prompt})
    conversation = []
    if system_prompt:
        conversation.append({"role": "system", "content": system_prompt})
    conversation.append({"role": "user", "content": user_content})
    if response:
        conversation.append({"role": "assistant", "content": response})
    return conversation
