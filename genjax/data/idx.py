"""Strict reader for the gzipped idx files of MNIST / Fashion-MNIST: bad input fails loudly, once.

Format (big-endian): 2 zero bytes, dtype byte 0x08 (uint8), ndim byte, ndim uint32 sizes, payload.
The classic magic numbers are therefore 2051 (0x00000803, images, ndim 3) and 2049 (labels, ndim 1).
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
IMAGE_SIZE = 28


class DatasetError(ValueError):
  """The one error for missing or malformed dataset files; its message names the file."""


def _read_bytes(path: str) -> bytes:
  """Whole decompressed file, with I/O and gzip failures turned into DatasetError."""
  if not os.path.isfile(path):
    raise DatasetError(f"{path}: file not found")
  try:
    with gzip.open(path, "rb") as f:
      return f.read()
  except (OSError, EOFError, zlib.error) as e:
    raise DatasetError(f"{path}: not a readable gzip file ({e})") from e


def _parse(path: str, data: bytes, magic: int, ndim: int,
           what: str) -> tuple[tuple[int, ...], bytes]:
  """Checks magic and header length; returns (dims, payload) so callers check the payload."""
  if len(data) < 4:
    raise DatasetError(f"{path}: expected an idx header for {what}, got only {len(data)} bytes")
  (got,) = struct.unpack(">I", data[:4])
  if got != magic:
    raise DatasetError(f"{path}: expected magic {magic} for {what}, got {got}")
  header = 4 + 4 * ndim
  if len(data) < header:
    raise DatasetError(f"{path}: expected a {header}-byte header for {what}, got {len(data)} bytes")
  dims = struct.unpack(f">{ndim}I", data[4:header])
  payload = data[header:]
  expected = int(np.prod(dims, dtype=np.int64))
  if len(payload) != expected:
    raise DatasetError(f"{path}: expected {expected} payload bytes for {what} of shape {dims}, "
                       f"got {len(payload)}")
  return dims, payload


def read_images(path: str) -> np.ndarray:
  """uint8 [N, 28, 28] from an idx3 .gz file; anything else raises DatasetError."""
  data = _read_bytes(path)
  what = "idx3 images"
  if len(data) >= 16:  # check the image size before the payload length: the more useful message
    (got,) = struct.unpack(">I", data[:4])
    rows, cols = struct.unpack(">2I", data[8:16])
    if got == IMAGES_MAGIC and (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE):
      raise DatasetError(f"{path}: expected {IMAGE_SIZE}x{IMAGE_SIZE} images, got {rows}x{cols}")
  dims, payload = _parse(path, data, IMAGES_MAGIC, 3, what)
  return np.frombuffer(payload, dtype=np.uint8).reshape(dims).copy()


def read_labels(path: str, num_classes: int = 10) -> np.ndarray:
  """uint8 [N] from an idx1 .gz file, every label checked to lie in [0, num_classes)."""
  data = _read_bytes(path)
  dims, payload = _parse(path, data, LABELS_MAGIC, 1, "idx1 labels")
  labels = np.frombuffer(payload, dtype=np.uint8).reshape(dims).copy()
  if labels.size and labels.max() >= num_classes:
    raise DatasetError(f"{path}: expected labels in [0, {num_classes}), got {int(labels.max())}")
  return labels


def read_pair(images_path: str, labels_path: str) -> tuple[np.ndarray, np.ndarray]:
  """Images and labels of one split, checked to have the same count."""
  images, labels = read_images(images_path), read_labels(labels_path)
  if len(images) != len(labels):
    raise DatasetError(f"{images_path}: expected as many images as labels in {labels_path} "
                       f"({len(labels)}), got {len(images)}")
  return images, labels


def encode(array: np.ndarray) -> bytes:
  """Uncompressed idx bytes of a uint8 array (the inverse of the readers, before gzip)."""
  array = np.asarray(array, dtype=np.uint8)
  head = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
  return head + array.tobytes()
