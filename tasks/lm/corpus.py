"""Text corpora for the language-model tasks, split by document, never by position in one stream.

- The embedded corpus: the 78 distinct documents of Python's own ``pydoc_data.topics`` (about 465 KB of
  English prose about the language), which every install of Python has. It differs between Python versions, so
  its SHA-256 is part of the task's data definition: another version's text trains other base networks
  in other folders.
- WikiText-2 raw, as released: ``wiki.train.raw``, ``wiki.valid.raw``, ``wiki.test.raw``.
- C4-style JSON lines (``{"text": ...}`` per line, gzipped or not): files whose names hold ``train``,
  ``valid`` and optionally ``test``; without a test file the validation documents are split in two,
  alternately.

Reading never runs code: raw text and ``json.loads`` only.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.core.errors import HarnessError
from harness.core.seeding import derive_seed

SPLITS = ("train", "val", "test")
HELD_OUT_DOCUMENTS = 8  # of the embedded corpus's 78, for validation and again for test
SPLIT_SEED = 20240501  # fixed: the same documents in every split for every run
JOIN = "\n\n"


@dataclass(frozen=True)
class Corpus:
    documents: dict[str, tuple[str, ...]]  # split -> its documents
    definition: str  # what the corpus is, with a checksum: part of a base network's identity

    def text(self, split: str) -> str:
        return JOIN.join(self.documents[split])


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_documents(documents: list[str], held_out: int, seed: int = SPLIT_SEED) -> dict[str, tuple[str, ...]]:
    """A fixed random choice of ``held_out`` documents for validation, as many more for test, the rest train."""
    order = torch.randperm(len(documents), generator=torch.Generator().manual_seed(derive_seed(seed, "documents")))
    picked = [documents[i] for i in order.tolist()]
    return {"val": tuple(picked[:held_out]), "test": tuple(picked[held_out : 2 * held_out]),
            "train": tuple(picked[2 * held_out :])}


def python_topics() -> Corpus:
    """The embedded corpus: ``pydoc_data.topics``, by topic name, split by document."""
    from pydoc_data.topics import topics  # start-up: 465 KB of text, only for the language-model tasks

    documents = list(dict.fromkeys(topics[name] for name in sorted(topics)))  # "if" and "else" share a text
    digest = sha256(JOIN.join(documents))
    return Corpus(split_documents(documents, HELD_OUT_DOCUMENTS),
                  f"pydoc_data.topics sha256 {digest}: {len(documents)} documents, {HELD_OUT_DOCUMENTS} validation "
                  f"and {HELD_OUT_DOCUMENTS} test by document (seed {SPLIT_SEED}), joined by blank lines")


WIKITEXT = {"train": "wiki.train.raw", "val": "wiki.valid.raw", "test": "wiki.test.raw"}


def read_json_lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    texts = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise HarnessError(f"{path}:{number} is not a JSON line ({e.msg}); valid: one object "
                                       'with a "text" string per line') from None
                if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                    raise HarnessError(f'{path}:{number} has no "text" string; valid: one object with a '
                                       '"text" string per line')
                texts.append(record["text"])
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise HarnessError(f"cannot read {path}: {e}") from None
    return texts


def files_digest(files: list[Path]) -> str:
    """SHA-256 of the files' names and contents, in the order given."""
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def json_line_files(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {s: [] for s in SPLITS}
    for path in sorted(folder.iterdir()):
        if not path.name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")):
            continue
        for split, word in (("train", "train"), ("val", "valid"), ("test", "test")):
            if word in path.name:
                found[split].append(path)
    return found


def from_folder(folder: Path) -> Corpus:
    """WikiText-2 raw or C4-style JSON lines, whichever ``folder`` holds."""
    if not folder.is_dir():
        raise HarnessError(f"--data-dir {folder} is not a folder; valid: a folder holding wiki.train.raw, "
                           "wiki.valid.raw and wiki.test.raw, or JSON-lines files named *train*/*valid*")
    if all((folder / name).is_file() for name in WIKITEXT.values()):
        files = [folder / WIKITEXT[s] for s in SPLITS]
        try:
            texts = {s: (folder / WIKITEXT[s]).read_text(encoding="utf-8") for s in SPLITS}
        except (OSError, UnicodeDecodeError) as e:
            raise HarnessError(f"cannot read WikiText-2 raw in {folder}: {e}") from None
        return Corpus({s: (t,) for s, t in texts.items()},
                      f"WikiText raw ({', '.join(WIKITEXT.values())}) sha256 {files_digest(files)}")
    found = json_line_files(folder)
    if not found["train"] or not found["val"]:
        raise HarnessError(f"--data-dir {folder} holds neither WikiText-2 raw (wiki.train.raw, wiki.valid.raw, "
                           "wiki.test.raw) nor JSON-lines files named *train* and *valid* (.json, .jsonl, "
                           ".json.gz or .jsonl.gz)")
    documents = {s: [t for path in paths for t in read_json_lines(path)] for s, paths in found.items()}
    how = "test files"
    if not documents["test"]:
        documents["test"] = documents["val"][1::2]
        documents["val"] = documents["val"][0::2]
        how = "validation documents split alternately into validation and test"
    for split in SPLITS:
        if not documents[split]:
            raise HarnessError(f"--data-dir {folder}: the {split} files hold no documents")
    files = [p for s in SPLITS for p in found[s]]
    return Corpus({s: tuple(d) for s, d in documents.items()},
                  f"JSON lines {', '.join(p.name for p in files)} sha256 {files_digest(files)} ({how})")


def byte_tokens(text: str) -> torch.Tensor:
    """The byte-level tokenizer of the embedded model: UTF-8 bytes, 256 ids, nothing to train."""
    return torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).to(torch.long)
