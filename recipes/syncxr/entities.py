"""Step 1, ``entities``: the clinical entities of the real MIMIC-CXR reports and their frequencies.

Input: the reports of the pretraining pair set (``recipes.mimic.pair_set``: the studies of its
frontal image/report pairs, each study once), text = FINDINGS + IMPRESSION. Each report is read
with the lexicon extractor (:mod:`recipes.syncxr.lexicon`); an entity counts once per report and
category for ``reports`` and once per mention for ``mentions``.

Output (``<work>/entities/``): ``entities.csv`` with one row per lexicon entity and category it
can take (``category, entity, reports, mentions, share, rank``; ``share`` = reports / all
reports; ranks within a category, most frequent first; entities never found are listed with 0)
and ``manifest.json`` (the method, lexicon version, the input's pair set and report-text hash,
counts, the table's sha256 and its version ``v<schema>-<lexicon>-<table>``). Studies are cut into
global batches of ``--chunk-size``; ``--shard I/N`` and torchrun ranks split them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.atomic import atomic_write_text
from benchmark.errors import ConfigError
from recipes.mimic.pair_set import pair_set, pair_set_summary

from .lexicon import CATEGORIES, KIND_OF, NEGATED, load_lexicon
from .steps import (
    BatchStore,
    Timer,
    batch_count,
    file_sha256,
    folder_lock,
    log,
    progress_bar,
    provenance,
    start_batched_step,
    write_manifest,
)

STEP = "entities"
TABLE = "entities.csv"
TABLE_COLUMNS = ("category", "entity", "reports", "mentions", "share", "rank")
METHOD = (
    "lexicon phrase matching with NegEx-style negation (recipes/syncxr/lexicon/README.md); text = FINDINGS + "
    "IMPRESSION of each study of the pretraining pair set; counts per report and per mention"
)


@dataclass
class EntitiesConfig:
    data_root: Path
    work: Path
    lexicon: str | None = None  # a lexicon folder; default the bundled one
    chunk_size: int = 2000
    shard: str | None = None
    overwrite: bool = False
    progress: bool = True


def folder(work: Path) -> Path:
    return Path(work) / STEP


def study_reports(data_root: Path) -> tuple[pd.DataFrame, dict]:
    """One row per study of the pair set (subject_id, study_id, text), sorted; and the pair set summary."""
    pairs = pair_set(data_root)
    studies = pairs.drop_duplicates(["subject_id", "study_id"]).sort_values(["subject_id", "study_id"])
    text = [f"{f or ''}\n{i or ''}".strip() for f, i in zip(studies["findings"], studies["impression"])]
    frame = pd.DataFrame(
        {"subject_id": studies["subject_id"].astype(int), "study_id": studies["study_id"].astype(int), "text": text}
    ).reset_index(drop=True)
    return frame, pair_set_summary(pairs)


def texts_sha256(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for subject, study, text in frame[["subject_id", "study_id", "text"]].itertuples(index=False):
        digest.update(f"{subject}\0{study}\0{text}\0".encode())
    return digest.hexdigest()


def count_entities(records: list[dict], lexicon) -> pd.DataFrame:
    """The entity table from per-report records ``{"entities": {category: {entity: mentions}}}``."""
    rows = []
    n_reports = len(records)
    for category in CATEGORIES:
        kind = KIND_OF[category]
        for name in lexicon.names(kind):
            reports = sum(1 for r in records if name in r["entities"].get(category, {}))
            mentions = sum(r["entities"].get(category, {}).get(name, 0) for r in records)
            rows.append((category, name, reports, mentions, reports / n_reports if n_reports else 0.0))
    frame = pd.DataFrame(rows, columns=["category", "entity", "reports", "mentions", "share"])
    order = {c: k for k, c in enumerate(CATEGORIES)}
    frame = frame.assign(_order=frame["category"].map(order))
    frame = frame.sort_values(["_order", "reports", "entity"], ascending=[True, False, True], kind="mergesort")
    frame["rank"] = frame.groupby("category").cumcount() + 1
    return frame.drop(columns="_order").reset_index(drop=True)[list(TABLE_COLUMNS)]


def report_record(subject_id: int, study_id: int, text: str, lexicon) -> dict:
    entities: dict[str, dict[str, int]] = {}
    for mention in lexicon.extract(text):
        per = entities.setdefault(mention.category, {})
        per[mention.entity] = per.get(mention.entity, 0) + 1
    return {"subject_id": int(subject_id), "study_id": int(study_id), "entities": entities}


def run(cfg: EntitiesConfig) -> dict | None:
    """Extract (or resume) this shard's batches; merge when every batch is present. Returns the
    merged manifest, or None when other shards still have work."""
    timer = Timer()
    lexicon = load_lexicon(cfg.lexicon)
    studies, pairs_id = study_reports(Path(cfg.data_root))
    settings = {
        "method": METHOD,
        "lexicon_version": lexicon.version,
        "negated_categories": NEGATED,
        "pair_set": pairs_id,
        "reports_sha256": texts_sha256(studies),
        "chunk_size": int(cfg.chunk_size),
        "reports_total": len(studies),
    }
    out = folder(cfg.work)
    store, (n_batches, index, count, done, todo) = start_batched_step(
        out, settings, STEP, len(studies), cfg.chunk_size, cfg.shard, cfg.overwrite
    )
    log(
        f"entities: {len(studies)} reports in {n_batches} chunks (lexicon {lexicon.version[:12]}); "
        f"shard {index}/{count}: {len(done)} chunks done, {len(todo)} to do"
    )
    bar = progress_bar(sum(min(cfg.chunk_size, len(studies) - b * cfg.chunk_size) for b in todo), STEP, cfg.progress)
    for batch in todo:
        chunk = studies.iloc[batch * cfg.chunk_size : (batch + 1) * cfg.chunk_size]
        records = [report_record(s, t, x, lexicon) for s, t, x in chunk.itertuples(index=False)]
        store.write(batch, records)
        bar.update(len(chunk))
    bar.close()
    shard_info = {"index": index, "count": count, "chunks": len(todo), "seconds": round(timer.seconds, 3)}
    write_manifest(out, {"step": STEP, "shard": shard_info}, f"manifest.{index}-of-{count}.json")
    extra = {"data_root": str(Path(cfg.data_root)), "lexicon_dir": str(lexicon.folder)}
    return merge(cfg.work, lexicon=cfg.lexicon, n_batches=n_batches, extra=extra)


def merge(work: Path, *, lexicon: str | None = None, n_batches: int | None = None, extra: dict | None = None):
    """Join the batches into ``entities.csv`` + ``manifest.json`` when all are present (the
    lexicon must be the one the batches were made with)."""
    import json

    out = folder(work)
    settings = json.loads((out / "settings.json").read_text())
    lex = load_lexicon(lexicon)
    if lex.version != settings["lexicon_version"]:
        raise ConfigError(
            f"{out}: the batches were made with lexicon {settings['lexicon_version'][:12]}, not {lex.folder} "
            f"({lex.version[:12]}); pass the same --lexicon"
        )
    store = BatchStore(out, settings, STEP)
    if n_batches is None:
        n_batches = batch_count(settings["reports_total"], settings["chunk_size"])
    with folder_lock(out):
        if not store.complete(n_batches):
            log(f"entities: {sum(1 for b in range(n_batches) if store.read(b))}/{n_batches} chunks present; not merged")
            return None
        records = store.records(n_batches)
        table = count_entities(records, lex)
        atomic_write_text(out / TABLE, table.to_csv(index=False, lineterminator="\n", float_format="%.6f"))
        table_sha = file_sha256(out / TABLE)
        found = table[table["reports"] > 0]
        manifest = {
            "step": STEP,
            "settings": settings,
            "settings_sha256": store.key,
            **(extra or {}),
            "reports": len(records),
            "entities_found": {c: int((found["category"] == c).sum()) for c in CATEGORIES},
            "mentions": {c: int(table.loc[table["category"] == c, "mentions"].sum()) for c in CATEGORIES},
            "table": TABLE,
            "table_sha256": table_sha,
            "table_version": f"v1-{settings['lexicon_version'][:8]}-{table_sha[:8]}",
            **provenance(),
        }
        write_manifest(out, manifest)
    log(
        f"entities: {len(records)} reports -> {out / TABLE} (version {manifest['table_version']}); entities found: "
        + ", ".join(f"{c} {n}" for c, n in manifest["entities_found"].items())
    )
    return manifest


def read_table(work: Path) -> pd.DataFrame:
    path = folder(work) / TABLE
    return pd.read_csv(path, keep_default_na=False)
