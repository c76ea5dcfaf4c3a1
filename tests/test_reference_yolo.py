"""The reference (MGCA) YOLOv3 semantics as a registered mmdet head, on hand-computed cases.

Geometry used throughout: a 64 x 64 input, levels of stride 32 / 16 / 8 (grids 2 x 2, 4 x 4,
8 x 8), three anchors per level chosen so that a 32 x 16 box centred at (24, 16) has a
different best anchor at every level:

    level 0 (stride 32): anchors (64, 64) (32, 16) (16, 32) px = (2, 2) (1, .5) (.5, 1) cells;
        the box is (1, .5) cells at cell (0, 0): "+1" shape IoUs 1/3, 1, 0.6 -> best anchor 1,
        anchors 1 and 2 ignored (IoU > 0.5);
    level 1 (stride 16): anchors (32, 16) (64, 64) (16, 32) px = (2, 1) (4, 4) (1, 2) cells;
        box (2, 1) at cell (1, 1): IoUs 1, 6/25, 4/8 -> best 0, only anchor 0 ignored (0.5 is
        not above 0.5);
    level 2 (stride 8): anchors (64, 64) (16, 8) (16, 32) px = (8, 8) (2, 1) (2, 4) cells;
        box (4, 2) at cell (3, 2): IoUs 15/81, 6/15, 9/21 -> best 2 with IoU 0.43, nothing
        ignored, so the positive also stays in the no-object term (the reference's quirk);
        targets w = log(4 / 2), h = log(2 / 4).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("mmdet")

from mmengine.config import ConfigDict  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

from benchmark.det_metrics import detection_metrics  # noqa: E402
from benchmark.openmmlab.detection_config import build_detector  # noqa: E402
from benchmark.openmmlab.reference_yolo_head import level_targets, reference_shape_iou  # noqa: E402

SIZE = 64
STRIDES = [32, 16, 8]
ANCHORS = [[(64, 64), (32, 16), (16, 32)], [(32, 16), (64, 64), (16, 32)], [(64, 64), (16, 8), (16, 32)]]
BOX = [8.0, 8.0, 40.0, 24.0]  # x1 y1 x2 y2: 32 x 16, centre (24, 16)
LOG2 = math.log(2.0)


def make_head(kind: str, num_classes: int = 1):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from benchmark.openmmlab import reference_yolo_head  # noqa: F401  (registers the head)

    register_all_modules(init_default_scope=False)
    common = dict(
        num_classes=num_classes,
        in_channels=[8, 8, 8],
        out_channels=[8, 8, 8],
        anchor_generator=dict(type="YOLOAnchorGenerator", base_sizes=ANCHORS, strides=STRIDES),
        bbox_coder=dict(type="YOLOBBoxCoder"),
        featmap_strides=STRIDES,
        test_cfg=ConfigDict(
            nms_pre=1000,
            min_bbox_size=0,
            score_thr=0.0,
            conf_thr=0.5,
            nms=dict(type="nms", iou_threshold=0.5),
            max_per_img=100,
        ),
    )
    if kind == "reference":
        return MODELS.build(dict(type="MedVLPReferenceYOLOV3Head", _scope_="mmdet", **common))
    return MODELS.build(
        dict(
            type="YOLOV3Head",
            _scope_="mmdet",
            train_cfg=dict(assigner=dict(type="GridAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0)),
            **common,
        )
    )


def gt(boxes, labels=None) -> InstanceData:
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return InstanceData(
        bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long) if labels is None else torch.tensor(labels)
    )


def pred_maps(batch: int, attrib: int, fill: float = 0.0) -> list[torch.Tensor]:
    return [torch.full((batch, 3 * attrib, SIZE // s, SIZE // s), fill) for s in STRIDES]


def test_reference_shape_iou_uses_the_plus_one_convention():
    # (0,0,1,.5) vs (0,0,2,2): inter (1+1)(.5+1)=3, areas 2*1.5=3 and 3*3=9 -> 3/9
    assert reference_shape_iou(np.array([1.0, 0.5]), np.array([[2.0, 2.0], [1.0, 0.5], [0.5, 1.0]])) == pytest.approx(
        [1 / 3, 1.0, 0.6]
    )


def test_a_box_gets_one_positive_per_level_at_its_centre_cell_with_the_best_anchor_of_that_level():
    head = make_head("reference")
    targets = head.reference_targets([(2, 2), (4, 4), (8, 8)], [gt([BOX])], torch.device("cpu"))
    positives = [
        (level, *np.argwhere(t["pos"][0].reshape(SIZE // s, SIZE // s, 3).numpy())[0])
        for level, (t, s) in enumerate(zip(targets, STRIDES))
        if t["pos"].sum() == 1
    ]
    assert sum(int(t["pos"].sum()) for t in targets) == 3
    assert positives == [(0, 0, 0, 1), (1, 1, 1, 0), (2, 2, 3, 2)]  # (level, row gj, column gi, anchor)
    level0 = level_targets(np.array([BOX]), np.array([0]), np.array(ANCHORS[0], float), 32, 2, 2, 1, 0.5)
    assert level0["xy"][0, 0, 1] == pytest.approx([0.75, 0.5]) and level0["wh"][0, 0, 1] == pytest.approx([0.0, 0.0])
    level2 = level_targets(np.array([BOX]), np.array([0]), np.array(ANCHORS[2], float), 8, 8, 8, 1, 0.5)
    assert level2["xy"][2, 3, 2] == pytest.approx([0.0, 0.0]) and level2["wh"][2, 3, 2] == pytest.approx([LOG2, -LOG2])


def test_mmdets_stock_assigner_gives_the_same_box_a_single_positive():
    head = make_head("mmdet")
    featmap_sizes = [(2, 2), (4, 4), (8, 8)]
    anchors = head.prior_generator.grid_priors(featmap_sizes, device="cpu")
    flags = head.responsible_flags(featmap_sizes, gt([BOX]).bboxes, "cpu")
    target_maps, _ = head.get_targets([anchors], [flags], [gt([BOX])])
    assert sum(int(t[..., 4].sum()) for t in target_maps) == 1


def test_the_ignore_rule_acts_only_at_the_centre_cell_and_keeps_a_weak_positive_in_the_no_object_term():
    head = make_head("reference")
    targets = head.reference_targets([(2, 2), (4, 4), (8, 8)], [gt([BOX])], torch.device("cpu"))
    noobj = [t["noobj"][0].reshape(SIZE // s, SIZE // s, 3).numpy() for t, s in zip(targets, STRIDES)]
    assert noobj[0][0, 0].tolist() == [1, 0, 0] and noobj[0].sum() == 12 - 2
    assert noobj[1][1, 1].tolist() == [0, 1, 1] and noobj[1].sum() == 48 - 1
    assert noobj[2].sum() == 192  # best IoU 0.43 <= 0.5: nothing ignored, the positive included
    assert targets[2]["pos"][0].reshape(8, 8, 3)[2, 3, 2] == 1


def test_each_loss_term_on_a_two_image_batch_matches_the_hand_computation():
    """All-zero predictions (every sigmoid 0.5); image 1 holds BOX, image 2 no box."""
    head = make_head("reference")
    losses = head.loss_by_feat(pred_maps(2, 6), [gt([BOX]), gt([])], [{}, {}])
    counts = [2 * 4 * 3, 2 * 16 * 3, 2 * 64 * 3]  # predictions per level (images x cells x anchors)
    noobj = [counts[0] - 2, counts[1] - 1, counts[2]]
    expected = {
        "loss_xy": [2.5 * 2 * LOG2 / n for n in counts],  # BCE(0.5, t) = log 2 for x and for y
        "loss_wh": [0.0, 0.0, 2.5 * (LOG2**2 + LOG2**2) / counts[2]],
        "loss_conf": [(LOG2 + 0.5 * k * LOG2) / n for k, n in zip(noobj, counts)],
        "loss_cls": [LOG2 / n for n in counts],
    }
    for name, values in expected.items():
        assert [float(v) for v in losses[name]] == pytest.approx(values, rel=1e-6), name


def reference_loss_oracle(pred: torch.Tensor, boxes: list[list[float]], anchors_px, stride: int) -> float:
    """The reference's per-level loss, re-derived in the reference's own layout (B, A, H, W):
    masked maps, nn.BCELoss / nn.MSELoss means, weights 2.5 / 2.5 / 1 / 1, no-object 0.5."""
    batch, _, height, width = pred.shape
    p = pred.view(batch, 3, 6, height, width).permute(0, 1, 3, 4, 2)
    x, y, w, h = torch.sigmoid(p[..., 0]), torch.sigmoid(p[..., 1]), p[..., 2], p[..., 3]
    conf, cls = torch.sigmoid(p[..., 4]), torch.sigmoid(p[..., 5:])
    mask = torch.zeros(batch, 3, height, width)
    noobj = torch.ones(batch, 3, height, width)
    tx, ty, tw, th = (torch.zeros(batch, 3, height, width) for _ in range(4))
    anchors = np.asarray(anchors_px, float) / stride
    for b, image_boxes in enumerate(boxes):
        for x1, y1, x2, y2 in image_boxes:
            gx, gy, gw, gh = (x1 + x2) / 2 / stride, (y1 + y2) / 2 / stride, (x2 - x1) / stride, (y2 - y1) / stride
            gi, gj = int(gx), int(gy)
            inter = (np.minimum(gw, anchors[:, 0]) + 1) * (np.minimum(gh, anchors[:, 1]) + 1)
            ious = inter / ((gw + 1) * (gh + 1) + (anchors[:, 0] + 1) * (anchors[:, 1] + 1) - inter + 1e-16)
            noobj[b, torch.from_numpy(ious > 0.5), gj, gi] = 0
            n = int(np.argmax(ious))
            mask[b, n, gj, gi] = 1
            tx[b, n, gj, gi], ty[b, n, gj, gi] = gx - gi, gy - gj
            tw[b, n, gj, gi], th[b, n, gj, gi] = (
                math.log(gw / anchors[n, 0] + 1e-16),
                math.log(gh / anchors[n, 1] + 1e-16),
            )
    bce, mse = torch.nn.BCELoss(), torch.nn.MSELoss()
    loss = 2.5 * (bce(x * mask, tx * mask) + bce(y * mask, ty * mask)) + 2.5 * (
        mse(w * mask, tw * mask) + mse(h * mask, th * mask)
    )
    loss = loss + bce(conf * mask, mask) + 0.5 * bce(conf * noobj, noobj * 0.0)
    loss = loss + bce(cls * mask.unsqueeze(-1), mask.unsqueeze(-1))
    return float(loss)


def test_the_total_loss_on_random_predictions_equals_the_reference_formula():
    torch.manual_seed(0)
    head = make_head("reference")
    maps = [0.8 * torch.randn(2, 18, SIZE // s, SIZE // s) for s in STRIDES]
    boxes = [[BOX, [30.0, 36.0, 62.0, 60.0]], [[4.0, 40.0, 20.0, 48.0]]]
    losses = head.loss_by_feat(maps, [gt(b) for b in boxes], [{}, {}])
    ours = sum(float(v) for values in losses.values() for v in values)
    expected = sum(reference_loss_oracle(m, boxes, a, s) for m, a, s in zip(maps, ANCHORS, STRIDES))
    assert ours == pytest.approx(expected, rel=1e-5)


def two_candidates() -> list[torch.Tensor]:
    """Level-0 predictions with two surviving boxes (anchor 1, 32 x 16, at cells (0,0) and
    (1,1)): A = objectness 0.9, class 0.2; B = objectness 0.6, class 0.95; all else off."""

    def logit(p):
        return math.log(p / (1 - p))

    maps = pred_maps(1, 6, fill=0.0)
    for level in maps:
        level[:, 4::6] = -20.0  # objectness off everywhere
    a, b = 1 * 6, 1 * 6  # channel offset of anchor 1
    maps[0][0, a + 4, 0, 0], maps[0][0, a + 5, 0, 0] = logit(0.9), logit(0.2)
    maps[0][0, b + 4, 1, 1], maps[0][0, b + 5, 1, 1] = logit(0.6), logit(0.95)
    return maps


def test_objectness_alone_ranks_the_boxes_and_changes_the_ap_on_a_constructed_case():
    meta = [{"img_shape": (SIZE, SIZE), "scale_factor": (1.0, 1.0)}]
    truth = {"img": np.array([[0.0, 8.0, 32.0, 24.0]])}  # exactly box A (centre (16, 16), 32 x 16)
    scores, aps = {}, {}
    for kind in ("reference", "mmdet"):
        result = make_head(kind).predict_by_feat(two_candidates(), meta)[0]
        boxes = torch.cat([result.bboxes, result.scores[:, None]], dim=1).numpy().astype(np.float64)
        scores[kind] = sorted(np.round(result.scores.numpy(), 4).tolist(), reverse=True)
        aps[kind] = detection_metrics(truth, {"img": boxes}, ["img"])["map"]
    assert scores["reference"] == pytest.approx([0.9, 0.6])  # objectness alone: A first
    assert scores["mmdet"] == pytest.approx([0.57, 0.18])  # objectness x class: B (a false positive) first
    assert aps["reference"] == pytest.approx(1.0)
    assert aps["mmdet"] == pytest.approx(0.5)  # the true box ranks second: precision 1/2 at recall 1


def test_the_generated_config_builds_the_reference_head_by_default_and_mmdets_on_request():
    from benchmark.openmmlab.detection_config import detection_config
    from benchmark.registry import all_tasks

    recipe = all_tasks()["rsna_det"].recipe
    assert recipe.yolo == "reference" and recipe.geometry == "stretch"
    kinds = {}
    for yolo in ("reference", "mmdet"):
        cfg = detection_config(
            recipe.model_copy(update={"yolo": yolo}),
            fraction=100,
            seed=0,
            encoder_spec="random:resnet_tiny",
            in_channels=(16, 32, 64),
            strides=(8, 16, 32),
            input_size=96,
        )
        kinds[yolo] = (cfg.model.bbox_head.type, cfg.model.train_cfg)
        model = build_detector(cfg.model)
        assert type(model.bbox_head).__name__ == ("ReferenceYOLOV3Head" if yolo == "reference" else "YOLOV3Head")
    assert kinds["reference"] == ("MedVLPReferenceYOLOV3Head", None)
    assert kinds["mmdet"][0] == "YOLOV3Head" and kinds["mmdet"][1]["assigner"]["type"] == "GridAssigner"
