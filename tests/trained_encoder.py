"""Test helper: a ResNet-50 briefly trained on the demo suite's training images.

The encoder-quality checks of [seg] and [det] need "an encoder briefly trained on the demo
images". This one starts from the same random initialisation as ``random:resnet50`` and is
trained for a few hundred steps, with every parameter and batch-norm statistic updated, to
predict where the findings are: a 1 x 1 convolution on each of ``layer2``/``layer3``/``layer4``
predicts the fraction of each cell covered by a finding (the union of the SIIM pneumothorax
RLE masks and of the Object-CXR object boxes of the TRAIN split only), with a binary
cross-entropy. The result is saved as a plain torchvision state dict, so the benchmark loads
it through the same checkpoint path as a user's file (format detection, every backbone
tensor loaded, sha256 recorded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.families.segmentation import boxes_mask, full_mask
from benchmark.images import read_grey
from benchmark.preprocess import resize_and_pad
from benchmark.registry import all_tasks
from benchmark.suites import demo_suite
from benchmark.task_data import load_task_data
from models.loading import load_encoder

LEVELS = (2, 3, 4)  # layer2 / layer3 / layer4 (strides 8, 16, 32)


def finding_masks(demo_root: Path, cache: Path, task_ids=("siim_seg", "objectcxr_det"), size: int = 96):
    """(N, size, size) uint8 images and float32 masks of the tasks' TRAIN images."""
    suite = demo_suite(demo_root, generate=False)
    tasks = all_tasks()
    images, masks = [], []
    for task_id in task_ids:
        task = tasks[task_id]
        data = load_task_data(task, suite, cache)
        records = data.records.loc[data.split_ids["train"]]
        for _, record in records.iterrows():
            grey = read_grey(record["path"])
            height, width = grey.shape[:2]
            if hasattr(task, "mask_source"):
                mask = full_mask(task, record, height, width)
            else:
                mask = boxes_mask(record[task.box_column], height, width)
            images.append(resize_and_pad(grey, size))
            masks.append(resize_and_pad(mask.astype(np.float32), size))
    return np.stack(images), np.stack(masks).astype(np.float32)


def train_demo_encoder(demo_root: Path, cache: Path, out: Path, *, steps: int = 240, batch_size: int = 16,
                       lr: float = 1e-3, seed: int = 0) -> Path:
    """Train ``random:resnet50`` (seed 0) on the demo finding masks; save a torchvision state dict."""
    torch.manual_seed(seed)
    encoder = load_encoder("random:resnet50").encoder.unfreeze()  # the harness loads encoders frozen
    images, masks = finding_masks(Path(demo_root), Path(cache))
    heads = torch.nn.ModuleList(torch.nn.Conv2d(encoder.pyramid_channels[i], 1, 1) for i in LEVELS)
    optimiser = torch.optim.AdamW([*encoder.parameters(), *heads.parameters()], lr=lr, weight_decay=1e-4)
    generator = np.random.default_rng(seed)
    x_all = torch.from_numpy(images).float().div(255).unsqueeze(1)
    y_all = torch.from_numpy(masks).unsqueeze(1)
    encoder.train()
    losses = []
    for step in range(steps):
        index = torch.from_numpy(generator.choice(len(x_all), size=batch_size, replace=False))
        x, y = x_all[index], y_all[index]
        if step % 2:  # the segmentation suite runs at 64 px, detection at 96: see both scales
            x, y = F.interpolate(x, size=64, mode="area"), F.interpolate(y, size=64, mode="area")
        if generator.random() < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        levels = encoder.forward_pyramid(encoder.prepare(x))
        loss = 0.0
        for head, level in zip(heads, LEVELS):
            feature = levels[level]
            target = F.adaptive_avg_pool2d(y, feature.shape[-2:])
            loss = loss + F.binary_cross_entropy_with_logits(head(feature), target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    encoder.eval()
    assert np.mean(losses[-20:]) < 0.8 * np.mean(losses[:20]), f"the helper encoder did not learn: {losses[:3]} ... {losses[-3:]}"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(encoder.state_dict(), out)
    return out
