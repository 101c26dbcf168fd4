"""Video and image ingestion: sources, exact qwen-vl-utils sampling, least-work PyAV decoding."""
from app.ingest.service import VideoIngestor
from app.ingest.types import VideoClip, VideoOptions

__all__ = ["VideoClip", "VideoIngestor", "VideoOptions"]
