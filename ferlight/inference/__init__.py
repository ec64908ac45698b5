"""Inference on images and video: checkpoint loading, face detection, face boxes, face crops, faces
followed across frames, the Recognizer, video in and out, drawing, timelines of each face's
emotions, and the live loop.

Names load on first use, so that importing one room does not import the others.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "recognizer": ["Recognizer", "RecognizerOptions", "Face", "FrameResult"],
        "checkpoint": ["load_model", "resolve_checkpoint"],
        "detection": ["DetectorOptions", "create_detector"],
        "face_tracks": ["FaceTracker"],
        "video": ["open_source", "VideoSink", "JsonlSink", "CsvSink"],
        "drawing": ["annotate"],
        "timeline": ["Timeline"],
        "live_loop": ["run_live", "RunStats"],
    },
)
