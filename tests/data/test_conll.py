"""The CoNLL reader and the tag-scheme utilities in ``harness.data.conll``."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from harness.data.conll import (
    Sentence,
    convert,
    count_repairs,
    entities,
    from_hub_rows,
    iob1_to_iob2,
    iob2_to_iob1,
    iob2_to_iobes,
    iobes_to_iob2,
    read_conll,
    repair,
    split_tag,
    to_dataset,
    validate_tags,
)
from harness.errors import DataError

TYPES = ["PER", "LOC", "ORG", "MISC"]


def write(tmp_path: Path, text: str, name: str = "data.txt", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O
"""


# ------------------------------------------------------------------------------------ reader


def test_reads_four_columns_and_skips_docstart(tmp_path):
    sents = read_conll(write(tmp_path, CONLL))
    assert [s.tokens for s in sents] == [
        ["EU", "rejects", "German", "call", "."],
        ["Peter", "Blackburn"],
        ["BRUSSELS", "1996-08-22"],
    ]
    assert sents[0].tags == ["B-ORG", "O", "B-MISC", "O", "O"]
    assert sents[1].tags == ["B-PER", "I-PER"]
    assert sents[0].lines == [3, 4, 5, 6, 7]
    assert sents[2].lines == [14, 15]
    assert [s.doc for s in sents] == [0, 0, 1]
    assert len(sents[0].columns) == 4
    assert sents[0].columns[1] == ["NNP", "VBZ", "JJ", "NN", "."]
    assert sents[0].columns[0] == sents[0].tokens and sents[0].columns[3] == sents[0].tags
    assert all(s.repairs == [] for s in sents) and count_repairs(sents) == 0


def test_tag_column_choice(tmp_path):
    # the chunk column (index 2) is IOB2 too
    sents = read_conll(write(tmp_path, CONLL), tag_column=2)
    assert sents[0].tags == ["B-NP", "B-VP", "B-NP", "I-NP", "O"]
    assert entities(sents[0].tags) == [("NP", 0, 1), ("VP", 1, 2), ("NP", 2, 4)]
    # token column choice: POS tags as "tokens"
    assert read_conll(write(tmp_path, CONLL), token_column=1)[1].tokens == ["NNP", "NNP"]


def test_two_columns_tab_separated_crlf_no_final_newline_many_blanks(tmp_path):
    text = "\n\n\nJohn\tB-PER\nlives\tO\n\n\n\nin\tO\nParis\tB-LOC"
    for newline in ("\n", "\r\n"):
        sents = read_conll(write(tmp_path, text, newline=newline))
        assert [s.tokens for s in sents] == [["John", "lives"], ["in", "Paris"]]
        assert [s.tags for s in sents] == [["B-PER", "O"], ["O", "B-LOC"]]
        assert sents[1].lines == [9, 10]
        assert sents[1].tokens[-1] == "Paris"  # no stray "\r"


def test_unicode_line_separators_inside_tokens_keep_line_numbers(tmp_path):
    text = "a\u00a0b O\nc\u2028\x85 B-PER\n"
    (sent,) = read_conll(write(tmp_path, text))
    assert sent.tokens == ["a\u00a0b", "c\u2028\x85"] and sent.lines == [1, 2]
    with pytest.raises(DataError, match=r"data\.txt:3:"):
        read_conll(write(tmp_path, text + "d X-Y\n"))


def test_long_sentence_is_kept_whole(tmp_path):
    n = 5000
    text = "".join(f"w{i} {'B-PER' if i % 3 == 0 else 'I-PER' if i % 3 == 1 else 'O'}\n" for i in range(n))
    (sent,) = read_conll(write(tmp_path, text))
    assert len(sent) == n and sent.lines[-1] == n
    assert len(entities(sent.tags)) == (n + 2) // 3


def test_docstart_without_blank_line_ends_the_sentence(tmp_path):
    text = "a O\nb B-PER\n-DOCSTART- O\nc B-LOC\n"
    sents = read_conll(write(tmp_path, text))
    assert [s.tokens for s in sents] == [["a", "b"], ["c"]]
    assert [s.doc for s in sents] == [0, 1]


def test_wrong_column_count_names_file_and_line(tmp_path):
    text = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ O\n"
    path = write(tmp_path, text)
    with pytest.raises(DataError) as e:
        read_conll(path)
    msg = str(e.value)
    assert f"{path}:4" in msg and "expected 4 columns, found 3" in msg
    # an explicit column count is checked from the first token line on
    with pytest.raises(DataError, match=r"data\.txt:3: expected 3 columns, found 4"):
        read_conll(path, num_columns=3)


