"""Read and write FER2013 in Kaggle's ``fer2013.csv`` layout, plain or gzip-compressed.

The file has the header ``emotion,pixels,Usage`` and one row per face: the class number 0..6,
2,304 grey levels separated by single spaces, and ``Training``, ``PublicTest`` or ``PrivateTest``.

Parsing the 301 MB file with ``str.split`` takes seconds, so rows are parsed a block at a time with
vectorised numpy: every number ends where a digit is followed by a non-digit, and its value is
accumulated from its last three digits. The same pass checks each block's structure (one digit and a
comma, only digits and single spaces up to the second comma, a known Usage); only when a block
fails is it re-read line by line to report the first bad line exactly. The next block is read (and
decompressed) in a background thread while the current one is parsed.
"""

from __future__ import annotations

import gzip
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from ferlight.atomic import atomic_output
from ferlight.data.fer_data import CLASS_NAMES, USAGES, FERData
from ferlight.data.preprocess import IMAGE_SIZE
from ferlight.errors import DataError

HEADER = "emotion,pixels,Usage"
PIXELS = IMAGE_SIZE * IMAGE_SIZE
NUMBERS_PER_ROW = 1 + PIXELS  # the emotion, then the pixels
GZIP_MAGIC = b"\x1f\x8b"
BLOCK_BYTES = 1 << 22  # read and parsed at a time; the parser's work arrays are this size
LONGEST_ROW = 16 * PIXELS  # a valid row is under 4 bytes per pixel; longer "rows" are broken
NEWLINE, COMMA, SPACE, ZERO = ord("\n"), ord(","), ord(" "), ord("0")


def read_fer2013_csv(path: str | os.PathLike) -> FERData:
    """Parse a Kaggle ``fer2013.csv`` (or ``.csv.gz``); DataError naming the file and line if malformed."""
    path = Path(path)
    labels, images, usage = [], [], []
    line_no = 1  # the header
    try:
        with _open(path) as f:
            header = f.readline()
            if not header:
                raise DataError(f"{path} is empty (expected the header {HEADER!r} and one row per face)")
            header = header.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
            if header != HEADER.encode():
                raise DataError(f"{path}, line 1: header is {_show(header)}, expected {HEADER!r}")
            parser = _BlockParser()
            for block in _blocks_of_lines(f):
                parsed = parser.parse(block)
                if parsed is None:
                    bad_line, problem = _first_bad_row(block)
                    raise DataError(f"{path}, line {line_no + bad_line}: {problem}")
                labels.append(parsed[0])
                images.append(parsed[1])
                usage.append(parsed[2])
                line_no += len(parsed[0])
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(f"{path}: gzip data is truncated or corrupt after line {line_no} ({err})") from None
    if not labels:
        raise DataError(f"{path} has a header but no rows")
    return FERData(
        np.concatenate(images).reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
        np.concatenate(labels),
        np.concatenate(usage),
    )


def write_fer2013_csv(data: FERData, path: str | os.PathLike) -> None:
    """Write ``data`` in the Kaggle layout, gzip-compressed when ``path`` ends in ``.gz``; atomic."""
    if data.class_names != CLASS_NAMES:
        raise DataError(f"{path}: the Kaggle layout holds the 7 FER2013 classes, not {', '.join(data.class_names)}")
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with atomic_output(path) as tmp, opener(tmp, "wt", newline="\n") as f:
        f.write(HEADER + "\n")
        for image, label, usage in zip(data.images, data.labels, data.usage):
            pixels = " ".join(map(str, image.ravel().tolist()))
            f.write(f"{label},{pixels},{USAGES[usage]}\n")


