"""The thin bridge to the OpenMMLab stack (mmengine, mmsegmentation 1.x, mmdetection 3.x).

Configs are generated in Python from (task, encoder); the only registered component shared
by segmentation and detection is :class:`FrozenEncoderBackbone`. Nothing is patched or copied
into the installed OpenMMLab packages.
"""
