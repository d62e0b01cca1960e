"""Documents read once: empty texts and repeated texts (under any id) left out."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clinsynth.memory.ingest import Document


def digest(text: str) -> str:
    """A short stable digest of ``text``."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


class Dedup:
    """Drops empty documents and repeated texts (under any id); renames an id reused for a
    different text; records each text's digest as ``doc_hash`` metadata."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}
        self.owners: dict[str, str] = {}
        self.documents = 0
        self.skipped_empty = 0
        self.duplicates = 0

    def __call__(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            if not doc.text.strip():
                self.skipped_empty += 1
                continue
            key = digest(doc.text)
            if key in self.owners:
                self.duplicates += 1
                continue
            doc_id = doc.id
            if doc_id in self.seen:
                n = 2
                while f"{doc.id}~{n}" in self.seen:
                    n += 1
                doc_id = f"{doc.id}~{n}"
            self.seen[doc_id], self.owners[key] = key, doc_id
            self.documents += 1
            metadata = {**doc.metadata, "doc_id": doc_id, "doc_hash": key}
            yield doc.model_copy(update={"id": doc_id, "metadata": metadata})
