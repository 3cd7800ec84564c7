"""Group unknown faces by person: a FAISS k-NN graph, a cosine threshold, constrained components.

Each unknown face is linked to its k nearest neighbours (exact inner-product
search over unit vectors, so cosine similarity) when the similarity reaches
the threshold; groups are the connected components of that graph. A k-NN
graph rather than all pairs above the threshold keeps the edge count linear
in the number of faces, however large one person's group gets.

Plain connected components would chain two faces of one photo together
through a third face that resembles both, yet one photo never shows the same
person twice. So the edges are merged strongest first (single linkage,
Kruskal-style with union-find) and an edge is skipped when it would put two
faces of the same photo into one group: a cannot-link constraint, as in
Wagstaff et al., "Constrained K-means Clustering with Background Knowledge"
(ICML 2001), applied to agglomerative merging.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import faiss
import numpy as np
import numpy.typing as npt

#: Neighbours per face in the k-NN graph.
DEFAULT_NEIGHBOURS = 10


def cluster(
    embeddings: npt.ArrayLike,
    photos: Sequence[int],
    threshold: float,
    *,
    neighbours: int = DEFAULT_NEIGHBOURS,
    apart: Collection[tuple[int, int]] = (),
) -> list[list[int]]:
    """Groups of row indices (each sorted; groups ordered by their first row), singletons included.

    `photos[i]` is the photo of row i; two rows of one photo never share a group, nor
    do the two rows of a pair in `apart` (faces a person split apart: cannot-links too).
    """
    x = np.array(embeddings, dtype=np.float32)
    n = x.shape[0] if x.ndim == 2 else 0
    if n != len(photos):
        raise ValueError(f"{n} embeddings but {len(photos)} photo ids")
    if n == 0:
        return []
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.ascontiguousarray(x / np.maximum(norms, 1e-12))
    k = min(n, neighbours + 1)  # +1: a face is its own nearest neighbour
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    sims, nbrs = index.search(x, k)

    edges: dict[tuple[int, int], float] = {}
    for i in range(n):
        for sim, j in zip(sims[i].tolist(), nbrs[i].tolist(), strict=True):
            if j < 0 or j == i or sim < threshold or photos[i] == photos[j]:
                continue
            key = (i, j) if i < j else (j, i)
            edges[key] = max(sim, edges.get(key, -np.inf))

    parent = list(range(n))
    members: dict[int, set[int]] = {i: {photos[i]} for i in range(n)}  # root -> its photos
    apart_of: dict[int, set[int]] = {}
    for i, j in apart:
        apart_of.setdefault(i, set()).add(j)
        apart_of.setdefault(j, set()).add(i)
    rows: dict[int, set[int]] = {i: {i} for i in apart_of}  # root -> its rows, where it matters

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for (i, j), _ in sorted(edges.items(), key=lambda e: (-e[1], e[0])):
        a, b = find(i), find(j)
        if a == b or not members[a].isdisjoint(members[b]):
            continue
        if any(not apart_of[x].isdisjoint(rows.get(b, ())) for x in rows.get(a, ())):
            continue
        if len(members[a]) < len(members[b]):
            a, b = b, a
        parent[b] = a
        members[a] |= members.pop(b)
        if b in rows:
            rows.setdefault(a, set()).update(rows.pop(b))

    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def carry_ids(previous: Mapping[int, int], groups: Sequence[Sequence[int]]) -> list[int | None]:
    """Which existing cluster id each new group keeps (None: it needs a new one).

    Users read cluster ids off a report and type them into `facerec album
    name`, so a rescan must not renumber groups that did not change. Each new
    group takes the old id it shares most faces with, largest overlaps first,
    each old id at most once. `previous` maps face id -> old cluster id;
    `groups` are lists of face ids.
    """
    overlaps: list[tuple[int, int, int]] = []  # (-shared, group, old id)
    for g, faces in enumerate(groups):
        counts: dict[int, int] = {}
        for face in faces:
            old = previous.get(face)
            if old is not None:
                counts[old] = counts.get(old, 0) + 1
        overlaps.extend((-c, g, old) for old, c in counts.items())
    out: list[int | None] = [None] * len(groups)
    used: set[int] = set()
    for _, g, old in sorted(overlaps):
        if out[g] is None and old not in used:
            out[g] = old
            used.add(old)
    return out
