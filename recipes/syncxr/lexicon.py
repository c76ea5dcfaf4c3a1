"""The SynCXR entity lexicon and extractor: which clinical entities a report text mentions, in the
study's five categories (Abnormality, Non-Abnormality, Disease, Non-Disease, Anatomy).

Method (documented in ``lexicon/README.md``; the phrase lists are this project's own, inspired
by the CheXpert labeller): the text is lower-cased and cut into sentences (at ``. ; ? !`` and
line breaks) and word tokens (``[a-z0-9]+``). In each sentence every lexicon phrase is matched
(a word also matches its plural; ``...`` allows up to :data:`MAX_GAP` words in between);
overlapping matches are resolved in favour of the one with more phrase words, then the longer
span, then the earlier one. An Abnormality or Disease mention is NEGATED (Non-Abnormality /
Non-Disease) when its phrase is an absence phrase (``!heart size is normal``), when a ``pre``
cue ends at most :data:`PRE_REACH` words before it with no ``stop`` cue in between, or when a
``post`` cue starts at most :data:`POST_REACH` words after it; ``pseudo`` cues ("cannot be
excluded", "no change") are masked first, so uncertain findings count as present (the CheXpert
labeller's "uncertain" is kept as a mention). Anatomy is never negated.

The lexicon's version is a sha256 over its files; every step that uses it records the version.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from benchmark.errors import ConfigError

LEXICON_DIR = Path(__file__).resolve().parent / "lexicon"
CATEGORIES = ("abnormality", "non-abnormality", "disease", "non-disease", "anatomy")
TITLES = {
    "abnormality": "Abnormality",
    "non-abnormality": "Non-Abnormality",
    "disease": "Disease",
    "non-disease": "Non-Disease",
    "anatomy": "Anatomy",
}
KINDS = ("abnormality", "disease", "anatomy")  # one file each; negation yields the two Non- categories
NEGATED = {"abnormality": "non-abnormality", "disease": "non-disease"}
KIND_OF = {"abnormality": "abnormality", "non-abnormality": "abnormality", "disease": "disease"}
KIND_OF.update({"non-disease": "disease", "anatomy": "anatomy"})
CUE_KINDS = ("pre", "post", "pseudo", "stop")
MAX_GAP = 3
PRE_REACH = 8
POST_REACH = 6
WORD = re.compile(r"[a-z0-9]+")
SENTENCE = re.compile(r"[.;?!\n]+")


def words(text: str) -> tuple[str, ...]:
    return tuple(WORD.findall(text.lower()))


def singular_forms(token: str) -> set[str]:
    """The words whose plural ``token`` may be (``effusions`` -> ``effusion``, ``opacities`` -> ``opacity``)."""
    forms = {token}
    if token.endswith("ies") and len(token) > 4:
        forms.add(token[:-3] + "y")
    if token.endswith("es") and len(token) > 3:
        forms.add(token[:-2])
    if token.endswith("s") and len(token) > 2:
        forms.add(token[:-1])
    return forms


@dataclass(frozen=True)
class Phrase:
    text: str
    parts: tuple[str | None, ...]  # words; None = a gap of 0..MAX_GAP words
    absent: bool = False  # the phrase states the entity is absent

    @property
    def literal(self) -> int:
        return sum(p is not None for p in self.parts)


@dataclass(frozen=True)
class Entity:
    name: str
    kind: str  # abnormality | disease | anatomy
    chexpert: str | None
    phrases: tuple[Phrase, ...]


@dataclass(frozen=True)
class Mention:
    entity: str
    category: str  # one of CATEGORIES
    sentence: int
    start: int  # token span in the sentence, end exclusive
    end: int
    phrase: str


def parse_phrase(text: str) -> Phrase:
    raw = text.strip()
    absent = raw.startswith("!")
    raw = raw.lstrip("!").strip()
    parts: list[str | None] = []
    for k, piece in enumerate(raw.split("...")):
        if k:
            parts.append(None)
        parts.extend(words(piece))
    if not parts or parts[0] is None or parts[-1] is None:
        raise ConfigError(f"lexicon phrase {text!r}: a phrase needs words, and '...' only between words")
    return Phrase(raw, tuple(parts), absent)


def _match(parts: tuple[str | None, ...], tokens: tuple[str, ...], i: int) -> int | None:
    """End (exclusive) of the shortest match of ``parts`` starting at token ``i``, or None."""
    if not parts:
        return i
    head, rest = parts[0], parts[1:]
    if head is None:
        for gap in range(MAX_GAP + 1):
            if i + gap > len(tokens):
                break
            end = _match(rest, tokens, i + gap)
            if end is not None:
                return end
        return None
    if i < len(tokens) and head in singular_forms(tokens[i]):
        return _match(rest, tokens, i + 1)
    return None


class Lexicon:
    """Entities by kind and negation cues, read from a lexicon folder (default: the bundled one)."""

    def __init__(self, folder: str | Path = LEXICON_DIR):
        self.folder = Path(folder)
        files = [self.folder / f"{kind}.txt" for kind in KINDS] + [self.folder / "negation.txt"]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise ConfigError(
                f"lexicon folder {self.folder}: missing {', '.join(missing)}; it needs abnormality.txt, disease.txt, "
                "anatomy.txt and negation.txt (see recipes/syncxr/lexicon/README.md)"
            )
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        self.version = digest.hexdigest()
        self.entities: dict[tuple[str, str], Entity] = {}
        self._by_first: dict[str, list[tuple[Entity, Phrase]]] = {}
        seen: dict[tuple, str] = {}
        for kind in KINDS:
            path = self.folder / f"{kind}.txt"
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                fields = [f.strip() for f in line.split("|")]
                if len(fields) != 3 or not fields[0] or not fields[2]:
                    raise ConfigError(f"{path}:{number}: expected 'entity | CheXpert label or - | phrase; ...'")
                name, chexpert, phrases = fields[0].lower(), fields[1], [parse_phrase(p) for p in fields[2].split(";")]
                if (kind, name) in self.entities:
                    raise ConfigError(f"{path}:{number}: entity {name!r} is listed twice")
                if not any(p.parts == words(name) and not p.absent for p in phrases):
                    raise ConfigError(f"{path}:{number}: the entity name {name!r} must be one of its (present) phrases")
                entity = Entity(name, kind, None if chexpert in ("", "-") else chexpert, tuple(phrases))
                self.entities[(kind, name)] = entity
                for phrase in phrases:
                    owner = seen.setdefault(phrase.parts, f"{kind}:{name}")
                    if owner != f"{kind}:{name}":
                        raise ConfigError(f"{path}:{number}: phrase {phrase.text!r} also belongs to {owner}")
                    self._by_first.setdefault(phrase.parts[0], []).append((entity, phrase))
        self.cues: dict[str, list[tuple[str, ...]]] = {k: [] for k in CUE_KINDS}
        path = self.folder / "negation.txt"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            kind, _, phrase = (f.strip() for f in line.partition("|"))
            if kind not in CUE_KINDS or not words(phrase):
                raise ConfigError(f"{path}:{number}: expected '<{'|'.join(CUE_KINDS)}> | phrase'")
            self.cues[kind].append(words(phrase))

    # ------------------------------------------------------------------ queries
    def names(self, kind: str) -> list[str]:
        """Entity names of one kind (abnormality, disease, anatomy), in file order."""
        return [name for (k, name) in self.entities if k == kind]

    def entity(self, category: str, name: str) -> Entity:
        return self.entities[(KIND_OF[category], name)]

    def chexpert_label(self, category: str, name: str) -> str | None:
        return self.entity(category, name).chexpert

    # ------------------------------------------------------------------ extraction
    def _cue_spans(self, tokens: tuple[str, ...], kind: str, masked: set[int]) -> list[tuple[int, int]]:
        spans = []
        for cue in self.cues[kind]:
            for i in range(len(tokens) - len(cue) + 1):
                if tokens[i : i + len(cue)] == cue and not masked & set(range(i, i + len(cue))):
                    spans.append((i, i + len(cue)))
        return spans

    def _sentence_mentions(self, tokens: tuple[str, ...], index: int) -> list[Mention]:
        found = []  # (literal, span, start, end, entity, phrase)
        for i, token in enumerate(tokens):
            for form in singular_forms(token):
                for entity, phrase in self._by_first.get(form, ()):
                    end = _match(phrase.parts, tokens, i)
                    if end is not None:
                        found.append((phrase.literal, end - i, i, end, entity, phrase))
        found.sort(key=lambda c: (-c[0], -c[1], c[2]))
        taken: set[int] = set()
        chosen = []
        for _, _, start, end, entity, phrase in found:
            if taken & set(range(start, end)):
                continue
            taken |= set(range(start, end))
            chosen.append((start, end, entity, phrase))
        if not chosen:
            return []
        masked: set[int] = set()
        for start, end in self._cue_spans(tokens, "pseudo", set()):
            masked |= set(range(start, end))
        pre = self._cue_spans(tokens, "pre", masked)
        post = self._cue_spans(tokens, "post", masked)
        stops = {i for s, e in self._cue_spans(tokens, "stop", masked) for i in range(s, e)}
        mentions = []
        for start, end, entity, phrase in sorted(chosen, key=lambda c: c[0]):
            category = entity.kind
            if entity.kind in NEGATED:
                negated = phrase.absent
                negated = negated or any(
                    ce <= start and start - ce <= PRE_REACH and not stops & set(range(ce, start)) for _, ce in pre
                )
                negated = negated or any(cs >= end and cs - end <= POST_REACH for cs, _ in post)
                if negated:
                    category = NEGATED[entity.kind]
            mentions.append(Mention(entity.name, category, index, start, end, phrase.text))
        return mentions

    def extract(self, text: str) -> list[Mention]:
        """Every entity mention of ``text``, in reading order."""
        mentions = []
        for index, sentence in enumerate(SENTENCE.split((text or "").lower())):
            tokens = words(sentence)
            if tokens:
                mentions.extend(self._sentence_mentions(tokens, index))
        return mentions

    def entity_set(self, text: str) -> set[tuple[str, str]]:
        """``{(entity, category)}`` mentioned in ``text``."""
        return {(m.entity, m.category) for m in self.extract(text)}


@lru_cache(maxsize=4)
def load_lexicon(folder: str | None = None) -> Lexicon:
    """The lexicon of ``folder`` (default: the bundled ``recipes/syncxr/lexicon``), cached."""
    return Lexicon(folder or LEXICON_DIR)