def test_column_index_out_of_range(tmp_path):
    with pytest.raises(DataError, match=r"data\.txt:1: tag_column=5"):
        read_conll(write(tmp_path, "a B-PER\n"), tag_column=5)


def test_unknown_tag_names_file_and_line(tmp_path):
    path = write(tmp_path, "John B-PER\nSmith X-PER\n")
    with pytest.raises(DataError) as e:
        read_conll(path)
    assert f"{path}:2" in str(e.value) and "'X-PER'" in str(e.value)
    for bad in ("B-", "PER", "b-PER", "S-PER"):  # S- is not an IOB2 prefix
        with pytest.raises(DataError, match=r"data\.txt:1"):
            read_conll(write(tmp_path, f"John {bad}\n"))
    # S- is fine in IOBES
    assert read_conll(write(tmp_path, "John S-PER\n"), scheme="IOBES")[0].tags == ["S-PER"]


def test_label_set_restricts_tags(tmp_path):
    path = write(tmp_path, "John B-PER\nin O\nParis B-GPE\n")
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    with pytest.raises(DataError, match=r"data\.txt:3: tag 'B-GPE' is not in the label set"):
        read_conll(path, label_set=labels)
    assert read_conll(path, label_set=labels + ["B-GPE"])[0].tags == ["B-PER", "O", "B-GPE"]


def test_invalid_iob2_gold_is_an_error_unless_repaired(tmp_path):
    text = "a O\nb I-PER\nc I-PER\nd O\n\ne B-LOC\nf I-ORG\n"
    path = write(tmp_path, text)
    with pytest.raises(DataError) as e:
        read_conll(path)
    msg = str(e.value)
    assert f"{path}:2" in msg and "invalid IOB2" in msg and "'I-PER' after 'O'" in msg and "repair=True" in msg
    sents = read_conll(path, repair=True)
    assert sents[0].tags == ["O", "B-PER", "I-PER", "O"]
    assert sents[1].tags == ["B-LOC", "B-ORG"]
    assert sents[0].repairs == [1] and sents[1].repairs == [1] and count_repairs(sents) == 2
    # a sentence-initial orphan is reported at its own line
    with pytest.raises(DataError, match=r"data\.txt:6:.*the sentence start"):
        read_conll(write(tmp_path, "a O\nb B-PER\n\n\n\nc I-PER\n"))


def test_iob1_input_is_converted(tmp_path):
    # IOB1: entities start with I-, B- separates adjacent entities of one type
    text = "John I-PER\nMary B-PER\nSmith I-PER\nin O\nNew I-LOC\nYork I-LOC\n"
    path = write(tmp_path, text)
    (sent,) = read_conll(path, input_scheme="IOB1")
    assert sent.tags == ["B-PER", "B-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    assert sent.columns[-1] == ["I-PER", "B-PER", "I-PER", "O", "I-LOC", "I-LOC"]  # as written
    (sent,) = read_conll(path, input_scheme="IOB1", scheme="IOBES")
    assert sent.tags == ["S-PER", "B-PER", "E-PER", "O", "B-LOC", "E-LOC"]
    # a B- that does not follow an entity of its type breaks IOB1
    with pytest.raises(DataError, match=r"data\.txt:2: invalid IOB1"):
        read_conll(write(tmp_path, "a O\nb B-PER\n"), input_scheme="IOB1")
    (sent,) = read_conll(write(tmp_path, "a O\nb B-PER\n"), input_scheme="IOB1", repair=True)
    assert sent.tags == ["O", "B-PER"] and sent.repairs == [1]


def test_iobes_input_validation(tmp_path):
    with pytest.raises(DataError, match=r"data\.txt:2: invalid IOBES.*expected I-PER or E-PER"):
        read_conll(write(tmp_path, "a B-PER\nb O\n"), scheme="IOBES")
    (sent,) = read_conll(write(tmp_path, "a B-PER\nb O\n"), scheme="IOBES", repair=True)
    assert sent.tags == ["S-PER", "O"]


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_conll(tmp_path / "nope.txt")
    path = tmp_path / "latin1.txt"
    path.write_bytes("Jos\xe9 B-PER\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_conll(path)


# -------------------------------------------------------------------------------------- tags


def test_split_tag():
    assert split_tag("O") == ("O", None)
    assert split_tag("B-PER") == ("B", "PER")
    assert split_tag("I-WORK-OF-ART") == ("I", "WORK-OF-ART")
    assert split_tag("E-LOC", "IOBES") == ("E", "LOC")
    for bad in ("E-LOC", "B-", "LOC", "", "o"):
        with pytest.raises(ValueError):
            split_tag(bad, "IOB2")
    with pytest.raises(ValueError, match="unknown tag scheme"):
        split_tag("O", "BILUO")


@pytest.mark.parametrize(
    "tags, scheme, expected",
    [
        (["O", "B-PER", "I-PER", "O"], "IOB2", None),
        (["I-PER"], "IOB2", 0),
        (["B-PER", "I-LOC"], "IOB2", 1),
        (["B-PER", "O", "I-PER"], "IOB2", 2),
        (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], "IOB1", None),
        (["O", "B-PER"], "IOB1", 1),
        (["I-LOC", "B-PER"], "IOB1", 1),
        (["S-PER", "B-LOC", "I-LOC", "E-LOC", "O"], "IOBES", None),
        (["B-PER", "O"], "IOBES", 1),
        (["B-PER", "S-PER"], "IOBES", 1),
        (["O", "E-PER"], "IOBES", 1),
        (["I-PER"], "IOBES", 0),
        (["B-PER", "E-LOC"], "IOBES", 1),
        (["O", "B-PER", "I-PER"], "IOBES", 2),  # ends inside an entity
        ([], "IOBES", None),
    ],
)
def test_validate_tags(tags, scheme, expected):
    assert validate_tags(tags, scheme) == expected


def test_conversions_by_hand():
    iob2 = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "I-ORG"]
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "I-ORG"]
    iobes = ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "B-ORG", "I-ORG", "E-ORG"]
    assert iob2_to_iob1(iob2) == iob1
    assert iob1_to_iob2(iob1) == iob2
    assert iob2_to_iobes(iob2) == iobes
    assert iobes_to_iob2(iobes) == iob2
    assert convert(iob1, "IOB1", "IOBES") == iobes
    assert convert(iobes, "IOBES", "IOB1") == iob1
    assert convert(iob2, "BIO", "BIOES") == iobes  # aliases
    expected = [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5), ("ORG", 5, 8)]
    assert entities(iob2) == entities(iob1, "IOB1") == entities(iobes, "IOBES") == expected
    with pytest.raises(ValueError):
        convert(["S-PER"], "IOB2", "IOBES")


