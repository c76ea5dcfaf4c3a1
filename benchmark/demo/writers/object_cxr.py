"""Object-CXR (JF Healthcare, MIDL 2020 foreign-object challenge) in its official layout::

    object-CXR/
      train.csv   image_name,annotation
      dev.csv     image_name,annotation
      train/00001.jpg ...
      dev/08001.jpg ...

``annotation`` is empty for an image without objects, else objects separated by ``;``, each
``TYPE x1 y1 x2 y2 ...`` in pixel coordinates: 0 = rectangle (two corners), 1 = ellipse (its
bounding box corners), 2 = polygon (x y x y ...). Every annotated object is drawn as a bright
radio-opaque shape with exactly that outline.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..drawing import OBJECT_ELLIPSE, OBJECT_POLYGON, OBJECT_RECTANGLE, draw_radiograph
from ..files import csv_text, jpeg_bytes, write_atomic
from .common import DemoContext, quota_choice, radiograph_truth

FOLDER = "object-CXR"
HEADER = ("image_name", "annotation")
SPLITS = {"train": (400, 10, 1), "dev": (100, 6, 8001)}  # split: (images at scale 1, minimum, first number)
KIND_SHARES = {OBJECT_RECTANGLE: 0.35, OBJECT_ELLIPSE: 0.30, OBJECT_POLYGON: 0.35}


@dataclass(frozen=True)
class ObjectCxrImage:
    split: str
    name: str
    object_kinds: tuple[int, ...]


def plan(ctx: DemoContext) -> list[ObjectCxrImage]:
    rng = ctx.rng(FOLDER)
    drafts = []
    for split, (full, minimum, first) in SPLITS.items():
        n = ctx.count(full, minimum)
        with_objects = quota_choice(rng, n, {True: 0.5, False: 0.5})
        drafts += [(split, f"{first + i:05d}.jpg", int(rng.integers(1, 4)) if with_objects[i] else 0) for i in range(n)]
    kinds = iter(quota_choice(rng, sum(d[2] for d in drafts), KIND_SHARES))
    return [ObjectCxrImage(split, name, tuple(next(kinds) for _ in range(count))) for split, name, count in drafts]


def write(ctx: DemoContext, images: list[ObjectCxrImage]) -> dict:
    rows: dict[str, list[list[str]]] = {split: [] for split in SPLITS}
    truth = {}
    for index, image in enumerate(images):
        picture = draw_radiograph(ctx.image_rng(FOLDER, index), ctx.image_size, object_kinds=image.object_kinds)
        write_atomic(ctx.root / FOLDER / image.split / image.name, jpeg_bytes(picture.pixels))
        rows[image.split].append([image.name, ";".join(obj.annotation() for obj in picture.objects)])
        truth[f"{image.split}/{image.name}"] = {
            "objects": [
                {"type": obj.kind, "points": list(obj.points), "box": list(obj.box())} for obj in picture.objects
            ],
            **radiograph_truth(picture),
        }
        ctx.advance(1)
    for split, split_rows in rows.items():
        write_atomic(ctx.root / FOLDER / f"{split}.csv", csv_text(HEADER, split_rows))
    return {"dataset": FOLDER, "images": truth}
