"""CoNLL-style token-per-line files and the tag-scheme utilities a sequence-labelling task needs.

File format (CoNLL-2000/2002/2003 and relatives): one token per line, columns separated by
spaces or tabs (token first by default, the tag last by default); a blank line ends a sentence;
``-DOCSTART-`` lines mark document starts and are skipped (they also end any open sentence).
CRLF line ends, several blank lines in a row and a missing final newline are all fine. Sentences
are kept whole whatever their length: truncation is the tokenizer's business, not the reader's.

Tag schemes (``PREFIX-TYPE`` tags plus ``O``):

* ``IOB2`` (a.k.a. BIO): every entity starts with ``B-X``; ``I-X`` continues a ``B-X``/``I-X``.
* ``IOB1``: entities start with ``I-X``; ``B-X`` is used only for an entity that immediately
  follows another entity of the same type X.
* ``IOBES`` (a.k.a. BIOES): ``S-X`` single-token entity; ``B-X`` (``I-X``)* ``E-X`` otherwise.

Every conversion goes through IOB2. Conversions and :func:`entities` read invalid input the way
conlleval and seqeval's default mode do: an ``I-X`` (or ``E-X``) that does not continue an X
entity starts a new one. That is also the repair ``read_conll(..., repair=True)`` applies.

Spans are ``(type, start, end)`` with ``end`` exclusive (Python slice convention).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from harness.errors import DataError, where
from harness.io import read_text

SCHEMES = ("IOB1", "IOB2", "IOBES")
#: tag prefixes each scheme allows (besides the bare ``O``)
PREFIXES = {"IOB1": ("B", "I"), "IOB2": ("B", "I"), "IOBES": ("B", "I", "E", "S")}
DOCSTART = "-DOCSTART-"
#: columns are separated by ASCII spaces and tabs only: a no-break space or other Unicode
#: whitespace inside a token stays part of the token
_FIELDS = re.compile(r"[ \t]+")


@dataclass
class Sentence:
    """One sentence of a CoNLL file.

    ``columns[j][i]`` is column ``j`` of token ``i`` (every column of the file, the token and tag
    columns included, as written); ``tokens`` and ``tags`` are the chosen columns, with ``tags`` in
    the requested scheme (after any conversion or repair). ``lines[i]`` is the 1-based line number
    of token ``i`` in ``path``. ``repairs`` lists the token positions whose tag the repair changed.
    """

    tokens: list[str]
    tags: list[str]
    columns: list[list[str]]
    lines: list[int]
    path: str | None = None
    doc: int = 0  # 0-based index of the document (-DOCSTART- starts a new one; 0 when the file has none)
    repairs: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tokens)


# --------------------------------------------------------------------------------------- tags


def _check_scheme(scheme: str) -> str:
    name = str(scheme).upper()
    aliases = {"BIO": "IOB2", "BIOES": "IOBES"}
    name = aliases.get(name, name)
    if name not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}")
    return name


def split_tag(tag: str, scheme: str = "IOB2") -> tuple[str, str | None]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", None)``.

    Raises ``ValueError`` for a tag that is neither ``O`` nor ``PREFIX-TYPE`` with a prefix the
    scheme allows and a non-empty type (types may themselves contain ``-``).
    """
    scheme = _check_scheme(scheme)
    if tag == "O":
        return "O", None
    prefix, sep, kind = tag.partition("-")
    if not sep or not kind or prefix not in PREFIXES[scheme]:
        allowed = ", ".join(f"{p}-TYPE" for p in PREFIXES[scheme])
        raise ValueError(f"unknown tag {tag!r} for scheme {scheme} (expected O or {allowed})")
    return prefix, kind