def _open(path: Path) -> BinaryIO:
    """The file's bytes, decompressed if it starts with gzip's magic number (whatever its name)."""
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    with open(path, "rb") as f:
        compressed = f.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _blocks_of_lines(f: BinaryIO) -> Iterator[bytes]:
    """The rest of ``f`` in blocks of whole lines (each ending in a newline), read one block ahead."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(f.read, BLOCK_BYTES)
        tail = b""
        while block := pending.result():
            pending = reader.submit(f.read, BLOCK_BYTES)
            block = tail + block
            if b"\r" in block:
                block = block.replace(b"\r\n", b"\n")
            cut = block.rfind(b"\n") + 1
            if cut == 0 and len(block) > LONGEST_ROW:
                cut = len(block)  # no newline for megabytes: hand it on so the row is reported
            tail = block[cut:]
            if cut:
                yield block[:cut] if block[cut - 1] == NEWLINE else block + b"\n"
        if tail:
            yield tail + b"\n"


class _BlockParser:
    """Parses blocks of whole rows, reusing its work arrays (touching fresh memory costs more than the arithmetic)."""

    def __init__(self) -> None:
        self._reserve(0)

    def _reserve(self, size: int) -> None:
        self.digits = np.empty(size, np.uint8)
        self.is_digit = np.empty(size, bool)
        self.is_space = np.empty(size, bool)
        self.mask = np.empty(size, bool)
        self.number = np.empty(size, np.uint16)
        self.term = np.empty(size, np.uint16)

    def parse(self, block: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Labels, pixels (rows x 2304) and usage codes of the block's rows; None if any row is malformed."""
        buf = np.frombuffer(block, np.uint8)
        n = len(buf)
        if n > len(self.digits):
            self._reserve(n + LONGEST_ROW)  # room for the next block's share of a split row
        digits, is_digit, is_space, mask = self.digits[:n], self.is_digit[:n], self.is_space[:n], self.mask[:n]
        line_ends = np.flatnonzero(np.equal(buf, NEWLINE, out=mask))
        rows = len(line_ends)
        line_starts = np.concatenate(([0], line_ends[:-1] + 1))
        # Exactly two commas per row: the first right after a one-byte emotion, the second before the end.
        commas = np.flatnonzero(np.equal(buf, COMMA, out=mask))
        if len(commas) != 2 * rows or not np.array_equal(commas[0::2], line_starts + 1):
            return None
        second_commas = commas[1::2]
        if np.any(second_commas >= line_ends):
            return None
        np.subtract(buf, ZERO, out=digits)  # wraps around for non-digits, so "is a digit" is "< 10"
        np.less(digits, 10, out=is_digit)
        if np.any(digits[line_starts] >= len(CLASS_NAMES)):
            return None
        usage = _usage_codes(buf, second_commas + 1, line_ends)
        if usage is None:
            return None
        # Between the commas only digits and single spaces: count the other bytes (commas, newlines and
        # Usage letters are expected) and check that every space has a digit on both sides.
        spaces = np.count_nonzero(np.equal(buf, SPACE, out=is_space))
        others = n - np.count_nonzero(is_digit) - spaces
        if others != 3 * rows + int(np.sum(line_ends - second_commas - 1)):
            return None
        between_digits = np.logical_and(is_space[1:-1], is_digit[:-2], out=mask[1:-1])
        if np.count_nonzero(np.logical_and(between_digits, is_digit[2:], out=between_digits)) != spaces:
            return None
        four_digits = np.logical_and(is_digit[:-3], is_digit[1:-2], out=mask[:-3])
        four_digits &= is_digit[2:-1]
        four_digits &= is_digit[3:]
        if four_digits.any():
            return None
        number_ends = np.flatnonzero(np.greater(is_digit[:-1], is_digit[1:], out=mask[:-1]))
        if np.any(np.diff(np.searchsorted(number_ends, line_ends), prepend=0) != NUMBERS_PER_ROW):
            return None
        # Each number's value, read at its last digit: units + 10 x tens + 100 x hundreds, where a
        # non-digit counts 0 and the hundreds count only when the tens are a digit of the same number.
        np.multiply(digits, is_digit, out=digits)
        number, term = self.number[:n], self.term[:n]
        number[:2] = 0
        np.multiply(digits[:-2], 100, out=number[2:], dtype=np.uint16)
        number[2:] *= is_digit[1:-1]
        np.multiply(digits[:-1], 10, out=term[1:], dtype=np.uint16)
        number[1:] += term[1:]
        number += digits
        numbers = number[number_ends].reshape(rows, NUMBERS_PER_ROW)
        pixels = numbers[:, 1:]
        if pixels.max() > 255:
            return None
        return numbers[:, 0].astype(np.int64), pixels.astype(np.uint8), usage


def _usage_codes(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
    """Index into USAGES of each row's Usage field buf[start:end]; None if any is not a known Usage."""
    codes = np.full(len(starts), -1, np.int8)
    lengths = ends - starts
    for code, name in enumerate(USAGES):
        word = np.frombuffer(name.encode(), np.uint8)
        rows = np.flatnonzero(lengths == len(word))
        matches = np.all(buf[starts[rows, None] + np.arange(len(word))] == word, axis=1)
        codes[rows[matches]] = code
    return None if np.any(codes < 0) else codes


def _first_bad_row(block: bytes) -> tuple[int, str]:
    """(1-based line within the block, what is wrong) of the block's first malformed row."""
    for number, line in enumerate(block[:-1].split(b"\n"), start=1):
        problem = _row_problem(line)
        if problem:
            return number, problem
    raise AssertionError("a block failed the vectorised check but every row is valid")  # a bug, not bad input


def _row_problem(line: bytes) -> str | None:
    """What is wrong with one row of the CSV (without its newline), or None if it is valid."""
    fields = line.split(b",")
    if len(fields) != 3:
        return f"expected 3 comma-separated fields (emotion,pixels,Usage), found {len(fields)}"
    emotion, pixels, usage = fields
    if emotion not in [str(k).encode() for k in range(len(CLASS_NAMES))]:
        return f"emotion {_show(emotion)} is not a class number 0..{len(CLASS_NAMES) - 1}"
    if usage.decode(errors="replace") not in USAGES:
        return f"unknown Usage {_show(usage)}; expected {', '.join(USAGES)}"
    values = pixels.split(b" ")
    for position, value in enumerate(values, start=1):
        if not (value.isdigit() and len(value) <= 3 and int(value) <= 255):
            return f"pixel {position} is {_show(value)}, not an integer in 0..255"
    if len(values) != PIXELS:
        return f"expected {PIXELS} pixels, found {len(values)}"
    return None


def _show(raw: bytes, limit: int = 40) -> str:
    """A short printable rendering of raw bytes for an error message."""
    text = raw.decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")
