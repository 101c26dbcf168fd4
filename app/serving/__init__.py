"""The chat service: from a validated request to the answer, knowing no HTTP."""
