"""SynCXR: purely synthetic chest X-ray image-text pairs (reports AND images), in the MIMIC-CXR layout.

The recipe of Study B ("Can MedVLP succeed with purely synthetic data?"), offline with local model
folders; ``python -m recipes.syncxr <step> --help``:

1. ``entities`` (:mod:`.entities`, :mod:`.lexicon`): entities of the real reports in five
   categories with their frequencies (a versioned table);
2. ``sample`` (:mod:`.sampling`): balanced entity sets with the usage-ratio cap, before/after plots;
3. ``reports`` (:mod:`.reports`): a local causal LM writes FINDINGS then IMPRESSION, checked for
   the entities, regenerated a bounded number of times, with a documented fallback;
4. ``images`` (:mod:`.images`): the synthesis recipe draws one image per synthetic IMPRESSION;
   ``curate`` (:mod:`.curation`): a local image-text-to-text model keeps or discards each image;
5. ``build`` (:mod:`.root`): a drop-in MIMIC-CXR data root of the kept pairs (or mixed with real
   pairs at a ratio) that ``python -m recipes.pretraining --image-source real`` reads unchanged.

``run`` chains all steps. Every step writes ``<work>/<step>/manifest.json`` (settings, model folders
and content hashes, counts, provenance); the sharded steps (``--shard I/N``, torchrun ranks) are
resumable per batch and merge when the last shard finishes (or with ``merge``).
"""
