#!/usr/bin/env python3
"""make_hostile.py -- write the hostile-file corpus of the file readers.

    python3 tools/fuzz/make_hostile.py [DIR]     (default spec/fixtures/hostile)

Each file in DIR breaks one rule of its format; spec/io/hostile_spec.lua
checks that Ember refuses each one with a clear error, and `make
fuzz-files` starts libFuzzer from them.  DIR/seeds/ holds small *valid*
files of every kind, the baseline each hostile file departs from (the spec
checks that they load, and the fuzzers mutate them too).

The output is deterministic (gzip with mtime 0, fixed bytes), so running the
script again rewrites the same files.
"""
import gzip
import json
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "spec/fixtures/hostile"


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, 9, mtime=0)


# {==================================================================
# safetensors: [u64 header length][JSON header][data]
# ===================================================================

def st_raw(header_bytes, data=b""):
    return struct.pack("<Q", len(header_bytes)) + header_bytes + data


def st(header, data=b""):
    return st_raw(json.dumps(header, separators=(",", ":")).encode(), data)


F32x4 = struct.pack("<4f", 1, 2, 3, 4)
ST = {
    # seed: two tensors and metadata, all valid
    "seeds/st_valid.safetensors": st(
        {"__metadata__": {"format": "pt"},
         "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
         "b": {"dtype": "U8", "shape": [3], "data_offsets": [16, 19]}},
        F32x4 + b"\x01\x02\x03"),
    "seeds/st_f16_bool.safetensors": st(
        {"h": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
         "m": {"dtype": "BOOL", "shape": [2], "data_offsets": [4, 6]}},
        b"\x00\x3c\x00\xc0\x01\x00"),
    # data_offsets reaching past the end of the file
    "st_past_end.safetensors": st(
        {"a": {"dtype": "F32", "shape": [100], "data_offsets": [0, 400]}},
        F32x4),
    # 2^40 elements declared in a file of about 100 bytes
    "st_huge_shape.safetensors": st(
        {"a": {"dtype": "U8", "shape": [1 << 40], "data_offsets": [0, 1 << 40]}},
        b"\x00" * 8),
    # two tensors sharing bytes
    "st_overlap.safetensors": st(
        {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
         "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
        F32x4),
    # header length larger than the file
    "st_header_past_end.safetensors": struct.pack("<Q", 4096) + b'{"a":1}',
    # header length absurdly large (2^63)
    "st_header_huge.safetensors": struct.pack("<Q", 1 << 63) + b"{}",
    # a file shorter than the 8-byte length
    "st_short.safetensors": b"\x10\x00\x00",
    # bad JSON: a missing closing brace
    "st_bad_json.safetensors": st_raw(
        b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}', F32x4),
    # bad JSON: garbage after the object
    "st_trailing_json.safetensors": st_raw(b'{} x', b""),
    # a header that is not an object
    "st_not_object.safetensors": st_raw(b'[1,2,3]', b""),
    # deep nesting where a tensor object belongs
    "st_deep_nesting.safetensors": st_raw(b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}"),
    # invalid UTF-8 in a name
    "st_bad_utf8.safetensors": st_raw(
        b'{"\xff\xfe":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\x00"),
    # the same name twice
    "st_duplicate_name.safetensors": st_raw(
        b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
        b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\x00\x01"),
    # the same metadata key twice
    "st_duplicate_meta.safetensors": st_raw(
        b'{"__metadata__":{"k":"1","k":"2"}}', b""),
    # dtype size x shape product overflows 64 bits
    "st_shape_overflow.safetensors": st(
        {"a": {"dtype": "F64", "shape": [1 << 32, 1 << 32, 16],
               "data_offsets": [0, 0]}}),
    # a negative shape entry
    "st_negative_shape.safetensors": st(
        {"a": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}},
        F32x4),
    # a shape entry past int64
    "st_shape_past_int64.safetensors": st_raw(
        b'{"a":{"dtype":"U8","shape":[99999999999999999999],'
        b'"data_offsets":[0,1]}}', b"\x00"),
    # offsets whose length is not shape x dtype size (10 bytes for 3 F32)
    "st_offsets_mismatch.safetensors": st(
        {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 10]}},
        F32x4),
    # offsets that end before they begin
    "st_offsets_reversed.safetensors": st(
        {"a": {"dtype": "U8", "shape": [0], "data_offsets": [8, 4]}},
        b"\x00" * 8),
    # an unknown dtype
    "st_bad_dtype.safetensors": st(
        {"a": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}},
        F32x4),
    # more dimensions than Ember has
    "st_too_many_dims.safetensors": st(
        {"a": {"dtype": "U8", "shape": [1] * 9, "data_offsets": [0, 1]}},
        b"\x00"),
    # a BOOL tensor holding a 2
    "st_bad_bool.safetensors": st(
        {"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}},
        b"\x01\x02"),
    # a tensor object missing its data_offsets
    "st_missing_field.safetensors": st(
        {"a": {"dtype": "U8", "shape": [1]}}, b"\x00"),
}

# }==================================================================

# {==================================================================
# IDX: 00 00 type rank, big-endian u32 dims, big-endian data
# ===================================================================

def idx(type_byte, dims, data, rank=None):
    rank = len(dims) if rank is None else rank
    return (bytes([0, 0, type_byte, rank]) +
            b"".join(struct.pack(">I", d) for d in dims) + data)


U8_2x3 = idx(0x08, [2, 3], bytes(range(6)))
garbage = bytes((i * 37 + 11) % 256 for i in range(64))
# 200 bytes that deflate cannot shrink much (a linear congruential sequence)
noise = bytes((1103515245 * i + 12345) >> 16 & 0xFF for i in range(200))
gz_u8 = gz(U8_2x3)
# a gzip file whose CRC does not match its (intact) data
gz_bad_crc = gz_u8[:-8] + bytes(b ^ 0xFF for b in gz_u8[-8:-4]) + gz_u8[-4:]

