#!/usr/bin/python3
"""The image-folder fixture (spec/fixtures/images) and reference values for
spec/io/image_spec.lua (data.read_image, data.image_folder), from PIL and
PyTorch.

Regenerate (from the repository root, with a Python that has PIL and torch):

    OPENBLAS_CORETYPE=Haswell /usr/bin/python3 spec/reference/make_image_reference.py

It rewrites the images under spec/fixtures/images/<class>/ and writes
spec/reference/image_values.lua; the spec only reads those.

Pixels are deterministic (a seeded numpy generator).  The decoded 8-bit
values are PIL's (Image.convert("RGB") / convert("L")), except for the
16-bit grey PNG, which PIL cannot convert without clipping: its reference is
v * 255 / 65535 rounded, as libpng's png_set_scale_16 computes.  JPEG
decoders differ slightly (the spec compares JPEG with a tolerance).  The
resized values are torch.nn.functional.interpolate(x / 255, size,
mode="bilinear", align_corners=False, antialias=False).
"""
import os
import struct
import zlib

import numpy as np
import torch
from PIL import Image

import luavalues

DIR = "spec/fixtures/images"
EXTRA = "spec/fixtures/images_extra"   # files that are not part of the folder
SIZE = (4, 5)   # the resize target, {h, w}

rng = np.random.default_rng(20)


def pixels(h, w, c):
    return rng.integers(0, 256, size=(h, w, c) if c > 1 else (h, w), dtype=np.uint8)


def save(rel, img, **kw):
    path = os.path.join(DIR, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, **kw)
    return path


def adam7_png(arr):
    """An 8-bit RGB PNG of arr (H, W, 3), interlaced with Adam7."""
    h, w, _ = arr.shape
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                           (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        sub = arr[y0::dy, x0::dx]
        if sub.size == 0:
            continue   # an empty pass has no scanlines at all
        for row in sub:
            raw += b"\x00" + row.tobytes()

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


FILES = []   # (relative path, 8-bit RGB array, 8-bit L array, is_jpeg)


def from_pil(rel, img, **kw):
    path = save(rel, img, **kw)
    back = Image.open(path)
    FILES.append((rel, np.asarray(back.convert("RGB")), np.asarray(back.convert("L")),
                  rel.endswith(".jpg")))


def main():
    os.makedirs(EXTRA, exist_ok=True)
    # cat: RGB PNG (odd size), RGB JPEG, palette PNG with transparency
    from_pil("cat/a.png", Image.fromarray(pixels(5, 7, 3), "RGB"))
    smooth = np.stack(np.meshgrid(np.arange(8) * 30, np.arange(6) * 40, indexing="xy"), -1)
    rgb = np.concatenate([smooth, (smooth[..., :1] // 2)], -1).astype(np.uint8)
    from_pil("cat/b.jpg", Image.fromarray(rgb, "RGB"), quality=90)
    pal = Image.fromarray(pixels(6, 5, 1) % 4, "P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 100, 50])
    from_pil("cat/c.png", pal, transparency=1)
    # dog: grey PNG, RGBA PNG (alpha dropped), grey JPEG, 16-bit grey PNG
    from_pil("dog/a.png", Image.fromarray(pixels(4, 9, 1), "L"))
    from_pil("dog/b.png", Image.fromarray(pixels(3, 3, 4), "RGBA"))
    from_pil("dog/c.jpg",
             Image.fromarray((np.arange(49).reshape(7, 7) * 5).astype(np.uint8), "L"),
             quality=95)
    v16 = rng.integers(0, 65536, size=(2, 3)).astype(np.uint16)
    path = save("dog/d.png", Image.fromarray(v16, "I;16"))
    g = ((v16.astype(np.int64) * 255 + 32895) >> 16).astype(np.uint8)
    with open(path, "rb") as f:
        assert f.read(26)[24:26] == b"\x10\x00"   # 16-bit grey
    FILES.append(("dog/d.png", np.stack([g, g, g], -1), g, False))
    # an interlaced (Adam7) RGB PNG, which PIL cannot write: made here,
    # and checked against PIL's reading of it
    arr = pixels(5, 6, 3)
    path = os.path.join(DIR, "dog", "e.png")
    with open(path, "wb") as f:
        f.write(adam7_png(arr))
    assert (np.asarray(Image.open(path).convert("RGB")) == arr).all()
    FILES.append(("dog/e.png", arr, np.asarray(Image.open(path).convert("L")), False))
    # a CMYK JPEG (refused), outside the folder
    Image.new("CMYK", (4, 4), (10, 20, 30, 40)).save(os.path.join(EXTRA, "cmyk.jpg"))
    # not images: ignored by image_folder (extension), and a stray top-level file
    with open(os.path.join(DIR, "dog", "notes.txt"), "w") as f:
        f.write("not an image\n")

    out = []
    for rel, rgb8, grey8, jpeg in FILES:
        item = {"path": rel, "jpeg": jpeg, "h": rgb8.shape[0], "w": rgb8.shape[1]}
        for name, arr in (("rgb", rgb8), ("grey", grey8)):
            chw = torch.from_numpy(arr.copy())
            chw = chw.permute(2, 0, 1) if chw.dim() == 3 else chw.unsqueeze(0)
            x = chw.float() / 255
            item[name] = luavalues.flat(x)
            r = torch.nn.functional.interpolate(x.unsqueeze(0), size=SIZE, mode="bilinear",
                                                align_corners=False, antialias=False)[0]
            item[name + "_resized"] = luavalues.flat(r)
        out.append(item)
    luavalues.write("spec/reference/image_values.lua",
                    {"size": list(SIZE), "files": out}, "make_image_reference.py",
                    torch.__version__)


if __name__ == "__main__":
    main()
