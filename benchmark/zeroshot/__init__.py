"""Zero-shot classification and grounding for vision-language checkpoints.

- :mod:`.prompts`: versioned prompt sets (``benchmark/data/prompts/<name>-v<version>.json``).
- :mod:`.text_side`: the text tower and projection heads of a checkpoint (our
  ``recipes/pretraining`` exports; MGCA / GLoRIA / ConVIRT official layouts with
  ``--text-encoder DIR``) and the image-side embeddings that go with them.
- :mod:`.scoring`: CheXzero pair scores, thresholds chosen on validation, grounding maps,
  Dice / IoU / pointing game.
"""
