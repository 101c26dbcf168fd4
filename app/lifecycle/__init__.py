"""The server process's lifecycle: graceful stop within `shutdown_grace_s`, and no process it
started left behind (server.py, processes.py, watchdog.py)."""
