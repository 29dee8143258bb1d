"""Shared fixtures: the paper's T5 protocol (ids from the spec), the shipped tokenizer, paths."""

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SYNPRE_SHARED_DIR", REPO.parent / "shared"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The original generator's own output (data, not code): 10 lines per task, copied from
# shared/spec/reference_samples so that a clone without ../shared runs the golden tests too.
REFERENCE_SAMPLES = FIXTURES / "reference_samples"
SHARED_REFERENCE_SAMPLES = SHARED / "spec" / "reference_samples"

# shared/spec/seed_code.md §1.2: the input prefixes of the original generator, in T5 ids
T5_PREFIXES = {
    "copy": (2405,),
    "set": (356,),
    "reverse": (7211,),
    "duplicate": (19197,),
    "deduplicate": (20, 26, 413, 26221),
    "first_char": (166, 834, 4059),
    "last_char": (336, 834, 4059),
    "length": (2475,),
    "longest_word": (14783, 834, 6051),
    "count": (3476,),
    "delete": (9268,),
    "search": (960,),
    "sort": (1843,),
    "replace": (3601,),
    "union": (7021,),
    "intersect": (27806,),
    "set_1_minus_2": (356, 834, 536, 834, 14078, 834, 357),
    "set_2_minus_1": (356, 834, 357, 834, 14078, 834, 536),
}
# numbers whose T5 encodings the spec documents (§1.2); the rest need the real spiece.model
T5_NUMBERS = {74: (4581,), 36: (4475,), 58: (3449,), 22: (1630,), 45: (3479,), 186: (25398,)}
NUMBER_MARK = -100000  # placeholder ids: numbers[n] = (NUMBER_MARK - n,)


def make_t5_protocol():
    from hf_synpre.tasks import TokenProtocol

    return TokenProtocol(
        sampling_ids=np.arange(2, 32000, dtype=np.int32),
        task_divider=32099,
        word_divider=32098,
        arg_divider=32097,
        empty_output=32096,
        yes=(4273,),
        no=(150,),
        prefixes=T5_PREFIXES,
        numbers=tuple((NUMBER_MARK - n,) for n in range(1025)),
        vocab_size=32100,
        name="t5 (spec ids)",
    )


def reassemble(inputs, targets, sentinels):
    """Put every target span back in place of its sentinel."""
    sent = set(int(s) for s in sentinels)
    spans, cur = {}, None
    for t in targets:
        if t in sent:
            cur = t
            spans[cur] = []
        else:
            spans[cur].append(t)
    out = []
    for t in inputs:
        out.extend(spans[t] if t in sent else [t])
    return out


@pytest.fixture(scope="session")
def t5_protocol():
    return make_t5_protocol()


@pytest.fixture(scope="session")
def default_protocol():
    from hf_synpre import protocol_for

    return protocol_for()


# ----------------------------------------------------------------------------------------- downstream data
CODE_TRANSLATION_HOWTO = (
    "the real CodeXGLUE Java->C# copy (../shared/data/code_translation beside the repository, or "
    "$SYNPRE_DATA_DIR/code_translation; the same rows are google/code_x_glue_cc_code_to_code_trans on the Hub)"
)


def real_code_translation_root():
    """The offline data root holding the real code_translation folder, or None."""
    from hf_synpre.downstream import find_data_dir

    root = find_data_dir()
    return root if root is not None and (root / "code_translation").is_dir() else None


def write_code_translation_folder(folder: Path, sizes=(("train", 64), ("valid", 24), ("test", 16))) -> Path:
    """A small folder in the CodeXGLUE layout (``{split}.java-cs.txt.{java,cs}``, line i translates line i):
    made-up Java methods and their C# translations, so the recipes run where the real copy is absent."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = ["getValue", "setName", "isEmpty", "size", "clear", "toString", "count", "reset"]
    types = [("int", "int"), ("String", "string"), ("boolean", "bool"), ("long", "long")]
    for split, n in sizes:
        java, cs = [], []
        for _ in range(n):
            name = str(rng.choice(names))
            jt, ct = types[int(rng.integers(len(types)))]
            field = f"f{int(rng.integers(100))}"
            java.append(f"public {jt} {name}() {{ return this.{field}; }}")
            cs.append(f"public {ct} {name[0].upper() + name[1:]}() {{ return this.{field}; }}")
        (folder / f"{split}.java-cs.txt.java").write_text("\n".join(java) + "\n", encoding="utf-8")
        (folder / f"{split}.java-cs.txt.cs").write_text("\n".join(cs) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def code_translation_root(tmp_path_factory):
    """An offline data root with a ``code_translation`` folder: the real one where it exists, else a small
    stand-in in the same format (the recipes' tests need the format, not the real pairs)."""
    root = real_code_translation_root()
    if root is not None:
        return root
    root = tmp_path_factory.mktemp("data")
    write_code_translation_folder(root / "code_translation")
    return root
