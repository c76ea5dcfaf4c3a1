"""The reference downstream code's YOLOv3 semantics as an mmdet head (registered, not patched).

MGCA's detection head (``mgca/utils/yolo_loss.py``, one ``YOLOLoss`` per level) differs from
mmdet's stock ``YOLOV3Head`` in what it learns and how it scores. This subclass keeps mmdet's
layers, anchors, box coder and post-processing, and replaces:

Target assignment, separately at EACH level (so a box gets up to 3 positives, one per level):
  the box centre in grid units ``(gx, gy) = centre / stride`` falls in cell ``(gi, gj) =
  (floor(gx), floor(gy))``; the shape IoU of the box ``(0, 0, gw, gh)`` with each of the
  level's 3 anchors ``(0, 0, aw, ah)`` (all in grid units, computed with the reference's
  "+1" pixel convention: ``inter = (min(gw, aw) + 1) * (min(gh, ah) + 1)``, areas ``(w + 1) *
  (h + 1)``) picks the best anchor (first on ties) as the positive at that cell; every anchor
  of that cell whose shape IoU exceeds ``ignore_thr`` (0.5) is removed from the no-object
  term. Targets: ``x, y = gx - gi, gy - gj``; ``w, h = log(gw / aw), log(gh / ah)``; class
  one-hot. Two boxes on the same (cell, anchor): the later one's targets win. Quirk kept from
  the reference: a positive whose best IoU is <= 0.5 stays in the no-object term too.

Loss per level, every term divided by the number of predictions of that level (images x
cells x anchors, the mean of ``nn.BCELoss``/``nn.MSELoss`` over the masked maps), then summed
over levels: ``xy_weight`` (2.5) x BCE(sigmoid x, tx) + BCE(sigmoid y, ty); ``wh_weight``
(2.5) x (squared error of w and h); objectness BCE of the positives plus ``noobj_weight``
(0.5) x BCE against 0 of the no-object predictions; class BCE (divided also by the number
of classes). BCE is computed from logits, equal to the reference's BCE of sigmoids except
where float32 sigmoids saturate (there the reference clamps the log at -100).

Score: a detection's score is its OBJECTNESS alone (its label the most probable class), so
boxes are thresholded (``conf_thr``), ranked and suppressed by objectness as in the
reference's ``non_max_suppression``.

A box centre exactly on the image's right or bottom edge (``gx == W``) would index past the
grid in the reference (an IndexError); here it is clamped into the last cell.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import YOLOV3Head
from mmdet.registry import MODELS
from mmengine.structures import InstanceData

from .detection_config import REFERENCE_HEAD


def reference_shape_iou(box_wh: np.ndarray, anchors_wh: np.ndarray) -> np.ndarray:
    """Shape IoU of one box ``(w, h)`` with each anchor ``(k, 2)``, both anchored at the origin,
    with the reference's "+1" convention (``mgca/utils/yolo_loss.py: bbox_iou``)."""
    inter = (np.minimum(box_wh[0], anchors_wh[:, 0]) + 1.0) * (np.minimum(box_wh[1], anchors_wh[:, 1]) + 1.0)
    box_area = (box_wh[0] + 1.0) * (box_wh[1] + 1.0)
    anchor_area = (anchors_wh[:, 0] + 1.0) * (anchors_wh[:, 1] + 1.0)
    return inter / (box_area + anchor_area - inter + 1e-16)


def level_targets(
    boxes: np.ndarray,
    labels: np.ndarray,
    anchors_px: np.ndarray,
    stride: float,
    height: int,
    width: int,
    num_classes: int,
    ignore_thr: float,
) -> dict[str, np.ndarray]:
    """Reference targets of ONE image at ONE level, in mmdet's (H, W, anchor) layout.

    ``boxes``: (n, 4) x1 y1 x2 y2 in input pixels; ``anchors_px``: (k, 2) anchor (w, h) in
    pixels. Returns ``pos`` (H, W, k) 0/1, ``noobj`` (H, W, k) 0/1, ``xy``/``wh`` (H, W, k, 2),
    ``cls`` (H, W, k, C)."""
    k = len(anchors_px)
    pos = np.zeros((height, width, k), np.float32)
    noobj = np.ones((height, width, k), np.float32)
    xy = np.zeros((height, width, k, 2), np.float32)
    wh = np.zeros((height, width, k, 2), np.float32)
    cls = np.zeros((height, width, k, num_classes), np.float32)
    anchors = np.asarray(anchors_px, np.float64) / stride
    for (x1, y1, x2, y2), label in zip(np.asarray(boxes, np.float64), labels):
        gx, gy = (x1 + x2) / 2 / stride, (y1 + y2) / 2 / stride
        gw, gh = (x2 - x1) / stride, (y2 - y1) / stride
        gi, gj = min(int(gx), width - 1), min(int(gy), height - 1)
        ious = reference_shape_iou(np.array([gw, gh]), anchors)
        noobj[gj, gi, ious > ignore_thr] = 0.0
        best = int(np.argmax(ious))
        pos[gj, gi, best] = 1.0
        xy[gj, gi, best] = (gx - gi, gy - gj)
        wh[gj, gi, best] = (math.log(gw / anchors[best, 0] + 1e-16), math.log(gh / anchors[best, 1] + 1e-16))
        cls[gj, gi, best] = 0.0
        cls[gj, gi, best, int(label)] = 1.0
    return {"pos": pos, "noobj": noobj, "xy": xy, "wh": wh, "cls": cls}