def test_repair_and_lenient_reading():
    tags = ["I-PER", "I-PER", "O", "B-LOC", "I-ORG", "I-ORG"]
    fixed, n = repair(tags, "IOB2")
    assert fixed == ["B-PER", "I-PER", "O", "B-LOC", "B-ORG", "I-ORG"] and n == 2
    assert entities(tags) == entities(fixed) == [("PER", 0, 2), ("LOC", 3, 4), ("ORG", 4, 6)]
    assert repair(fixed, "IOB2") == (fixed, 0)


def random_tags(rng: random.Random, n: int, prefixes=("B", "I")) -> list[str]:
    """Any sequence of tags (valid or not) over a small label set."""
    choices = ["O"] + [f"{p}-{t}" for p in prefixes for t in TYPES[: rng.randint(1, len(TYPES))]]
    return [rng.choice(choices) for _ in range(n)]


def random_valid_iob2(rng: random.Random, n: int) -> list[str]:
    return repair(random_tags(rng, n), "IOB2")[0]


@pytest.mark.parametrize("seed", range(20))
def test_round_trips_on_random_valid_sequences(seed):
    rng = random.Random(seed)
    for _ in range(50):
        iob2 = random_valid_iob2(rng, rng.randint(0, 30))
        assert validate_tags(iob2, "IOB2") is None
        spans = entities(iob2)
        iob1 = iob2_to_iob1(iob2)
        assert validate_tags(iob1, "IOB1") is None
        assert iob1_to_iob2(iob1) == iob2
        iobes = iob2_to_iobes(iob2)
        assert validate_tags(iobes, "IOBES") is None
        assert iobes_to_iob2(iobes) == iob2
        # IOB1 -> IOB2 -> IOBES -> IOB2, and every pair through convert()
        assert iobes_to_iob2(iob2_to_iobes(iob1_to_iob2(iob1))) == iob2
        by_scheme = {"IOB1": iob1, "IOB2": iob2, "IOBES": iobes}
        for src, a in by_scheme.items():
            assert entities(a, src) == spans
            assert repair(a, src) == (a, 0)
            for dst, b in by_scheme.items():
                assert convert(a, src, dst) == b
        # spans tile correctly: B- at each start, I- inside, O outside
        rebuilt = ["O"] * len(iob2)
        for kind, start, end in spans:
            rebuilt[start : end] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start - 1)
        assert rebuilt == iob2


