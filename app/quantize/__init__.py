"""`cosmos-serve quantize SRC DST`: bf16 Qwen2.5-VL checkpoint -> compressed-tensors FP8 checkpoint.

Stages, one module each: `checkpoint` (what SRC is, whether DST may be written, the side files
copied across), `scheme` (which tensors are quantized and the config.json block that says so),
`fp8` (the calibration-free writer, shard by shard), `calibration` (NVIDIA's SmoothQuant + GPTQ
recipe through llm-compressor, on our own clips), `summary`, `cli`. `detect` is for the server:
what quantization a checkpoint declares and whether this platform's vLLM can serve it.
"""