def _violation(tags: Sequence[str], scheme: str) -> tuple[int, str] | None:
    """First position that breaks the scheme's rules, with the reason; None if the sequence is valid."""
    scheme = _check_scheme(scheme)
    parsed = [split_tag(t, scheme) for t in tags]
    prev_prefix, prev_kind = "O", None
    for i, (prefix, kind) in enumerate(parsed):
        if scheme == "IOB2":
            if prefix == "I" and prev_kind != kind:
                return i, f"{tags[i]!r} after {_show(tags, i - 1)} (an I- tag must continue a B-{kind} or I-{kind})"
        elif scheme == "IOB1":
            if prefix == "B" and prev_kind != kind:
                return i, (
                    f"{tags[i]!r} after {_show(tags, i - 1)} (in IOB1 a B- tag only separates two adjacent "
                    f"{kind} entities; an entity starts with I-)"
                )
        else:  # IOBES
            open_chunk = prev_prefix in ("B", "I")
            if open_chunk and not (prefix in ("I", "E") and kind == prev_kind):
                return i, f"{tags[i]!r} after {_show(tags, i - 1)} (expected I-{prev_kind} or E-{prev_kind})"
            if not open_chunk and prefix in ("I", "E"):
                return i, f"{tags[i]!r} after {_show(tags, i - 1)} (an entity starts with B- or S-)"
        prev_prefix, prev_kind = prefix, kind
    if scheme == "IOBES" and prev_prefix in ("B", "I"):
        return len(tags) - 1, f"{tags[-1]!r} at the end of the sentence (the entity must end with E- or S-)"
    return None


def _show(tags: Sequence[str], i: int) -> str:
    return "the sentence start" if i < 0 else repr(tags[i])


def validate_tags(tags: Sequence[str], scheme: str = "IOB2") -> int | None:
    """Index of the first tag that breaks ``scheme``'s rules, or None if the sequence is valid.

    IOB2: ``I-X`` must follow ``B-X`` or ``I-X``. IOB1: ``B-X`` only right after an X entity
    (``B-X``/``I-X``). IOBES: ``B``/``I`` must be followed by ``I``/``E`` of the same type, ``I``/``E``
    must follow ``B``/``I`` of the same type, and the sentence may not end inside an entity (the
    last position is reported). A tag the scheme does not know raises ``ValueError``.
    """
    found = _violation(tags, scheme)
    return None if found is None else found[0]


def _kind(tag: str) -> str | None:
    return None if tag == "O" else tag.partition("-")[2]


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 -> IOB2: an ``I-X`` that does not continue an X entity becomes ``B-X``.

    Applied to IOB2 input it is the identity on valid sequences and the orphan-``I`` repair on
    invalid ones.
    """
    out: list[str] = []
    prev = None
    for tag in tags:
        kind = _kind(tag)
        if tag.startswith("I-") and kind != prev:
            tag = "B-" + kind
        out.append(tag)
        prev = kind
    return out


def iob2_to_iob1(tags: Sequence[str]) -> list[str]:
    """IOB2 -> IOB1: ``B-X`` stays only right after an X entity, otherwise it becomes ``I-X``."""
    out: list[str] = []
    prev = None
    for tag in iob1_to_iob2(tags):
        kind = _kind(tag)
        if tag.startswith("B-") and kind != prev:
            tag = "I-" + kind
        out.append(tag)
        prev = kind
    return out


def iob2_to_iobes(tags: Sequence[str]) -> list[str]:
    """IOB2 -> IOBES: a one-token entity becomes ``S-X``, the last token of a longer one ``E-X``.

    An orphan ``I-X`` in the input starts a new entity (conlleval convention).
    """
    tags = iob1_to_iob2(tags)
    out: list[str] = []
    for i, tag in enumerate(tags):
        continues = i + 1 < len(tags) and tags[i + 1] == "I-" + (_kind(tag) or "")
        if tag.startswith("B-"):
            out.append(tag if continues else "S-" + tag[2:])
        elif tag.startswith("I-"):
            out.append(tag if continues else "E-" + tag[2:])
        else:
            out.append(tag)
    return out


def iobes_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOBES -> IOB2: ``S-X`` -> ``B-X``, ``E-X`` -> ``I-X``; an orphan ``I-``/``E-`` starts a new entity."""
    mapped = ["B-" + t[2:] if t.startswith("S-") else "I-" + t[2:] if t.startswith("E-") else t for t in tags]
    return iob1_to_iob2(mapped)


def convert(tags: Sequence[str], from_scheme: str, to_scheme: str) -> list[str]:
    """Convert between any two of IOB1, IOB2 and IOBES (through IOB2)."""
    src, dst = _check_scheme(from_scheme), _check_scheme(to_scheme)
    for tag in tags:
        split_tag(tag, src)
    iob2 = {"IOB1": iob1_to_iob2, "IOB2": iob1_to_iob2, "IOBES": iobes_to_iob2}[src](tags)
    return {"IOB1": iob2_to_iob1, "IOB2": list, "IOBES": iob2_to_iobes}[dst](iob2)


