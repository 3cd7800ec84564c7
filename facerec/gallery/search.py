"""1:N search over the prototypes: one Protocol, two homes for the index.

The `Gallery` owns the truth (the `prototypes` table) and asks a
`PrototypeSearch` for the nearest people:

* `FaissSearch` (`facerec.gallery.faiss_search`), the default on both
  databases: a FAISS cache stamped with the gallery revision it reflects,
  caught up (patched from the rows and tombstones written since, else
  rebuilt) at the start of every search. Beside a SQLite file it is also
  saved to disk; over PostgreSQL it lives in each process's memory.
* `PgvectorSearch` (`facerec.gallery.pgvector_search`), PostgreSQL with
  `--index hnsw`: pgvector's HNSW index inside the database, no cache.

Besides answering queries, a search is told about writes, because each
design needs a different moment: pgvector builds its index inside the
transaction that pins the dimension, FAISS drops its file before a deletion
and patches its cache after a commit.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from facerec.gallery.records import Hit
from facerec.gallery.state import GalleryState, PrototypeChange


class PrototypeSearch(Protocol):
    """Nearest prototypes by cosine similarity, kept in step with the gallery's writes."""

    def search(self, queries: npt.NDArray[np.float32], k: int) -> list[list[Hit]]:
        """The `k` most similar people per row of `queries` (unit rows, (n, dim)), best first.

        `k` >= 0, clipped to the number of people; an empty gallery gives an
        empty list per row; ValueError when `dim` is not the gallery's.
        """
        ...

    def dimension_pinned(self, s: Session, dim: int | None) -> None:
        """Inside the write transaction that sets (`dim`) or clears (None) the gallery's dimension."""
        ...

    def forgetting(self) -> None:
        """Before a deletion: drop every copy of prototypes kept outside the database."""
        ...

    def committed(
        self, old_revision: int, after: GalleryState, change: PrototypeChange | None
    ) -> None:
        """After a write from `old_revision` committed as `after`; `change` None: rebuild."""
        ...

    def close(self) -> None:
        """Release what the search holds in memory."""
        ...


def check_query_dim(queries: npt.NDArray[np.float32], dim: int, model_name: str) -> None:
    """ValueError unless the queries have the gallery's dimension (same words on both databases)."""
    if queries.shape[1] != dim:
        raise ValueError(
            f"queries have dimension {queries.shape[1]}, the gallery's model "
            f"{model_name} gives {dim}"
        )
