import json
import math
import os
import struct
import zlib

import pytest
import torch

from allinone.quant import pack as pk
from allinone.quant.lsq import lsq_codes, offset_codes, quant_levels, unoffset_codes
from allinone.quant.pack import (
    MAGIC,
    PackedFileError,
    TensorRecord,
    pack_bits,
    payload_bytes,
    read_packed_file,
    unpack_bits,
    write_packed_file,
)


def reference_pack(values, bits):
    """Pure-Python bit writer: bit j of value i goes to stream bit i*bits + j, LSB first in each byte."""
    out = bytearray(math.ceil(len(values) * bits / 8))
    pos = 0
    for v in values:
        for j in range(bits):
            if (v >> j) & 1:
                out[pos // 8] |= 1 << (pos % 8)
            pos += 1
    return bytes(out)


def reference_unpack(data, bits, numel):
    """Pure-Python bit reader matching ``reference_pack``."""
    values = []
    for i in range(numel):
        v = 0
        for j in range(bits):
            pos = i * bits + j
            v |= ((data[pos // 8] >> (pos % 8)) & 1) << j
        values.append(v)
    return values


def random_codes(numel, bits, seed):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 2**bits, (numel,), generator=g)
    if numel >= 2:  # make sure both ends of the range are exercised
        codes[0], codes[-1] = 0, 2**bits - 1
    return codes


# --------------------------------------------------------------------------- bit packing


def test_bit_order_is_little_endian_within_the_stream():
    # 2 bits: 1 -> stream bits 0..1 = (1, 0), 2 -> bits 2..3 = (0, 1), 3 -> bits 4..5 = (1, 1)
    assert pack_bits(torch.tensor([1, 2, 3]), 2).tolist() == [0b00111001]
    # 3 bits, the third code straddles bytes: 5 -> (1,0,1), 6 -> (0,1,1), 7 -> (1,1,1)
    assert pack_bits(torch.tensor([5, 6, 7]), 3).tolist() == [0b11110101, 0b00000001]
    assert reference_pack([5, 6, 7], 3) == bytes([0b11110101, 0b00000001])


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("numel", [0, 1, 3, 7, 13, 100, 1001])
def test_pack_unpack_round_trip_matches_bruteforce(bits, numel):
    codes = random_codes(numel, bits, seed=bits * 1000 + numel)
    packed = pack_bits(codes, bits)
    assert packed.dtype == torch.uint8 and packed.shape == (math.ceil(numel * bits / 8),)
    assert bytes(packed.tolist()) == reference_pack(codes.tolist(), bits)
    out = unpack_bits(packed, bits, numel)
    assert out.dtype == torch.int64
    assert out.tolist() == codes.tolist() == reference_unpack(packed.tolist(), bits, numel)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])
def test_pack_reads_any_integer_dtype_in_row_major_order(dtype):
    codes = random_codes(4 * 5 * 3, 3, seed=7).view(4, 5, 3)
    packed = pack_bits(codes.to(dtype), 3)
    assert bytes(packed.tolist()) == reference_pack(codes.flatten().tolist(), 3)
    assert torch.equal(pack_bits(codes.transpose(0, 2), 3), pack_bits(codes.transpose(0, 2).contiguous(), 3))


def test_pack_validates_bits_range_and_dtype():
    with pytest.raises(ValueError, match=r"\[0, 3\].*\[0, 4\]"):
        pack_bits(torch.tensor([0, 4, 1]), 2)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        pack_bits(torch.tensor([1, -1]), 4)
    for bad in (0, 9, -1, True, 2.0):
        with pytest.raises(ValueError, match="bits must be an integer in 1..8"):
            pack_bits(torch.tensor([0]), bad)
        with pytest.raises(ValueError, match="bits must be an integer in 1..8"):
            unpack_bits(torch.zeros(1, dtype=torch.uint8), bad, 1)
    with pytest.raises(ValueError, match="integer dtype"):
        pack_bits(torch.tensor([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="take 2 bytes, got 3"):
        unpack_bits(torch.zeros(3, dtype=torch.uint8), 3, 5)
    with pytest.raises(ValueError, match="1-D uint8"):
        unpack_bits(torch.zeros(2, dtype=torch.int8), 3, 5)


# --------------------------------------------------------------------------- symmetric codes


@pytest.mark.parametrize("bits", range(1, 9))
def test_offset_codes_round_trip(bits):
    grid = [-1, 1] if bits == 1 else list(range(-quant_levels(bits), quant_levels(bits) + 1))
    codes = torch.tensor(grid * 3, dtype=torch.int8).view(3, -1)
    unsigned = offset_codes(codes, bits)
    assert unsigned.shape == codes.shape
    # The map is the documented one, hence an increasing bijection onto 0..len(grid)-1 < 2^bits.
    expected = [(c + 1) // 2 if bits == 1 else c + 2 ** (bits - 1) - 1 for c in grid]
    assert unsigned[0].tolist() == expected == list(range(len(grid)))
    assert int(unsigned.max()) < 2**bits
    assert torch.equal(unoffset_codes(unsigned, bits), codes.long())
    with pytest.raises(ValueError):
        offset_codes(torch.tensor([grid[-1] + 1]), bits)
    with pytest.raises(ValueError):
        unoffset_codes(torch.tensor([len(grid)]), bits)
    if bits == 1:
        with pytest.raises(ValueError, match="-1 or 1"):
            offset_codes(torch.tensor([0]), 1)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_lsq_codes_survive_offset_pack_unpack(bits):
    torch.manual_seed(bits)
    w = torch.randn(17, 9)
    codes = lsq_codes(w, torch.tensor(0.3), bits)
    rec = TensorRecord.from_codes(offset_codes(codes, bits), bits, side={"scale": torch.tensor(0.3)})
    assert torch.equal(unoffset_codes(rec.unpacked_codes(), bits), codes.long())


# --------------------------------------------------------------------------- file container


def mixed_tensors():
    g = torch.Generator().manual_seed(0)
    special = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 1e-45, 3.0])
    codebook_idx = torch.randint(0, 8, (6, 10), generator=g)
    return {
        "enc.norm.weight": TensorRecord.from_float(torch.randn(24, generator=g)),
        "enc.special": TensorRecord.from_float(special),
        "enc.scalar": TensorRecord.from_float(torch.tensor(2.5)),
        "enc.empty": TensorRecord.from_float(torch.zeros(0, 3)),
        "enc.double": TensorRecord.from_float(torch.randn(3, 2, dtype=torch.float64, generator=g)),
        "enc.w_scalar": TensorRecord.from_codes(
            torch.randint(0, 4, (8, 13), generator=g), 2, side={"scale": torch.tensor(0.125)}
        ),
        "enc.w_channel": TensorRecord.from_codes(
            torch.randint(0, 16, (5, 7), generator=g), 4, side={"scale": torch.rand(5, 1, generator=g)}
        ),
        "enc.w_group": TensorRecord.from_codes(
            torch.randint(0, 8, (4, 12), generator=g), 3, side={"scale": torch.rand(4, 3, generator=g)}
        ),
        "enc.w_codebook": TensorRecord.from_codes(
            codebook_idx,
            3,
            side={"codebook": torch.randn(8, generator=g), "scale": torch.rand(6, generator=g)},
        ),
        "enc.w_1bit": TensorRecord.from_codes(torch.randint(0, 2, (3, 3, 3), generator=g), 1),
        "enc.w_8bit": TensorRecord.from_codes(torch.randint(0, 256, (11,), generator=g), 8),
        "enc.w_empty": TensorRecord.from_codes(torch.zeros(0, 4, dtype=torch.long), 5, side={}),
    }


def same_bits(a, b):
    """Bit-exact float32 comparison (NaN payloads and -0.0 included)."""
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(torch.int32), b.view(torch.int32))


def test_write_read_round_trip_is_bit_exact(tmp_path):
    tensors = mixed_tensors()
    meta = {
        "model": "conformer",
        "subnet": {"depth": 12, "bits": [2, 4]},
        "ratio": 14.5,
        "ok": True,
        "x": None,
    }
    path = write_packed_file(tmp_path / "model.aio", meta, tensors)
    meta2, tensors2 = read_packed_file(path)
    assert meta2 == meta
    assert list(tensors2) == list(tensors)
    for name, rec in tensors.items():
        got = tensors2[name]
        assert (got.kind, got.shape, got.bits) == (rec.kind, rec.shape, rec.bits), name
        assert sorted(got.side) == sorted(rec.side), name
        for k in rec.side:
            assert same_bits(got.side[k], rec.side[k]), (name, k)
        if rec.kind == "float":
            assert same_bits(got.data, rec.data), name
        else:
            assert torch.equal(got.data, rec.data), name
            assert torch.equal(got.unpacked_codes(), rec.unpacked_codes()), name
    assert torch.equal(
        tensors2["enc.w_codebook"].unpacked_codes(),
        torch.randint(0, 8, (6, 10), generator=torch.Generator().manual_seed(0)),
    )
    assert [p.name for p in tmp_path.iterdir()] == ["model.aio"]  # no temporary left behind


def test_file_size_is_payload_plus_header_and_framing(tmp_path):
    tensors = mixed_tensors()
    path = write_packed_file(tmp_path / "m.aio", {}, tensors)
    # Brute-force count: float32 data is 4 bytes an entry, packed data ceil(numel*bits/8).
    expected = 0
    for rec in tensors.values():
        n = math.prod(rec.shape)
        expected += 4 * n if rec.kind == "float" else math.ceil(n * rec.bits / 8)
        expected += sum(4 * t.numel() for t in rec.side.values())
    assert payload_bytes(tensors) == expected
    data = path.read_bytes()
    (header_len,) = struct.unpack_from("<I", data, 8)
    assert data[:8] == MAGIC
    assert len(data) == 8 + 4 + header_len + expected + 4
    assert struct.unpack_from("<I", data, len(data) - 4)[0] == zlib.crc32(data[:-4])
    header = json.loads(zlib.decompress(data[12 : 12 + header_len]))
    assert header["payload_bytes"] == expected
    # Payloads are concatenated in record order without padding.
    desc = {d["name"]: d for d in header["tensors"]}
    assert desc["enc.norm.weight"]["data"] == [0, 96]
    assert desc["enc.special"]["data"] == [96, 24]


def test_records_are_validated():
    with pytest.raises(ValueError, match=r"uint8 of shape \(3,\)"):
        TensorRecord("packed", (2, 5), torch.zeros(4, dtype=torch.uint8), 2)
    with pytest.raises(ValueError, match="float32"):
        TensorRecord("float", (2,), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="kind"):
        TensorRecord("int", (2,), torch.zeros(2))
    with pytest.raises(ValueError, match="side array 'scale' must be a float32"):
        TensorRecord(
            "packed", (1,), torch.zeros(1, dtype=torch.uint8), 1, {"scale": torch.ones(1, dtype=torch.int32)}
        )
    with pytest.raises(ValueError, match="packed record"):
        TensorRecord.from_float(torch.ones(2)).unpacked_codes()


def test_bad_inputs_to_write_leave_no_file(tmp_path):
    path = tmp_path / "m.aio"
    rec = TensorRecord.from_float(torch.ones(2))
    with pytest.raises(ValueError, match="JSON"):
        write_packed_file(path, {"obj": object()}, {"a": rec})
    rec.data = torch.ones(3)  # made inconsistent after construction
    with pytest.raises(ValueError, match="tensor 'a'"):
        write_packed_file(path, {}, {"a": rec})
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- damaged files


@pytest.fixture
def good_file(tmp_path):
    path = write_packed_file(tmp_path / "model-2bit.aio", {"bits": 2}, mixed_tensors())
    data = path.read_bytes()
    (header_len,) = struct.unpack_from("<I", data, 8)
    return path, data, header_len


@pytest.mark.parametrize("where", ["header", "payload_start", "payload_end", "crc"])
def test_flipped_byte_is_reported_as_corrupt(good_file, where):
    path, data, header_len = good_file
    pos = {"header": 12 + header_len // 2, "payload_start": 12 + header_len, "payload_end": len(data) - 5}
    pos = pos.get(where, len(data) - 2)
    damaged = bytearray(data)
    damaged[pos] ^= 0x40
    path.write_bytes(bytes(damaged))
    with pytest.raises(PackedFileError, match=r"model-2bit\.aio is corrupt: CRC32 mismatch"):
        read_packed_file(path)


def test_truncated_file_is_reported_with_its_path(good_file):
    path, data, header_len = good_file
    for cut in [
        0,
        3,
        8,
        11,
        12,
        12 + header_len // 2,
        12 + header_len,
        12 + header_len + 50,
        len(data) - 4,
        len(data) - 1,
    ]:
        path.write_bytes(data[:cut])
        with pytest.raises(PackedFileError, match=r"model-2bit\.aio is truncated") as e:
            read_packed_file(path)
        assert isinstance(e.value, ValueError)


def test_trailing_bytes_are_reported(good_file):
    path, data, _ = good_file
    path.write_bytes(data + b"\0")
    with pytest.raises(PackedFileError, match=r"model-2bit\.aio is corrupt: 1 unexpected trailing"):
        read_packed_file(path)


def test_wrong_magic_and_missing_file(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.ones(3)}, path)
    with pytest.raises(PackedFileError, match=r"weights\.pt is not a packed model file"):
        read_packed_file(path)
    path.write_bytes(b"AIOPACK\x02" + bytes(20))  # a future format version
    with pytest.raises(PackedFileError, match="not a packed model file"):
        read_packed_file(path)
    with pytest.raises(PackedFileError, match=r"nope\.aio does not exist"):
        read_packed_file(tmp_path / "nope.aio")


def raw_file(header: bytes, payload: bytes) -> bytes:
    """A file with valid framing and CRC around an arbitrary header."""
    body = MAGIC + struct.pack("<I", len(header)) + header + payload
    return body + struct.pack("<I", zlib.crc32(body))


def test_unparseable_header_with_valid_crc(tmp_path):
    path = tmp_path / "bad.aio"
    path.write_bytes(raw_file(b"not zlib at all", b""))
    with pytest.raises(PackedFileError, match=r"bad\.aio: header is not parseable"):
        read_packed_file(path)
    path.write_bytes(raw_file(zlib.compress(b"{not json"), b""))
    with pytest.raises(PackedFileError, match=r"bad\.aio: header is not parseable"):
        read_packed_file(path)


@pytest.mark.parametrize(
    "data_span, side_span, problem",
    [
        ([6, 4], [0, 4], "out of range"),
        ([-1, 4], [4, 4], "out of range"),
        ([0, 4], [8, 4], "out of range"),
        ([0, 3], [4, 4], "does not match its shape"),
    ],
)
def test_payload_offsets_are_checked(tmp_path, data_span, side_span, problem):
    path = tmp_path / "bad.aio"
    header = {
        "meta": {},
        "payload_bytes": 8,
        "tensors": [
            {
                "name": "w",
                "kind": "packed",
                "shape": [4, 4],
                "bits": 2,
                "data": data_span,
                "side": {"scale": [[], *side_span]},
            }
        ],
    }
    path.write_bytes(raw_file(zlib.compress(json.dumps(header).encode()), bytes(8)))
    with pytest.raises(PackedFileError, match=rf"bad\.aio: malformed header: tensor 'w'.*{problem}"):
        read_packed_file(path)


def test_well_formed_handmade_file_reads(tmp_path):
    # The same shape of header with valid spans decodes: the failures above come from the spans.
    path = tmp_path / "ok.aio"
    header = {
        "meta": {},
        "payload_bytes": 8,
        "tensors": [
            {
                "name": "w",
                "kind": "packed",
                "shape": [4, 4],
                "bits": 2,
                "data": [0, 4],
                "side": {"scale": [[], 4, 4]},
            }
        ],
    }
    path.write_bytes(
        raw_file(zlib.compress(json.dumps(header).encode()), bytes([0b11100100] * 4) + struct.pack("<f", 0.5))
    )
    _, recs = read_packed_file(path)
    assert recs["w"].unpacked_codes().tolist() == [[0, 1, 2, 3]] * 4
    assert recs["w"].side["scale"].item() == 0.5 and recs["w"].side["scale"].shape == ()


# --------------------------------------------------------------------------- atomic writes


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = write_packed_file(tmp_path / "m.aio", {"v": 1}, mixed_tensors())
    before = path.read_bytes()
    calls = []
    real = pk._le_bytes

    def fail_on_third_array(t):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the process were interrupted mid-write
        return real(t)

    monkeypatch.setattr(pk, "_le_bytes", fail_on_third_array)
    with pytest.raises(KeyboardInterrupt):
        write_packed_file(path, {"v": 2}, mixed_tensors())
    assert len(calls) == 3  # the failure did happen after part of the payload was written
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.aio"]
    assert read_packed_file(path)[0] == {"v": 1}

    monkeypatch.setattr(pk, "_le_bytes", real)

    def disk_full(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="disk full"):
        write_packed_file(path, {"v": 3}, mixed_tensors())
    with pytest.raises(OSError, match="disk full"):
        write_packed_file(tmp_path / "new.aio", {"v": 3}, mixed_tensors())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.aio"]


# --------------------------------------------------------------------------- size overhead


def conformer_like_model(layers=12, d=104, ffn=416, kernel=31, bits=2):
    """~300 tensors, ~3M quantized weights with per-tensor steps, float biases and norms."""
    g = torch.Generator().manual_seed(0)
    weights = {
        "feed_forward1.in_proj": (ffn, d),
        "feed_forward1.out_proj": (d, ffn),
        "self_attn.in_proj": (3 * d, d),
        "self_attn.out_proj": (d, d),
        "conv_module.pointwise_conv1": (2 * d, d),
        "conv_module.depthwise_conv": (d, kernel),
        "conv_module.pointwise_conv2": (d, d),
        "feed_forward2.in_proj": (ffn, d),
        "feed_forward2.out_proj": (d, ffn),
    }
    norms = ["norm_ff1", "norm_mha", "norm_conv", "norm_ff2", "norm_final"]
    tensors = {}
    for i in range(layers):
        p = f"encoder.layers.{i}."
        for name, shape in weights.items():
            codes = torch.randint(0, 2**bits, shape, generator=g)
            tensors[p + name + ".weight"] = TensorRecord.from_codes(
                codes, bits, side={"scale": torch.rand((), generator=g)}
            )
            tensors[p + name + ".bias"] = TensorRecord.from_float(torch.randn(shape[0], generator=g))
        for n in norms:
            tensors[p + n + ".weight"] = TensorRecord.from_float(torch.randn(d, generator=g))
            tensors[p + n + ".bias"] = TensorRecord.from_float(torch.randn(d, generator=g))
    return tensors


def test_header_overhead_is_well_under_one_percent(tmp_path):
    tensors = conformer_like_model()
    quantized = sum(r.numel for r in tensors.values() if r.kind == "packed")
    assert len(tensors) >= 300 and 2.8e6 < quantized < 3.3e6
    meta = {"model": "conformer", "bits": 2, "subnet": {"depth": 12, "ffn": 416}}
    path = write_packed_file(tmp_path / "m.aio", meta, tensors)
    overhead = path.stat().st_size - payload_bytes(tensors)
    ratio = overhead / payload_bytes(tensors)
    print(f"{len(tensors)} tensors, {quantized} codes, overhead {overhead} B = {100 * ratio:.3f}% of payload")
    # Offsets are stored explicitly (about two thirds of the compressed header); still well under 1%.
    assert ratio < 0.005
    _, back = read_packed_file(path)
    name = "encoder.layers.7.self_attn.in_proj.weight"
    assert torch.equal(back[name].unpacked_codes(), tensors[name].unpacked_codes())
