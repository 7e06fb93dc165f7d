"""The text clustering behind failure themes: TF-IDF, LSA, k-means with a silhouette-chosen k.

One reason's failure texts at a time (:func:`cluster_texts`). Deterministic: every estimator
has a fixed ``random_state``, and the sample is chosen by the caller, so the same texts give
the same clusters, terms and order on every run and machine.

Why these pieces:

* **TF-IDF on word unigrams and bigrams** (English stop words and numbers out, sublinear term
  frequency): failure texts are short, and a theme is a topic ("refund policy", "medical
  advice") or a shape ("unterminated string"); words give readable theme names, which
  character n-grams do not.
* **Truncated SVD (LSA) to at most 64 dimensions**, rows L2-normalised: k-means on the sparse
  matrix would measure Euclidean distance between bags of 20,000 words; on normalised LSA
  vectors it is cosine distance between topics, and each fit is a few milliseconds.
* **k-means, k chosen by the silhouette** (2..``max_themes``, on a capped subsample) rather
  than agglomerative clustering with a distance threshold: agglomerative needs the n x n
  distance matrix (5,000 texts: 200 MB, seconds) and a threshold that depends on how wordy
  the texts are; the silhouette picks k from the data and says when there is no structure
  (best score below ``min_silhouette``: one theme).
* The rest of the reason's texts (past the sample) and the previous period's are assigned to
  the nearest centroid (cosine); a previous-period text is counted only when it is as close
  as the theme's own members are (see :attr:`Clusters.radius`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

SEED: Final = 0
LSA_DIMENSIONS: Final = 64
TOKENS: Final = r"(?u)\b[^\W\d_][^\W\d_]+\b"
"""Words of two letters or more: numbers, ids and amounts make no theme."""
TERMS_PER_THEME: Final = 3


@dataclass(frozen=True, slots=True)
class ClusterParams:
    """How the texts of one reason are clustered."""

    max_themes: int = 12
    """The most themes one reason is split into."""
    merge_similarity: float = 0.1
    """Micro-clusters whose centres are at least this cosine-similar (average linkage) are
    one theme."""
    micro_clusters: int = 40
    """k of the first, fine k-means."""
    min_theme_size: int = 5
    """Micro-clusters are at most one per this many texts (fewer than twice this: one theme)."""


@dataclass(frozen=True, slots=True)
class Clusters:
    """One reason's texts in clusters: the model, to place other texts, and its names."""

    vectorizer: TfidfVectorizer
    svd: TruncatedSVD | None
    centroids: np.ndarray
    """Unit vectors, one row per cluster."""
    terms: tuple[tuple[str, ...], ...]
    """The top terms of each cluster, best first."""
    radius: np.ndarray
    """Per cluster: the cosine similarity to its centroid that 99% of its members reach. A
    previous-period text less similar than this to its nearest centroid is in no theme."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit LSA vectors of ``texts`` (zero rows for texts with no known word)."""
        matrix = self.vectorizer.transform(texts)
        dense: np.ndarray = self.svd.transform(matrix) if self.svd is not None else matrix.toarray()
        return np.asarray(normalize(dense))

    def similarities(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine similarity of each vector to each centroid (rows x clusters)."""
        return np.asarray(vectors @ self.centroids.T)

    def assign(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Each text's nearest cluster and its cosine similarity to that centroid."""
        with threadpool_limits(limits=1):
            sims = self.similarities(self.embed(texts))
        nearest = sims.argmax(axis=1)
        return nearest, sims[np.arange(len(texts)), nearest]


def cluster_texts(sample: Sequence[str], params: ClusterParams) -> Clusters:
    """Cluster ``sample`` (the texts of one reason, already capped and in a stable order), on
    one thread: k-means' OpenMP threads on a busy two-core host took 2.6 s for 300 texts that
    one thread clusters in 0.04 s, and 5,000 texts need no more than one core."""
    with threadpool_limits(limits=1):
        return _cluster(sample, params)


def _cluster(sample: Sequence[str], params: ClusterParams) -> Clusters:
    vectorizer = TfidfVectorizer(
        token_pattern=TOKENS,
        ngram_range=(1, 2),
        stop_words="english",
        sublinear_tf=True,
        min_df=2 if len(sample) >= 20 else 1,
        max_features=20_000,
        dtype=np.float64,
    )
    try:
        matrix = vectorizer.fit_transform(sample)
    except ValueError:  # no word in any text: nothing to tell them apart by
        vectorizer = TfidfVectorizer(token_pattern=r"(?u)\S+", lowercase=True)
        matrix = vectorizer.fit_transform([text or "-" for text in sample])
    dimensions = min(LSA_DIMENSIONS, matrix.shape[1] - 1, len(sample) - 1)
    svd = TruncatedSVD(dimensions, random_state=SEED) if dimensions >= 2 else None
    dense = svd.fit_transform(matrix) if svd is not None else matrix.toarray()
    vectors = np.asarray(normalize(dense))
    labels = _labels(vectors, params)
    count = int(labels.max()) + 1
    centroids = np.asarray(
        normalize(np.vstack([vectors[labels == c].mean(axis=0) for c in range(count)]))
    )
    sims = np.asarray(vectors @ centroids.T)
    nearest = sims.argmax(axis=1)  # k-means' own labels, by cosine: ties and all
    own = sims[np.arange(len(sample)), nearest]
    radius = np.array(
        [np.quantile(own[nearest == c], 0.01) if (nearest == c).any() else 1.0
         for c in range(count)]
    )  # fmt: skip
    return Clusters(
        vectorizer=vectorizer,
        svd=svd,
        centroids=centroids,
        terms=top_terms(matrix, nearest, count, vectorizer.get_feature_names_out()),
        radius=radius,
    )


def _labels(vectors: np.ndarray, params: ClusterParams) -> np.ndarray:
    """Cluster labels of ``vectors`` (unit rows): k-means into micro-clusters, then micro-
    clusters merged by average-linkage agglomerative clustering of their centres while they
    are at least ``merge_similarity`` alike (at most ``max_themes`` clusters). Numbered by
    size, largest first; all zeros when there are too few texts to split."""
    n = len(vectors)
    micro = min(params.micro_clusters, n // params.min_theme_size)
    micro = min(micro, len(np.unique(vectors.round(6), axis=0)))
    if micro < 2:
        return np.zeros(n, dtype=np.int64)
    fine = np.asarray(KMeans(n_clusters=micro, n_init=2, random_state=SEED).fit(vectors).labels_)
    present = sorted(set(fine.tolist()))
    centres = np.asarray(normalize(np.vstack([vectors[fine == c].mean(axis=0) for c in present])))
    if len(present) < 2:
        return np.zeros(n, dtype=np.int64)
    merged = AgglomerativeClustering(
        n_clusters=None,
        distance_threshold=1.0 - params.merge_similarity,
        metric="cosine",
        linkage="average",
    ).fit(centres)
    coarse = np.asarray(merged.labels_)
    if int(coarse.max()) + 1 > params.max_themes:
        coarse = np.asarray(
            AgglomerativeClustering(
                n_clusters=params.max_themes, metric="cosine", linkage="average"
            )
            .fit(centres)
            .labels_
        )
    of_micro = dict(zip(present, coarse.tolist(), strict=True))
    labels = np.array([of_micro[c] for c in fine.tolist()], dtype=np.int64)
    # renumber by size (then first appearance), so cluster 0 is the largest on every run
    order = sorted(set(labels.tolist()), key=lambda c: (-int((labels == c).sum()), c))
    mapping = np.zeros(int(labels.max()) + 1, dtype=np.int64)
    for new, old in enumerate(order):
        mapping[old] = new
    return mapping[labels]


def top_terms(
    matrix: Any, labels: np.ndarray, count: int, names: Sequence[str]
) -> tuple[tuple[str, ...], ...]:
    """Per cluster, the terms whose mean TF-IDF in it most exceeds their mean in the rest
    (the whole mean when it is the only cluster); a word already inside a chosen bigram (or a
    bigram of chosen words) is skipped, so three terms say three things."""
    result = []
    csr = matrix.tocsr()
    total = np.asarray(csr.sum(axis=0)).ravel()
    n = csr.shape[0]
    for cluster in range(count):
        members = labels == cluster
        inside = np.asarray(csr[members].sum(axis=0)).ravel()
        size = int(members.sum())
        score = inside / max(size, 1)
        if count > 1 and n > size:
            score = score - (total - inside) / (n - size)
        chosen: list[str] = []
        for index in np.lexsort((np.arange(len(score)), -score)):
            if score[index] <= 0 or len(chosen) == TERMS_PER_THEME:
                break
            term = str(names[index])
            words = set(term.split())
            if any(words <= set(c.split()) or set(c.split()) <= words for c in chosen):
                continue
            chosen.append(term)
        result.append(tuple(chosen))
    return tuple(result)
