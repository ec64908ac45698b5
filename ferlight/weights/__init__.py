"""The model ferlight ships: used by live inference and evaluation when no checkpoint is named."""

from pathlib import Path

DEFAULT_WEIGHTS = Path(__file__).with_name("default.pt")
