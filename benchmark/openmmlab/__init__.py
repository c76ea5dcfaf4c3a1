"""The thin bridge to the OpenMMLab stack (mmengine, mmsegmentation 1.x, mmdetection 3.x).

Configs are generated in Python from (task, encoder); the only registered component shared
by segmentation and detection is :class:`FrozenEncoderBackbone`. Nothing is patched or copied
into the installed OpenMMLab packages.
"""

import warnings

# Importing mmseg.models (and mmdet.models) imports mmcv.cnn.bricks.transformer, which announces with an
# ImportWarning that MultiScaleDeformableAttention moved to mmcv.ops: a note for code that imports it from the
# old path (mmseg's own san_layers does; the harness does not). Shown under -W default and in pytest's summary.
warnings.filterwarnings("ignore", category=ImportWarning, module=r"mmcv\.cnn\.bricks\.transformer")
