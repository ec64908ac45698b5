"""ferlight: facial emotion recognition on FER2013 with PyTorch Lightning."""

__version__ = "0.1.0"
