"""`cosmos-serve eval`: video-QA accuracy and speed of a deployment, through its HTTP API.

dataset (LLaVA JSON / JSONL items) -> client (one streamed request per item, retried) -> runner
(concurrency, progress, results.jsonl, resume) -> scoring (option letter) -> stats (accuracy,
intervals, percentiles, McNemar) -> report (summary.json, report.html) and compare (two runs).
"""
