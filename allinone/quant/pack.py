"""Bit-packed storage of low-bit weights and a single-file container for a whole model.

Bit order: codes are flattened in row-major order and written as one little-endian bit
stream, so bit ``j`` (LSB = 0) of element ``i`` is stream bit ``p = i * bits + j``, which
lands in byte ``p // 8`` at bit ``p % 8``. A code may straddle a byte boundary; the unused
high bits of the last byte are zero.

File layout (all integers little-endian)::

    magic         8 bytes   b"AIOPACK\\x01" (the last byte is the format version)
    header_len    uint32
    header        header_len bytes, zlib-compressed UTF-8 JSON
    payloads      the raw arrays of every record, concatenated without padding
    crc32         uint32    CRC-32 of every byte before it

The JSON header is ``{"meta": ..., "payload_bytes": P, "tensors": [descriptor, ...]}``.
A descriptor holds ``name``, ``kind`` ("float" or "packed"), ``shape``, ``bits`` (packed
only), ``data = [offset, length]`` and, for packed records with side arrays,
``side = {name: [shape, offset, length]}``. Offsets count from the start of the payload
area. Float data and side arrays are float32, packed data is the uint8 bit stream.
"""

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

import numpy as np
import torch

from allinone.utils.atomic import write_atomic

MAGIC = b"AIOPACK\x01"
KINDS = ("float", "packed")

_U32 = struct.Struct("<I")
# Bytes outside the header and the payloads: magic, header length, trailing CRC.
_FIXED_BYTES = len(MAGIC) + 2 * _U32.size


class PackedFileError(ValueError):
    """A packed model file that is missing, truncated, corrupt or malformed."""


# --------------------------------------------------------------------------- bit packing


def _check_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer in 1..8, got {bits!r}")


def _check_integer_dtype(t: torch.Tensor, what: str) -> None:
    if t.dtype.is_floating_point or t.dtype.is_complex:
        raise ValueError(f"{what} must have an integer dtype, got {t.dtype}")


def packed_length(numel: int, bits: int) -> int:
    """Bytes taken by ``numel`` codes of ``bits`` bits: ``ceil(numel * bits / 8)``."""
    return (numel * bits + 7) // 8