@pytest.mark.parametrize("seed", range(10))
def test_repair_always_yields_valid_sequences(seed):
    rng = random.Random(1000 + seed)
    for _ in range(50):
        n = rng.randint(0, 20)
        for scheme, prefixes in (("IOB2", "BI"), ("IOB1", "BI"), ("IOBES", "BIES")):
            tags = random_tags(rng, n, tuple(prefixes))
            fixed, changed = repair(tags, scheme)
            assert validate_tags(fixed, scheme) is None
            assert changed == sum(a != b for a, b in zip(tags, fixed))
            assert (changed == 0) == (validate_tags(tags, scheme) is None)
            assert entities(fixed, scheme) == entities(tags, scheme)


@pytest.mark.parametrize("seed", range(10))
def test_entities_match_seqeval_default_mode(seed):
    from seqeval.metrics.sequence_labeling import get_entities

    rng = random.Random(2000 + seed)
    for _ in range(100):
        tags = random_tags(rng, rng.randint(0, 25))  # valid or not
        expected = [(kind, start, end + 1) for kind, start, end in get_entities(tags)]
        assert entities(tags) == expected


# ---------------------------------------------------------------------------------- datasets


def test_to_dataset_and_from_hub_rows_agree(tmp_path):
    sents = read_conll(write(tmp_path, CONLL))
    ds = to_dataset(sents)
    assert ds.column_names == ["id", "tokens", "ner_tags"]
    assert ds["id"] == ["0", "1", "2"]
    assert ds[1] == {"id": "1", "tokens": ["Peter", "Blackburn"], "ner_tags": ["B-PER", "I-PER"]}

    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]  # HF conll2003 order
    rows = [{"id": str(i), "tokens": s.tokens, "ner_tags": [names.index(t) for t in s.tags]} for i, s in enumerate(sents)]
    hub = from_hub_rows(rows, names)
    assert hub.features == ds.features
    assert hub.to_list() == ds.to_list()

    with pytest.raises(DataError, match="hub row 0, token 1: tag id 9 is out of range"):
        from_hub_rows([{"tokens": ["a", "b"], "ner_tags": [0, 9]}], names)
    with pytest.raises(DataError, match=r"hub row 1, token 0: invalid IOB2"):
        from_hub_rows([{"tokens": ["a"], "ner_tags": [1]}, {"tokens": ["b"], "ner_tags": [2]}], names)
    fixed = from_hub_rows([{"tokens": ["b"], "ner_tags": [2]}], names, repair=True)
    assert fixed["ner_tags"] == [["B-PER"]]
    with pytest.raises(DataError, match="2 tokens but 1 ner_tags"):
        from_hub_rows([{"tokens": ["a", "b"], "ner_tags": [0]}], names)


def test_sentence_is_a_plain_dataclass():
    s = Sentence(["a"], ["O"], [["a"], ["O"]], [1])
    assert len(s) == 1 and s.path is None and s.repairs == []


# ------------------------------------------------------------------------------- real data

DATA_DIR = os.environ.get("HARNESS_DATA_DIR")
# from /work/shared/data/README.md, section A: sentences, tokens, entities, documents
EXPECTED = {
    "train": (14041, 203621, 23499, 946),
    "valid": (3250, 51362, 5942, 216),
    "test": (3453, 46435, 5648, 231),
}


@pytest.mark.skipif(not DATA_DIR, reason="set HARNESS_DATA_DIR to check the real CoNLL-2003 files")
@pytest.mark.parametrize("split", sorted(EXPECTED))
def test_real_conll2003_counts(split):
    path = Path(DATA_DIR) / "conll2003" / f"{split}.txt"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    labels = ["O"] + [f"{p}-{t}" for p in "BI" for t in TYPES]
    sents = read_conll(path, label_set=labels)  # strict IOB2: raises on any violation
    assert all(validate_tags(s.tags, "IOB2") is None for s in sents)
    n_sents, n_tokens, n_entities, n_docs = EXPECTED[split]
    assert len(sents) == n_sents
    assert sum(len(s) for s in sents) == n_tokens
    assert sum(len(entities(s.tags)) for s in sents) == n_entities
    assert max(s.doc for s in sents) + 1 == n_docs
    assert all(len(s.columns) == 4 for s in sents)
    if split == "train":
        counts: dict[str, int] = {}
        for s in sents:
            for t in s.tags:
                counts[t] = counts.get(t, 0) + 1
        assert counts == {"B-LOC": 7140, "B-PER": 6600, "B-ORG": 6321, "B-MISC": 3438, "I-PER": 4528,
                          "I-ORG": 3704, "I-LOC": 1157, "I-MISC": 1155, "O": 169578}
