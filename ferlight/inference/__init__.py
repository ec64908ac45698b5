"""Inference on images and video: checkpoint loading, face detection, face crops, faces
followed across frames, the Recognizer, video in and out, and drawing.

Names load on first use, so that importing one room does not import the others.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "recognizer": ["Recognizer", "Face", "FrameResult"],
        "checkpoint": ["LoadedModel", "load_model", "resolve_checkpoint"],
        "detection": ["create_detector"],
        "video": ["open_source", "VideoSink", "JsonlSink"],
    },
)