def pack_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack non-negative integer codes into a little-endian bit stream.

    Args:
        codes: any shape, any integer dtype, values in ``[0, 2^bits)``; read in row-major order.
        bits: 1..8.
    Returns:
        uint8 tensor of shape ``(ceil(numel * bits / 8),)``.
    Raises:
        ValueError: ``bits`` outside 1..8, a non-integer dtype or a code out of range.
    """
    _check_bits(bits)
    _check_integer_dtype(codes, "codes")
    flat = codes.detach().reshape(-1).cpu().to(torch.int64)
    n = flat.numel()
    if n:
        lo, hi = int(flat.min()), int(flat.max())
        if lo < 0 or hi >= 1 << bits:
            raise ValueError(
                f"{bits}-bit codes must lie in [0, {(1 << bits) - 1}], got values in [{lo}, {hi}]"
            )
    flat = flat.to(torch.uint8)  # in range now; one byte per code keeps the bit planes small
    nbytes = packed_length(n, bits)
    # Row i of ``stream`` holds the bits of code i, LSB first; zero rows pad the last byte.
    stream = torch.zeros(nbytes * 8, dtype=torch.uint8)
    planes = stream[: n * bits].view(n, bits)
    for j in range(bits):
        planes[:, j] = (flat >> j) & 1
    octets = stream.view(nbytes, 8)
    packed = torch.zeros(nbytes, dtype=torch.uint8)
    for k in range(8):
        packed |= octets[:, k] << k
    return packed


def unpack_bits(packed: torch.Tensor, bits: int, numel: int) -> torch.Tensor:
    """Inverse of ``pack_bits``.

    Args:
        packed: uint8, shape ``(ceil(numel * bits / 8),)``.
        bits: 1..8.
        numel: number of codes to read.
    Returns:
        int64 tensor of shape ``(numel,)`` with values in ``[0, 2^bits)``.
    Raises:
        ValueError: bad ``bits`` or ``numel``, or ``packed`` of the wrong dtype or length.
    """
    _check_bits(bits)
    if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
        raise ValueError(f"numel must be a non-negative integer, got {numel!r}")
    if packed.dtype != torch.uint8 or packed.dim() != 1:
        raise ValueError(
            f"packed must be a 1-D uint8 tensor, got {packed.dtype} of shape {tuple(packed.shape)}"
        )
    nbytes = packed_length(numel, bits)
    if packed.numel() != nbytes:
        raise ValueError(f"{numel} codes of {bits} bits take {nbytes} bytes, got {packed.numel()}")
    p = packed.detach().cpu()
    stream = torch.empty(nbytes, 8, dtype=torch.uint8)
    for k in range(8):
        stream[:, k] = (p >> k) & 1
    planes = stream.view(-1)[: numel * bits].view(numel, bits)
    codes = torch.zeros(numel, dtype=torch.int64)
    for j in range(bits):
        codes |= planes[:, j].to(torch.int64) << j
    return codes


# --------------------------------------------------------------------------- records


def _shape_numel(shape: Tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


@dataclass(eq=False)  # tensors have no boolean equality
class TensorRecord:
    """One stored tensor: raw float32 (``kind="float"``) or bit-packed codes (``kind="packed"``).

    A packed record carries named float32 side arrays whose meaning the caller decides,
    e.g. ``scale`` (per-tensor, per-channel or per-group steps of a uniform quantizer) or
    ``codebook`` (the centroids that b-bit indices select).

    Attributes:
        kind: "float" or "packed".
        shape: shape of the stored tensor (of the codes for a packed record).
        data: float32 tensor of ``shape``, or uint8 of ``(ceil(numel * bits / 8),)``.
        bits: 1..8 for packed records, None for float ones.
        side: name -> float32 tensor of any shape (packed records only).
    """

    kind: str
    shape: Tuple[int, ...]
    data: torch.Tensor
    bits: Optional[int] = None
    side: Dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.shape = tuple(int(s) for s in self.shape)
        self.side = dict(self.side)
        self.validate()

    @classmethod
    def from_float(cls, tensor: torch.Tensor) -> "TensorRecord":
        """A float record holding ``tensor`` converted to float32."""
        if not tensor.dtype.is_floating_point:
            raise ValueError(f"float records hold floating-point tensors, got {tensor.dtype}")
        t = tensor.detach().cpu().to(torch.float32).contiguous()
        return cls("float", tuple(t.shape), t)

    @classmethod
    def from_codes(
        cls, codes: torch.Tensor, bits: int, side: Optional[Mapping[str, torch.Tensor]] = None
    ) -> "TensorRecord":
        """A packed record of unsigned ``codes`` (see ``pack_bits``) with float side arrays.

        Args:
            codes: any shape, integer dtype, values in ``[0, 2^bits)``.
            bits: 1..8.
            side: name -> floating-point tensor of any shape, stored as float32.
        """
        arrays = {}
        for name, t in (side or {}).items():
            if not t.dtype.is_floating_point:
                raise ValueError(f"side array {name!r} must be floating point, got {t.dtype}")
            arrays[name] = t.detach().cpu().to(torch.float32).contiguous()
        return cls("packed", tuple(codes.shape), pack_bits(codes, bits), bits, arrays)

    @property
    def numel(self) -> int:
        return _shape_numel(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes this record adds to the payload area (data plus side arrays)."""
        return self.data.numel() * self.data.element_size() + sum(4 * t.numel() for t in self.side.values())

    def validate(self) -> None:
        """Raise ValueError unless the fields are consistent (dtypes, lengths, bits)."""
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if any(s < 0 for s in self.shape):
            raise ValueError(f"negative dimension in shape {self.shape}")
        if not isinstance(self.data, torch.Tensor):
            raise ValueError(f"data must be a tensor, got {type(self.data).__name__}")
        if self.kind == "float":
            if self.bits is not None or self.side:
                raise ValueError("float records have no bits and no side arrays")
            if self.data.dtype != torch.float32 or tuple(self.data.shape) != self.shape:
                raise ValueError(
                    f"float record data must be float32 of shape {self.shape}, "
                    f"got {self.data.dtype} of shape {tuple(self.data.shape)}"
                )
            return
        _check_bits(self.bits)
        expected = packed_length(self.numel, self.bits)
        if self.data.dtype != torch.uint8 or tuple(self.data.shape) != (expected,):
            raise ValueError(
                f"packed data of {self.numel} codes at {self.bits} bits must be uint8 of shape "
                f"({expected},), got {self.data.dtype} of shape {tuple(self.data.shape)}"
            )
        for name, t in self.side.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"side array names must be non-empty strings, got {name!r}")
            if not isinstance(t, torch.Tensor) or t.dtype != torch.float32:
                raise ValueError(f"side array {name!r} must be a float32 tensor")

    def unpacked_codes(self) -> torch.Tensor:
        """The unsigned codes of a packed record: int64 of ``shape``, values in ``[0, 2^bits)``."""
        if self.kind != "packed":
            raise ValueError("unpacked_codes() needs a packed record")
        return unpack_bits(self.data, self.bits, self.numel).view(self.shape)