@MODELS.register_module(name=REFERENCE_HEAD, force=True)
class ReferenceYOLOV3Head(YOLOV3Head):
    """mmdet's ``YOLOV3Head`` with the reference's assignment, loss and score (module docstring)."""

    loss_is_batch_mean = True  # its losses are means over the batch's predictions (mmdet's: sums)

    def __init__(
        self,
        *args,
        xy_weight: float = 2.5,
        wh_weight: float = 2.5,
        noobj_weight: float = 0.5,
        ignore_thr: float = 0.5,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.xy_weight, self.wh_weight = float(xy_weight), float(wh_weight)
        self.noobj_weight, self.ignore_thr = float(noobj_weight), float(ignore_thr)

    # ------------------------------------------------------------------ training
    def reference_targets(self, featmap_sizes, batch_gt_instances, device) -> list[dict[str, torch.Tensor]]:
        """Per level: the batch's target maps (images first), flattened like mmdet's predictions."""
        out = []
        for level, (height, width) in enumerate(featmap_sizes):
            stride = float(self.featmap_strides[level])  # square cells: one int per level
            anchors_px = np.asarray(self.prior_generator.base_sizes[level], np.float64)
            per_image = [
                level_targets(
                    gt.bboxes.detach().float().cpu().numpy().reshape(-1, 4),
                    gt.labels.detach().cpu().numpy().reshape(-1),
                    anchors_px,
                    stride,
                    int(height),
                    int(width),
                    self.num_classes,
                    self.ignore_thr,
                )
                for gt in batch_gt_instances
            ]
            out.append(
                {
                    name: torch.from_numpy(np.stack([t[name] for t in per_image])).to(device).flatten(1, 3)
                    for name in per_image[0]
                }
            )
        return out

    def loss_by_feat(self, pred_maps, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=None) -> dict:
        featmap_sizes = [tuple(p.shape[-2:]) for p in pred_maps]
        targets = self.reference_targets(featmap_sizes, batch_gt_instances, pred_maps[0].device)
        losses = {"loss_xy": [], "loss_wh": [], "loss_conf": [], "loss_cls": []}
        for pred_map, target in zip(pred_maps, targets):
            pred = pred_map.permute(0, 2, 3, 1).reshape(len(pred_map), -1, self.num_attrib).float()
            count = pred.shape[0] * pred.shape[1]  # images x cells x anchors of this level
            pos, noobj = target["pos"], target["noobj"]
            xy = F.binary_cross_entropy_with_logits(pred[..., :2], target["xy"], reduction="none").sum(-1)
            wh = (pred[..., 2:4] - target["wh"]).pow(2).sum(-1)
            conf = pred[..., 4]
            obj = F.binary_cross_entropy_with_logits(conf, torch.ones_like(conf), reduction="none")
            no_obj = F.binary_cross_entropy_with_logits(conf, torch.zeros_like(conf), reduction="none")
            cls = F.binary_cross_entropy_with_logits(pred[..., 5:], target["cls"], reduction="none").sum(-1)
            losses["loss_xy"].append(self.xy_weight * (xy * pos).sum() / count)
            losses["loss_wh"].append(self.wh_weight * (wh * pos).sum() / count)
            losses["loss_conf"].append(((obj * pos).sum() + self.noobj_weight * (no_obj * noobj).sum()) / count)
            losses["loss_cls"].append((cls * pos).sum() / (count * self.num_classes))
        return losses

    # ------------------------------------------------------------------ inference
    def predict_by_feat(self, pred_maps, batch_img_metas, cfg=None, rescale: bool = False, with_nms: bool = True):
        """mmdet's decoding, thresholding and NMS, with the score = objectness alone."""
        cfg = copy.deepcopy(self.test_cfg if cfg is None else cfg)
        num_imgs = len(batch_img_metas)
        featmap_sizes = [p.shape[-2:] for p in pred_maps]
        anchors = torch.cat(self.prior_generator.grid_priors(featmap_sizes, device=pred_maps[0].device))
        flat, strides = [], []
        for pred, stride in zip(pred_maps, self.featmap_strides):
            pred = pred.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.num_attrib)
            flat.append(torch.cat([pred[..., :2].sigmoid(), pred[..., 2:]], dim=-1))
            strides.append(pred.new_tensor(stride).expand(pred.size(1)))
        flat = torch.cat(flat, dim=1)
        bboxes_all = self.bbox_coder.decode(anchors, flat[..., :4], torch.cat(strides).unsqueeze(-1))
        objectness_all = flat[..., 4].sigmoid()
        classes_all = flat[..., 5:].sigmoid()
        conf_thr, nms_pre = cfg.get("conf_thr", -1), cfg.get("nms_pre", -1)
        results_list = []
        for bboxes, objectness, classes, img_meta in zip(bboxes_all, objectness_all, classes_all, batch_img_metas):
            if conf_thr > 0:
                keep = objectness >= conf_thr
                bboxes, objectness, classes = bboxes[keep], objectness[keep], classes[keep]
            if 0 < nms_pre < len(objectness):
                top = objectness.topk(nms_pre).indices
                bboxes, objectness, classes = bboxes[top], objectness[top], classes[top]
            labels = classes.argmax(dim=1) if len(classes) else torch.zeros(0, dtype=torch.long, device=bboxes.device)
            results = InstanceData(scores=objectness, labels=labels, bboxes=bboxes)
            results_list.append(
                self._bbox_post_process(results=results, cfg=cfg, rescale=rescale, with_nms=with_nms, img_meta=img_meta)
            )
        return results_list
