"""Prototype search on PostgreSQL with `--index hnsw`: pgvector's HNSW index, in the database.

Not the default: a FAISS cache over the rows (`facerec.gallery.faiss_search`)
is, because on face embeddings this index neither keeps recall@1 at 0.99 nor
stays fast beyond about 100,000 people (docs/search.md has the figures).
It remains an option for a gallery whose processes must hold nothing in
memory: each search is one read transaction over the committed rows, so a
write is seen by the next search everywhere.

The `vector` column has no fixed dimension (a gallery can be re-embedded by
a model of another size), and pgvector can only index a fixed dimension. The
index is therefore built on the expression `(vector::vector(D))` for the
gallery's pinned dimension D: when a gallery is opened with `--index hnsw`
(`ensure_index`), and in the very transaction that pins a new dimension. A
process searching through the FAISS cache drops it when the dimension
changes (it could not index the new vectors). A search orders by the same
expression, which is what lets the planner use the index; without the index
the same query is an exact scan.

HNSW is approximate, and face embeddings are a hard case for it: a query
sits far from its own prototype (cosine ~0.6-0.7) compared with strangers
(~0.1), so the graph walk must keep many candidates. Every search therefore
runs at pgvector's maximum, `EF_SEARCH` = 1000; k above that maximum orders
by an expression the index does not serve, an exact scan. Scores are cosine
similarities (1 - cosine distance), the same numbers FAISS gives.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.orm import Session

from facerec.gallery.records import Hit
from facerec.gallery.schema import PROTOTYPE_HNSW_INDEX
from facerec.gallery.search import check_query_dim
from facerec.gallery.state import GalleryState, PrototypeChange, read_state
from facerec.storage import Database, Embedding

#: The HNSW index on the prototypes (not in the ORM: it exists once a dimension is pinned).
HNSW_INDEX = PROTOTYPE_HNSW_INDEX
#: Candidates kept per search (pgvector's default is 40; its maximum 1000).
EF_SEARCH = 1000
_EF_MAX = 1000


class PgvectorSearch:
    """Cosine search in the database of one PostgreSQL gallery."""

    def __init__(self, database: Database, *, exact: bool = False) -> None:
        """`exact`: scan every prototype instead of the HNSW index."""
        self._db = database
        self._exact = exact

    def ensure_index(self) -> None:
        """Build the HNSW index for the pinned dimension if it is missing (minutes at 1M people)."""
        with self._db.read() as s:
            dim = read_state(s).dim
            present = s.scalar(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": HNSW_INDEX})
        if dim is not None and not present:
            with self._db.write() as s:
                dim = read_state(s).dim
                if dim is not None:
                    s.execute(text(create_index_sql(dim, if_not_exists=True)))

    def close(self) -> None:
        """Nothing held outside the database."""

    def search(self, queries: npt.NDArray[np.float32], k: int) -> list[list[Hit]]:
        with self._db.read() as s:
            state = read_state(s)
            if state.dim is None or state.model is None or queries.shape[0] == 0:
                return [[] for _ in range(queries.shape[0])]
            check_query_dim(queries, state.dim, state.model.name)
            if k == 0:
                return [[] for _ in range(queries.shape[0])]
            if self._exact or k > _EF_MAX:
                nearest = nearest_query(state.dim, exact=True)
            else:
                s.execute(text(f"SET LOCAL hnsw.ef_search = {max(EF_SEARCH, k)}"))
                nearest = nearest_query(state.dim)
            return [
                [
                    Hit(name, 1.0 - float(distance))
                    for name, distance in s.execute(nearest, {"q": row, "k": int(k)})
                ]
                for row in queries
            ]

    def dimension_pinned(self, s: Session, dim: int | None) -> None:
        """(Re)build the HNSW index for `dim` in the pinning transaction; None: drop it."""
        s.execute(text(f"DROP INDEX IF EXISTS {HNSW_INDEX}"))
        if dim is not None:
            s.execute(text(create_index_sql(dim)))

    def forgetting(self) -> None:
        """Nothing: no copy of a prototype lives outside the database."""

    def committed(
        self, old_revision: int, after: GalleryState, change: PrototypeChange | None
    ) -> None:
        """Nothing: the index is part of the committed transaction."""


def create_index_sql(dim: int, *, if_not_exists: bool = False) -> str:
    """The HNSW index for `dim`, partial on rows of that dimension.

    Partial because an index build also reads row versions that only older
    transactions still see: a `reembed` to another dimension builds the new
    index in the transaction that rewrote every prototype, beside their old
    versions, which the cast could not take.
    """
    return (
        f"CREATE INDEX {'IF NOT EXISTS ' if if_not_exists else ''}{HNSW_INDEX} ON prototypes "
        f"USING hnsw (({_cast('vector', dim)}) vector_cosine_ops) "
        f"WHERE vector_dims(vector) = {int(dim)}"
    )


def nearest_query(dim: int, *, exact: bool = False) -> TextClause:
    """Names and cosine distances of the `:k` prototypes nearest to `:q`, nearest first.

    The ORDER BY is the indexed expression, so the planner can walk the HNSW
    index. `exact` orders by the uncast column instead, an expression no index
    serves: a full scan and sort, for more answers than an HNSW scan returns.
    """
    distance = (
        "p.vector <=> CAST(:q AS vector)"
        if exact
        else f"{_cast('p.vector', dim)} <=> {_cast(':q', dim)}"
    )
    where = "" if exact else f"WHERE vector_dims(p.vector) = {int(dim)} "  # the index's predicate
    return text(
        f"SELECT i.name, {distance} AS distance "
        "FROM prototypes AS p JOIN identities AS i ON i.id = p.identity_id "
        f"{where}ORDER BY {distance} LIMIT :k"
    ).bindparams(bindparam("q", type_=Embedding()))


def _cast(expression: str, dim: int) -> str:
    """`expression` as a vector of exactly `dim` values: the indexed expression's shape."""
    return f"CAST({expression} AS vector({int(dim)}))"