def payload_bytes(tensors: Mapping[str, TensorRecord]) -> int:
    """Bytes of all payloads and side arrays, i.e. the file size minus header and framing."""
    return sum(r.nbytes for r in tensors.values())


# --------------------------------------------------------------------------- writing


def _le_bytes(t: torch.Tensor) -> bytes:
    """Raw little-endian bytes of a float32 or uint8 tensor."""
    a = t.detach().cpu().contiguous().numpy()
    return (a.astype("<f4", copy=False) if a.dtype == np.float32 else a).tobytes()


def _write_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` and their CRC-32 to ``path`` atomically."""

    def write(f) -> None:
        crc = 0
        for chunk in chunks:
            f.write(chunk)
            crc = zlib.crc32(chunk, crc)
        f.write(_U32.pack(crc))

    write_atomic(path, write)


def write_packed_file(path, meta: Dict[str, Any], tensors: Mapping[str, TensorRecord]) -> Path:
    """Write ``meta`` and ``tensors`` to one packed model file, atomically.

    Args:
        path: destination file; a crash leaves either the previous file or the new one.
        meta: JSON-serialisable dict (tuples come back as lists).
        tensors: name -> record; the order is kept.
    Returns:
        The destination path.
    Raises:
        ValueError: a malformed record, a non-string name or meta that JSON cannot encode.
    """
    path = Path(path)
    if not isinstance(meta, dict):
        raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
    descriptors: List[Dict[str, Any]] = []
    arrays: List[torch.Tensor] = []  # in payload order
    offset = 0

    def place(t: torch.Tensor) -> List[int]:
        nonlocal offset
        span = [offset, t.numel() * t.element_size()]
        arrays.append(t)
        offset += span[1]
        return span

    for name, rec in tensors.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"tensor names must be non-empty strings, got {name!r}")
        if not isinstance(rec, TensorRecord):
            raise ValueError(f"tensor {name!r}: expected a TensorRecord, got {type(rec).__name__}")
        try:
            rec.validate()
        except ValueError as e:
            raise ValueError(f"tensor {name!r}: {e}") from None
        d: Dict[str, Any] = {
            "name": name,
            "kind": rec.kind,
            "shape": list(rec.shape),
            "data": place(rec.data),
        }
        if rec.kind == "packed":
            d["bits"] = rec.bits
            if rec.side:
                d["side"] = {k: [list(t.shape), *place(t)] for k, t in rec.side.items()}
        descriptors.append(d)
    try:
        text = json.dumps(
            {"meta": meta, "payload_bytes": offset, "tensors": descriptors}, separators=(",", ":")
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"meta is not JSON-serialisable: {e}") from e
    header = zlib.compress(text.encode("utf-8"), 9)
    if len(header) >= 1 << 32:
        raise ValueError(f"header of {len(header)} bytes does not fit the uint32 length field")

    def chunks() -> Iterator[bytes]:
        yield MAGIC
        yield _U32.pack(len(header))
        yield header
        for t in arrays:
            yield _le_bytes(t)

    _write_atomic(path, chunks())
    return path


# --------------------------------------------------------------------------- reading


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_shape(shape: Any, what: str) -> Tuple[int, ...]:
    if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
        raise ValueError(f"{what}: bad shape {shape!r}")
    return tuple(shape)


def _check_span(span: Any, expected_len: int, area: int, what: str) -> Tuple[int, int]:
    """Validate ``[offset, length]`` of one array against its expected size and the payload area."""
    if not (isinstance(span, list) and len(span) == 2 and all(_is_int(v) for v in span)):
        raise ValueError(f"{what}: bad [offset, length] {span!r}")
    off, length = span
    if length != expected_len:
        raise ValueError(
            f"{what}: payload length {length} does not match its shape (expected {expected_len})"
        )
    if off < 0 or off + length > area:
        raise ValueError(
            f"{what}: payload offsets [{off}, {off + length}) out of range of the {area}-byte payload area"
        )
    return off, length


def _float32(payload: memoryview, off: int, shape: Tuple[int, ...]) -> torch.Tensor:
    n = _shape_numel(shape)
    a = np.frombuffer(payload[off : off + 4 * n], dtype="<f4").astype(np.float32)  # astype copies
    return torch.from_numpy(a).view(shape)


def _uint8(payload: memoryview, off: int, length: int) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(payload[off : off + length], dtype=np.uint8).copy())


def _decode(header: Any, payload: memoryview) -> Tuple[Dict[str, Any], Dict[str, TensorRecord]]:
    """Build records from a parsed header; ValueError describes the first inconsistency."""
    if not isinstance(header, dict) or not isinstance(header.get("meta"), dict):
        raise ValueError("header has no meta dict")
    descriptors = header.get("tensors")
    if not isinstance(descriptors, list):
        raise ValueError("header has no tensor list")
    area = len(payload)
    records: Dict[str, TensorRecord] = {}
    for i, d in enumerate(descriptors):
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"]:
            raise ValueError(f"tensor #{i} has no name")
        name = d["name"]
        what = f"tensor {name!r}"
        if name in records:
            raise ValueError(f"{what} appears twice")
        kind = d.get("kind")
        shape = _check_shape(d.get("shape"), what)
        numel = _shape_numel(shape)
        if kind == "float":
            off, _ = _check_span(d.get("data"), 4 * numel, area, what)
            records[name] = TensorRecord("float", shape, _float32(payload, off, shape))
        elif kind == "packed":
            bits = d.get("bits")
            if not _is_int(bits) or not 1 <= bits <= 8:
                raise ValueError(f"{what}: bits must be in 1..8, got {bits!r}")
            off, length = _check_span(d.get("data"), packed_length(numel, bits), area, what)
            side = {}
            side_desc = d.get("side", {})
            if not isinstance(side_desc, dict):
                raise ValueError(f"{what}: bad side arrays {side_desc!r}")
            for k, entry in side_desc.items():
                sub = f"{what} side array {k!r}"
                if not (isinstance(entry, list) and len(entry) == 3):
                    raise ValueError(f"{sub}: bad descriptor {entry!r}")
                s_shape = _check_shape(entry[0], sub)
                s_off, _ = _check_span(entry[1:], 4 * _shape_numel(s_shape), area, sub)
                side[k] = _float32(payload, s_off, s_shape)
            records[name] = TensorRecord("packed", shape, _uint8(payload, off, length), bits, side)
        else:
            raise ValueError(f"{what}: unknown kind {kind!r}")
    return header["meta"], records


def read_packed_file(path) -> Tuple[Dict[str, Any], Dict[str, TensorRecord]]:
    """Read a file written by ``write_packed_file``, validating framing, CRC and header.

    Args:
        path: the packed model file.
    Returns:
        ``(meta, tensors)`` with tensors in the order they were written; float data and side
        arrays are float32, packed data uint8, all on the CPU.
    Raises:
        PackedFileError: naming ``path``, when the file is missing, not a packed model file,
            truncated, corrupt (CRC mismatch) or has a malformed header.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PackedFileError(f"packed model file {path} does not exist") from None
    except OSError as e:
        raise PackedFileError(f"packed model file {path} cannot be read: {e}") from e
    size = len(data)
    if data[: len(MAGIC)] != MAGIC:
        if size < len(MAGIC) and MAGIC.startswith(data):
            raise PackedFileError(f"packed model file {path} is truncated: only {size} bytes")
        raise PackedFileError(
            f"{path} is not a packed model file (starts with {data[: len(MAGIC)]!r}, expected {MAGIC!r})"
        )
    if size < _FIXED_BYTES:
        raise PackedFileError(f"packed model file {path} is truncated: only {size} bytes")
    (header_len,) = _U32.unpack_from(data, len(MAGIC))
    body = len(MAGIC) + _U32.size + header_len  # start of the payload area
    if body + _U32.size > size:
        raise PackedFileError(
            f"packed model file {path} is truncated: the header alone takes {header_len} bytes "
            f"but the file has {size}"
        )
    # Parse before checking the CRC so that a short file is reported as truncated, but report
    # a parse failure only after the CRC: a damaged header is corruption, not a format bug.
    header, parse_error = None, None
    try:
        header = json.loads(zlib.decompress(data[len(MAGIC) + _U32.size : body]))
    except (zlib.error, ValueError) as e:  # JSON and UTF-8 errors are ValueErrors
        parse_error = e
    total = header.get("payload_bytes") if isinstance(header, dict) else None
    if _is_int(total) and total >= 0:
        expected = body + total + _U32.size
        if size < expected:
            raise PackedFileError(
                f"packed model file {path} is truncated: the header describes {expected} bytes, "
                f"the file has {size}"
            )
        if size > expected:
            raise PackedFileError(
                f"packed model file {path} is corrupt: {size - expected} unexpected trailing bytes"
            )
    (stored,) = _U32.unpack_from(data, size - _U32.size)
    computed = zlib.crc32(memoryview(data)[: size - _U32.size])
    if stored != computed:
        raise PackedFileError(
            f"packed model file {path} is corrupt: CRC32 mismatch "
            f"(stored {stored:#010x}, computed {computed:#010x})"
        )
    if parse_error is not None:
        raise PackedFileError(f"packed model file {path}: header is not parseable ({parse_error})")
    try:
        return _decode(header, memoryview(data)[body : size - _U32.size])
    except ValueError as e:
        raise PackedFileError(f"packed model file {path}: malformed header: {e}") from None