def repair(tags: Sequence[str], scheme: str = "IOB2") -> tuple[list[str], int]:
    """``(repaired_tags, number_of_changed_positions)``: the lenient (conlleval) reading of the
    sequence written back in the same scheme. Valid sequences come back unchanged; for IOB2 the
    repair turns every orphan ``I-X`` into ``B-X``."""
    scheme = _check_scheme(scheme)
    fixed = convert(tags, scheme, scheme)
    return fixed, sum(a != b for a, b in zip(tags, fixed))


def entities(tags: Sequence[str], scheme: str = "IOB2") -> list[tuple[str, int, int]]:
    """Entity spans ``(type, start, end)`` (``end`` exclusive), in order.

    Invalid sequences are read the conlleval / seqeval-default way: an ``I-X`` that does not
    continue an X entity starts a new one.
    """
    iob2 = convert(tags, scheme, "IOB2")
    spans: list[tuple[str, int, int]] = []
    start, kind = None, None
    for i, tag in enumerate(iob2):
        if tag.startswith("I-") and start is not None:
            continue  # iob1_to_iob2 guarantees the type matches
        if start is not None:
            spans.append((kind, start, i))
            start, kind = None, None
        if tag.startswith("B-"):
            start, kind = i, tag[2:]
    if start is not None:
        spans.append((kind, start, len(iob2)))
    return spans


# ------------------------------------------------------------------------------------- reader


def read_conll(
    path: str | Path,
    tag_column: int = -1,
    token_column: int = 0,
    num_columns: int | None = None,
    scheme: str = "IOB2",
    repair: bool = False,
    input_scheme: str | None = None,
    label_set: Iterable[str] | None = None,
) -> list[Sentence]:
    """Read a CoNLL-style file into sentences with tags in ``scheme``.

    ``num_columns``: the number of columns (separated by spaces or tabs) every token line must have (None:
    whatever the first token line has). ``input_scheme``: the scheme the file is written in
    (default: ``scheme``); IOB1 or IOBES input is validated as such, then converted to ``scheme``.
    ``label_set``: if given, the only tags allowed in the file (checked as written, before any
    conversion).

    Errors (:class:`DataError`, each naming ``file:line``): a line with the wrong number of
    columns, a tag the scheme does not know or outside ``label_set``, and a tag sequence that
    breaks the input scheme's rules. With ``repair=True`` the last kind is fixed instead (an orphan
    ``I-X`` starts a new entity, i.e. becomes ``B-X``; see :func:`repair`), and each sentence's
    ``repairs`` lists the positions changed (:func:`count_repairs` totals them).
    """
    path = Path(path)
    scheme = _check_scheme(scheme)
    source = _check_scheme(input_scheme or scheme)
    labels = None if label_set is None else set(label_set)
    text = read_text(path)
    # universal newlines (CRLF / CR → "\n", as open() reads them); str.splitlines() would also split on
    # \x0b, \x1c, \u2028 etc., which can occur inside tokens and would shift line numbers
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    sentences: list[Sentence] = []
    rows: list[list[str]] = []
    numbers: list[int] = []
    doc = 0
    seen_docstart = False

    def flush():
        if rows:
            sentences.append(_finish(rows, numbers, path, doc, tag_column, token_column, source, scheme, repair, labels))
            rows.clear()
            numbers.clear()

    for number, line in enumerate(lines, 1):
        fields = [x for x in _FIELDS.split(line.strip(" \t")) if x]
        if not fields:
            flush()
            continue
        if fields[0] == DOCSTART:
            flush()
            if seen_docstart or sentences:  # sentences before the first -DOCSTART- form document 0
                doc += 1
            seen_docstart = True
            continue
        if num_columns is None:
            num_columns = len(fields)
            for name, col in (("tag_column", tag_column), ("token_column", token_column)):
                if not -num_columns <= col < num_columns:
                    raise DataError(
                        f"{where(path, number)}: {name}={col} is out of range for a file with {num_columns} columns"
                    )
        elif len(fields) != num_columns:
            raise DataError(f"{where(path, number)}: expected {num_columns} columns, found {len(fields)}: {line.strip()!r}")
        rows.append(fields)
        numbers.append(number)
    flush()
    return sentences


