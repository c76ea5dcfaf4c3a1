"""Detection mAP@[0.40:0.75] under both of medvlp-bench's rules, exactly as a unit computes it.

An ``evaluate.Metric`` whose ``_compute`` calls the harness's own
``benchmark.det_metrics.unit_detection_metrics``: COCO 101-point interpolated AP (pycocotools'
matching, one category, no detection cap) averaged over the IoU thresholds 0.40, 0.45, ..., 0.75.
Load it by path, offline::

    import evaluate
    from benchmark.evaluate_modules import path

    detection_map = evaluate.load(path("detection_map"))
"""

import datasets
import evaluate
import numpy as np

_CITATION = """\
@article{liu2023utilizing,
  title   = {Utilizing Synthetic Data for Medical Vision-Language Pre-training: Bypassing the Need for Real Images},
  author  = {Liu, Che and Shah, Anand and Bai, Wenjia and Arcucci, Rossella},
  journal = {arXiv preprint arXiv:2310.07027},
  year    = {2023}
}
"""

_DESCRIPTION = """\
Detection mAP of medvlp-bench (RSNA, Object-CXR), from the same boxes under two rules:
- map: the SOUND rule, every test image counts: a box on an image without ground truth is a false
  positive and a ground-truth box nobody found is a miss (pycocotools' COCOeval for one category);
- map_reference: the REFERENCE rule (MGCA's evaluation, the published tables'): only images that
  have a ground-truth box AND at least one prediction count, so misses on images without any
  prediction and false positives on negative images cost nothing.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: per image a list of predicted boxes [x1, y1, x2, y2, score] (may be empty).
    references: per image a list of ground-truth boxes [x1, y1, x2, y2] (may be empty).
    iou_thresholds: IoU thresholds to average over (default 0.40, 0.45, ..., 0.75, the protocol's).
    image_ids: optional ids of the images, in input order (their sorted order breaks score ties, as
        in a unit); default "00000000", "00000001", ... (the input order).
Returns:
    map, ap@<threshold> for each threshold, counts (images, images_counted, images_with_gt,
    gt_boxes, pred_boxes), rule, iou_thresholds, map_reference, and reference (the same under
    the reference rule).
Example:
    >>> detection_map = evaluate.load(path("detection_map"))
    >>> found = detection_map.compute(predictions=[[[10, 10, 50, 50, 0.9]], [[0, 0, 5, 5, 0.95]]],
    ...                               references=[[[10, 10, 50, 50]], []])
    >>> found["map"], found["map_reference"]  # the false positive on the negative image costs only under map
    (0.5, 1.0)
"""


def _harness(name):
    """A module of medvlp-bench, with an actionable error when the package is not importable."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(
            f"this evaluate module computes with medvlp-bench's own metric code ({name}), which cannot be imported "
            f"here ({error}); install medvlp-bench in this environment (pip install -e /path/to/medvlp-bench)"
        ) from error


class DetectionMap(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.List(datasets.List(datasets.Value("float64"))),
                    "references": datasets.List(datasets.List(datasets.Value("float64"))),
                }
            ),
            reference_urls=["https://github.com/cocodataset/cocoapi/blob/master/PythonAPI/pycocotools/cocoeval.py"],
        )

    def _compute(self, predictions, references, iou_thresholds=None, image_ids=None):
        det = _harness("benchmark.det_metrics")
        if image_ids is None:
            image_ids = [f"{k:08d}" for k in range(len(predictions))]
        image_ids = [str(i) for i in image_ids]
        if len(image_ids) != len(predictions) or len(set(image_ids)) != len(image_ids):
            raise ValueError(f"image_ids must name each of the {len(predictions)} images once")
        gt, preds = {}, {}
        for image, boxes, found in zip(image_ids, references, predictions):
            if any(len(box) != 4 for box in boxes):
                raise ValueError(f"image {image}: a reference box must be [x1, y1, x2, y2]")
            if any(len(box) != 5 for box in found):
                raise ValueError(f"image {image}: a predicted box must be [x1, y1, x2, y2, score]")
            gt[image] = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
            preds[image] = np.asarray(found, dtype=np.float64).reshape(-1, 5)
        thresholds = det.IOU_THRESHOLDS if iou_thresholds is None else tuple(float(t) for t in iou_thresholds)
        return det.unit_detection_metrics(gt, preds, image_ids, thresholds)
