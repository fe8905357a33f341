"""``StoryIndex``: an incremental, persistent story index for feed aggregators.

Why: a feed delivers articles a few at a time, forever. Re-clustering everything on each
arrival costs O(corpus); the index places each new article against what it already holds
and keeps a rolling window on disk (embedded SQLite, WAL mode: one writer and any number of
readers in other processes).

How an article is placed (each choice mirrors a batch stage, see ``pipeline.cluster``):

- normalization: ``pipeline.prepare`` (fixed boilerplate patterns; per-source template
  lines are a corpus statistic the index does not learn). A text seen lately (the same
  lines once boilerplate is stripped, the same title: verbatim syndication) reuses its
  terms and copies signature (``texts.TextCache``), and rows with the same terms share one
  vector and one score per pair of texts (``TermStore.content``, ``vectors.Vectors``): a
  wire story run by hundreds of outlets costs about what one text does (#18);
- streaming TF-IDF: document frequencies (DF) per term are counted as articles arrive (and
  leave, on ``expire``), in memory; SQLite keeps each article's term ids, from which DF is
  counted again at open. Vectors are computed with the *current* IDF, with the blend of
  ``refine.build_features``: body and names with IDF^``idf_power``, title, numbers,
  L2-normalised per block and weighted, plus the year-conflict factor. A batch's DF is
  counted before any of its articles is placed, so within one ``add`` a vector never
  changes and each is computed once (``vectors.Vectors``);
- candidates: copies and events MinHash signatures (``signatures``), the events terms being
  the top ``salient_terms`` body terms by TF-IDF with the DF at arrival. Signatures are
  stored as blobs and never recomputed. The candidate rules are the batch's
  (``CandidateConfig.lsh_options``: bands and rows from datasketch's ``MinHashLSH``,
  crowded buckets split then chained, the events cap), but buckets live in compact sorted
  numpy tables (see ``bands.BandIndex``) rebuilt at open in seconds, where inserting 20k
  articles into datasketch's dict storage took 13 s. A batch is
  looked up, and its candidates scored, all at once: both are independent of where its
  earlier articles are placed (each article still sees the batch's earlier articles);
- placement, first greedy: the new article joins the existing cluster whose *average*
  similarity with its members is highest, if that reaches ``link_threshold`` and at least
  one member scored ``edge_threshold``; otherwise it starts a new cluster. Its candidate
  pairs scoring at least ``IndexConfig.relink_edge_threshold`` are stored as edges;
- re-linkage (issue #6; ``IndexConfig.relink``), in the same transaction: the new
  articles' neighbourhood (their connected component over stored edges, closed over
  cluster membership; the one-hop neighbourhood when that exceeds ``relink_max_size``;
  nothing when even that does) is clustered again exactly as ``clustering``'s
  ``cluster_documents`` does in a batch (components at ``edge_threshold``, then weighted
  average linkage at ``link_threshold``, then ``excerpts.regroup``) over dense scores
  with the *current* IDF; excerpts are tied to longer articles with their opening on add,
  as stored edges (``openings``: ``excerpts.edges``, as in the batch); then
  ``relink_refresh`` components per new article are re-linked from a queue of the least
  recently linked clusters, so stories no article touches follow the drifting IDF. On
  ecbplus-dev in file order this agrees with batch ``cluster`` at ARI 0.987 (one article
  per add) and 0.972 (ten per add), against 0.810 for greedy placement alone.

Cluster id rules (the re-linkage may move members, merge and split clusters):

- a group of re-linked articles keeps an existing id by maximal overlap: ids handed out
  before this add are matched to groups greedily, largest overlap (members from before
  this add) first, ties by the older cluster, then the group's earliest article; each id
  and each group is matched at most once;
- bridging: an article matching two stories goes wherever the linkage puts it; the
  stories merge only when the linkage joins them (their weighted average similarity,
  bridge included, reaches ``link_threshold``). Then the older id continues the merged
  story and the other is *retired* into it: ``story(old)`` raises ``RetiredClusterError``
  (a KeyError naming the live id; ``follow=True`` returns the live story), ``resolve``
  maps it to the live id, ``retired(updated_since)`` lists it, the ``retired`` of what
  ``add`` returns (``Added``) lists it, and so does ``Placement.merged`` of the new
  articles in the story that continues it;
- a group left without an id (a new story, or the part split off an old one) gets a new
  id, ``"c" + sha1(first member id)[:12]`` (the batch id of that singleton), salted when a
  live or retired cluster has it: an id is never handed out twice. Clusters emptied by
  ``expire`` or ``remove`` are retired too (reason ``"expired"`` or ``"removed"``);
- every cluster whose members changed is marked updated, so ``clusters(updated_since)``
  and ``stories(updated_since)`` report it.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "feeds.db"
    >>> with StoryIndex.open(path) as index:
    ...     placed = index.add([{"id": "a", "text": "Quake hits Lima, 40 dead."}])
    ...     placed[0].is_new_cluster, index.story(placed[0].cluster_id).members
    (True, ('a',))

Where each part lives:

- ``records``: ``Placement``, ``ClusterInfo``, ``RetiredCluster`` and the errors;
- ``story_index``: ``StoryIndex`` (open, close, ``add``), built from the parts below;
- ``store``: the SQLite schema, format checks and upgrades, write transactions and rows;
- ``state``: what placement reads in memory, loaded from the file (``load_state``);
- ``inputs``, ``texts`` and ``terms``: articles as ``add`` takes them, their terms (once
  per distinct text) and DF;
- ``bands``: the LSH band storage behind the candidates stage's rules;
- ``vectors``: TF-IDF vectors and blended scores (``refine``'s arithmetic);
- ``placement``: one add's steps, greedy placement first;
- ``relink``: the re-linkage, clustered by ``clustering``'s stage functions;
- ``openings``: excerpts (``dedup.excerpts``): each row's opening, ties on add, and the
  ties and ``Openings`` of a neighbourhood being re-linked;
- ``ids``: stable cluster ids; ``expiry``: ``expire`` and ``remove``; ``reads``: the read API.
"""

from __future__ import annotations

from dedup.index.records import (
    FORMAT,
    FORMAT_VERSION,
    Added,
    ClusterInfo,
    Placement,
    RetiredCluster,
    RetiredClusterError,
    StoryIndexError,
)
from dedup.index.story_index import StoryIndex

__all__ = ["FORMAT", "FORMAT_VERSION", "Added", "ClusterInfo", "Placement", "RetiredCluster",
           "RetiredClusterError", "StoryIndex", "StoryIndexError"]