IDX = {
    "seeds/idx_valid_u8.idx": U8_2x3,
    "seeds/idx_valid_u8.idx.gz": gz_u8,
    "seeds/idx_valid_f32.idx": idx(0x0D, [2], struct.pack(">2f", 1.5, -2)),
    "seeds/idx_valid_i16.idx.gz": gz(idx(0x0B, [3], struct.pack(">3h", 1, -2, 300))),
    # magic not starting with 00 00
    "idx_bad_magic.idx": b"\x12\x34" + U8_2x3[2:],
    # an unknown type byte
    "idx_bad_type.idx": idx(0x0A, [2, 3], bytes(6)),
    # rank 0
    "idx_rank0.idx": idx(0x08, [], b""),
    # rank 255
    "idx_rank_huge.idx": idx(0x08, [1] * 4, b"\x00", rank=255),
    # the dims say 2^64 elements of float64
    "idx_dims_overflow.idx": idx(0x0E, [0xFFFFFFFF, 0xFFFFFFFF, 2], b""),
    # 1 GiB declared in a plain file of 20 bytes
    "idx_huge_claim.idx": idx(0x08, [1 << 15, 1 << 15], bytes(8)),
    # 2 GiB declared in a gzip file of a few dozen bytes
    "idx_huge_claim.idx.gz": gz(idx(0x08, [1 << 31], bytes(16))),
    # the header promises 3 dims, the file ends after one
    "idx_truncated_header.idx": idx(0x08, [2], b"", rank=3),
    # data shorter than the dims say
    "idx_truncated_data.idx": idx(0x08, [2, 3], bytes(4)),
    "idx_truncated_data.idx.gz": gz(idx(0x08, [2, 3], bytes(4))),
    # a gzip stream cut short
    "idx_truncated_gzip.idx.gz": gz_u8[: len(gz_u8) // 2],
    # a gzip stream cut short in the middle of the data
    "idx_truncated_gzip_data.idx.gz": gz(idx(0x08, [200], noise))[:120],
    # a gzip header followed by garbage instead of deflate data
    "idx_gzip_garbage.idx.gz": gz_u8[:10] + garbage,
    # a valid gzip stream of garbage (not IDX inside)
    "idx_gzip_of_garbage.idx.gz": gz(garbage),
    # a gzip stream whose CRC does not match
    "idx_gzip_bad_crc.idx.gz": gz_bad_crc,
    # bytes after the data, plain and inside gzip
    "idx_trailing.idx": U8_2x3 + b"\x00\x00\x00",
    "idx_trailing.idx.gz": gz(U8_2x3 + b"\x00\x00\x00"),
    # an empty file
    "idx_empty.idx": b"",
}

# }==================================================================


# {==================================================================
# Images: PNG (signature, chunks: length, type, data, CRC) and JPEG (the
# fixture spec/fixtures/images/cat/b.jpg, cut or with its size patched)
# ===================================================================

import zlib

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png(w, h, rows, color_type=2, depth=8):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    return (PNG_SIG + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 9)) +
            chunk(b"IEND", b""))


# 2x3 RGB: each row a filter byte 0 and 3 pixels
PNG_2x3 = png(3, 2, bytes([0] + list(range(9)) + [0] + list(range(90, 99))))
with open("spec/fixtures/images/cat/b.jpg", "rb") as f:
    JPEG = f.read()
SOF = JPEG.index(b"\xff\xc0")   # baseline frame header: FFC0 len(2) P(1) H(2) W(2)

IMG = {
    "seeds/img_valid.png": PNG_2x3,
    "seeds/img_valid.jpg": JPEG,
    # a signature that is neither PNG nor JPEG (a GIF's)
    "img_bad_magic.png": b"GIF89a" + bytes(20),
    # an empty file
    "img_empty.jpg": b"",
    # a PNG cut inside its IDAT chunk
    "img_truncated.png": PNG_2x3[:50],
    # a PNG whose IHDR claims 16384x16384 over a few bytes of data
    "img_huge_claim.png": png(16384, 16384, b"\x00" * 10),
    # a PNG over the 2^28-pixel limit (65536x65536)
    "img_over_limit.png": png(65536, 65536, b"\x00" * 10),
    # a PNG whose IHDR CRC is wrong
    "img_bad_crc.png": PNG_2x3[:29] + b"\x00\x00\x00\x00" + PNG_2x3[33:],
    # a PNG with an invalid bit depth for RGB
    "img_bad_depth.png": png(3, 2, bytes(20), depth=3),
    # a JPEG cut in the middle of its entropy-coded data
    "img_truncated.jpg": JPEG[:len(JPEG) * 2 // 3],
    # a JPEG whose frame header claims 16000x16000 (under the limit, but
    # far more than its bytes can encode)
    "img_huge_claim.jpg": JPEG[:SOF + 5] + struct.pack(">HH", 16000, 16000) + JPEG[SOF + 9:],
    # a JPEG start of image followed by garbage
    "img_garbage.jpg": b"\xff\xd8\xff" + garbage,
}

# }==================================================================


def main():
    os.makedirs(os.path.join(OUT, "seeds"), exist_ok=True)
    for table in (ST, IDX, IMG):
        for name, data in table.items():
            write(name, data)
    hostile = sum(1 for t in (ST, IDX, IMG) for n in t if not n.startswith("seeds/"))
    print("make_hostile: %d hostile files, %d seeds in %s" %
          (hostile, len(ST) + len(IDX) + len(IMG) - hostile, OUT))


if __name__ == "__main__":
    main()