def _finish(rows, numbers, path, doc, tag_column, token_column, source, scheme, do_repair, labels) -> Sentence:
    tokens = [r[token_column] for r in rows]
    raw = [r[tag_column] for r in rows]
    for i, tag in enumerate(raw):
        try:
            split_tag(tag, source)
        except ValueError as e:
            raise DataError(f"{where(path, numbers[i])}: {e}") from None
        if labels is not None and tag not in labels:
            raise DataError(f"{where(path, numbers[i])}: tag {tag!r} is not in the label set ({', '.join(sorted(labels))})")
    tags, repaired = _check_sequence(raw, source, scheme, do_repair, lambda i: where(path, numbers[i]))
    columns = [list(c) for c in zip(*rows)]
    return Sentence(tokens, tags, columns, list(numbers), str(path), doc, repaired)


def _check_sequence(raw, source, scheme, do_repair, place) -> tuple[list[str], list[int]]:
    found = _violation(raw, source)
    repaired: list[int] = []
    if found is not None:
        if not do_repair:
            i, reason = found
            raise DataError(
                f"{place(i)}: invalid {source} tag sequence: {reason}; pass repair=True to read an orphan "
                f"I-X as the start of a new entity"
            )
        fixed, _ = repair(raw, source)
        repaired = [i for i, (a, b) in enumerate(zip(raw, fixed)) if a != b]
        raw = fixed
    return (list(raw) if source == scheme else convert(raw, source, scheme)), repaired


def count_repairs(sentences: Iterable[Sentence]) -> int:
    """Tags changed by ``repair=True`` over all the sentences."""
    return sum(len(s.repairs) for s in sentences)


# ------------------------------------------------------------------------------------ datasets


def to_dataset(sentences: Sequence[Sentence], ids: Sequence[str] | None = None):
    """A ``datasets.Dataset`` with ``id`` (string, as on the Hub; default ``"0"``, ``"1"``, ...),
    ``tokens`` and ``ner_tags`` (string tags) columns, one row per sentence."""
    from datasets import Dataset, Features, Sequence as HFSequence, Value

    features = Features(
        {"id": Value("string"), "tokens": HFSequence(Value("string")), "ner_tags": HFSequence(Value("string"))}
    )
    return Dataset.from_dict(
        {
            "id": [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(sentences))],
            "tokens": [list(s.tokens) for s in sentences],
            "ner_tags": [list(s.tags) for s in sentences],
        },
        features=features,
    )


def from_hub_rows(
    rows: Iterable[dict[str, Any]],
    label_names: Sequence[str],
    scheme: str = "IOB2",
    repair: bool = False,
    input_scheme: str | None = None,
    name: str = "hub",
):
    """Hub-style rows (``tokens`` and integer ``ner_tags`` indexing ``label_names``, the
    ``ClassLabel`` names) -> the same ``Dataset`` as :func:`to_dataset`, validated the same way as
    :func:`read_conll` (errors name ``<name> row N``, 0-based). An ``id`` column is kept if present."""
    source = _check_scheme(input_scheme or scheme)
    names = list(label_names)
    sentences: list[Sentence] = []
    ids: list[str] = []
    for n, row in enumerate(rows):
        place = f"{name} row {n}"
        tokens, ids_ = list(row["tokens"]), list(row["ner_tags"])
        if len(tokens) != len(ids_):
            raise DataError(f"{place}: {len(tokens)} tokens but {len(ids_)} ner_tags")
        raw = []
        for i, k in enumerate(ids_):
            if isinstance(k, str):
                tag = k
            elif not 0 <= int(k) < len(names):
                raise DataError(f"{place}, token {i}: tag id {k} is out of range for {len(names)} label names")
            else:
                tag = names[int(k)]
            try:
                split_tag(tag, source)
            except ValueError as e:
                raise DataError(f"{place}, token {i}: {e}") from None
            raw.append(tag)
        if not tokens:
            continue
        tags, repaired = _check_sequence(raw, source, scheme, repair, lambda i, p=place: f"{p}, token {i}")
        sentences.append(Sentence(tokens, tags, [tokens, tags], [], None, 0, repaired))
        ids.append(str(row.get("id", n)))
    return to_dataset(sentences, ids)
