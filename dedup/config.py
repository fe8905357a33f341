"""Every tunable of the pipeline, one frozen dataclass per stage.

Defaults were chosen by measurement on benchmarks/data/ecbplus-dev only (509 articles,
44 events); the comment on each says how. LSH bands and rows are derived from the
thresholds by datasketch, never asked of the user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

# The option strings settings take: mypy holds callers to these values, and
# ``configfile`` checks a TOML file's against them.
# ``CandidateConfig.lsh_options``: which LSH signal (copies: word 5-grams; events: salient terms).
CandidateSignal = Literal["copies", "events"]
# ``IndexConfig.story_refresh``: when a touched cluster's story is merged again.
StoryRefresh = Literal["read", "add"]


@dataclass(frozen=True, slots=True)
class Range:
    """Where a setting makes sense (closed interval). ``configfile`` refuses a settings file
    outside it: such a value fails deep inside a stage (``num_perm = 0``) or silently means
    nothing (a threshold of 5)."""

    low: float
    high: float = math.inf


# The settings' kinds, each with its range.
Share = Annotated[float, Range(0.0, 1.0)]  # a similarity, weight or factor
Threshold = Annotated[float, Range(1e-9, 1.0)]  # an LSH Jaccard threshold, above 0
Count = Annotated[int, Range(1)]
Size = Annotated[int, Range(2)]  # of a bucket, component or signature
Natural = Annotated[int, Range(0)]  # 0 turns the rule off
Amount = Annotated[float, Range(0.0)]  # a power, days, seconds
Ratio = Annotated[float, Range(1.0)]
MinHashes = Annotated[int, Range(2, 4096)]  # per signature; 4096 already errs by only 0.016
Seed = Annotated[int, Range(0, 2**32 - 1)]  # what datasketch's MinHash takes


@dataclass(frozen=True, slots=True)
class NormalizeConfig:
    """Boilerplate detection beyond the fixed patterns in ``normalize``."""

    # A line of at most this many words that one source repeats in this many of its
    # articles is a template (footer, promo). Small values only: syndicated copies
    # repeat whole articles across sources, which this rule never touches.
    template_min_articles: Count = 3
    template_max_words: Count = 12
    # ... unless this many sources carry the line: then it is shared content (a wire
    # story's title and short sentences), not furniture. On heavy-tailed synthetic 100k
    # (100 sources), every short line of the big events was stripped as a template.
    template_max_sources: Count = 3


@dataclass(frozen=True, slots=True)
class SignatureConfig:
    """MinHash signatures for the two candidate signals (copies and events)."""

    num_perm: MinHashes = 128  # datasketch's default; estimation error ~ 1/sqrt(128) = 0.09
    seed: Seed = 1  # datasketch's default seed, so values equal MinHash(seed=1)
    # Copies: word n-gram shingles, the web-dedup recipe for syndicated text.
    shingle_size: Count = 5


@dataclass(frozen=True, slots=True)
class CandidateConfig:
    """LSH thresholds: cheap recall first, precision comes from ``refine``."""

    # Copies: 0.5 is the common recipe; near-verbatim copies sit far above it.
    copies_threshold: Threshold = 0.5
    # Events: same-event rewrites share few salient terms (the seeds: content-word
    # Jaccard 0.20). datasketch turns 0.02 into 82 bands of 1 row, i.e. "share a sampled
    # salient term". On ecbplus-dev: candidate recall 0.925 at 0.02 vs 0.752 at 0.05 and
    # 0.303 at 0.1 (30 terms), for 13 pairs per article.
    events_threshold: Threshold = 0.02
    # Events pairs must share this many LSH bands (~ this many salient-term min-hashes).
    events_min_collisions: Count = 1
    # Each article keeps its events partners sharing the most bands, up to this many.
    # Clusters only need to be connected (linkage inside a component sees every pair),
    # so 20 lost no gold pair on ecbplus-dev while capping synthetic corpora, whose
    # articles share a topic vocabulary, at ~20-40 pairs per article instead of 160+.
    events_max_per_doc: Count | None = 20
    # An LSH bucket holding more articles than this does not pair all its members, so
    # candidates stay near-linear: it is split, then chained (``crowded_chain``).
    # Copies buckets hold verbatim syndication, which can be large; an events bucket is
    # articles whose sampled salient term is the same, and its pairs grow quadratically.
    # On a 20k synthetic corpus an events cap of 100 enumerated 946 pair codes per article
    # (memory ~8 KB each, quadratic in corpus size) against 169 at 20, for the same F1
    # (0.990); no ecbplus-dev bucket exceeds 20.
    copies_max_bucket_size: Size = 100
    events_max_bucket_size: Size = 20
    # A crowded events bucket is split by up to this many further min-hashes of its
    # members before it is chained (below): a common term plus another shared sampled term is
    # evidence. Set by measurement on the synthetic corpus (see CHANGELOG).
    events_split_depth: Natural = 2
    # A bucket still over its cap (after splitting) is connected, not dropped: each member,
    # in document order, pairs with the next this many (``candidates.chain_pairs``), so a
    # story syndicated to hundreds of outlets stays one component at 2 pairs per member
    # per band; refine then scores those pairs like any other (#18). 0 drops such buckets.
    crowded_chain: Natural = 2
    # Exact copies (equal copies signatures: the same normalized text) are always one copy
    # group: one node for candidates, scoring, linkage and DF, whose members all join its
    # cluster (``dedup.copies``). A value here also groups near-exact copies whose
    # signatures agree on at least this share of min-hashes (estimated word 5-gram
    # Jaccard); batch engine only, so None (the default) keeps the three engines alike.
    copies_group_threshold: Share | None = None

    def lsh_options(self, signal: CandidateSignal) -> dict[str, Any]:
        """``candidates.lsh_pairs`` keyword arguments for the ``copies`` or ``events`` signal."""
        if signal == "copies":
            return {"threshold": self.copies_threshold,
                    "max_bucket_size": self.copies_max_bucket_size,
                    "chain": self.crowded_chain}
        if signal == "events":
            return {"threshold": self.events_threshold,
                    "max_bucket_size": self.events_max_bucket_size,
                    "min_collisions": self.events_min_collisions,
                    "max_per_doc": self.events_max_per_doc,
                    "split_depth": self.events_split_depth,
                    "chain": self.crowded_chain}
        raise ValueError(f"unknown candidate signal {signal!r}: use 'copies' or 'events'")


@dataclass(frozen=True, slots=True)
class RefineConfig:
    """Pair scoring: TF-IDF cosine of words, blended with names and title."""

    sublinear_tf: bool = True  # a word said ten times is not ten times the evidence
    # IDF squared for body words and names: terms shared by the two events of one topic
    # ("rehab", "earthquake") fall well below the ones that name the event. On
    # ecbplus-dev (full pairwise matrix, average link) this moved ARI 0.842 -> 0.854
    # for names and precision 0.78 -> 0.89 for body words; power 3 over-sharpened.
    idf_power: Amount = 2.0
    # Weights of the blended pair score (sum to 1), chosen by a grid on ecbplus-dev:
    # body+names carry the event, title and numbers break ties between sibling events.
    text_weight: Share = 0.4
    names_weight: Share = 0.4
    title_weight: Share = 0.1
    numbers_weight: Share = 0.1
    # Articles that both name years but share none: score multiplied by this. On
    # ecbplus-dev (WPGMA at 0.13) 0.5 moved pairwise precision 0.930 -> 0.965 at ARI
    # 0.919 -> 0.914; 0.7 helped less. 1.0 disables the rule.
    year_conflict_factor: Share = 0.5
    # Articles published further apart than this many days never match (undated ones
    # always may). A product choice, not a fit: ecbplus-dev has no dates. Syndication and
    # rewrites of one event appear within days; two weeks leaves room for weeklies, while
    # the same kind of event a month later (another quake, next year's vote) is another
    # story. None disables the window.
    date_window_days: Amount | None = 14.0
    # Body terms per article fed to the events signature (top TF-IDF weight). On
    # ecbplus-dev candidate recall was 0.871 with 20 terms, 0.926 with 30 and 0.948 with 40
    # (at threshold 0.02), for 4,582, 6,573 and 9,162 candidate pairs: 30 is the knee.
    salient_terms: Count = 30


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Graph clustering without chaining."""

    # Weighted average-link (WPGMA) merge threshold within each component: a group joins
    # another only if their mean blended score reaches it, so A~B~C chains split. On
    # ecbplus-dev's full pairwise matrix WPGMA beat UPGMA (ARI 0.912 vs 0.882) and
    # single link (0.79); 0.125-0.137 was the plateau, see CHANGELOG for the sweep.
    link_threshold: Share = 0.13
    # Candidate pairs below this never join a component. Equal to link_threshold loses
    # nothing: an average-link merge needs at least one pair at the threshold.
    edge_threshold: Share = 0.13
    # Components larger than this are cut by raising their edge threshold in 0.05 steps
    # before linkage, which is quadratic in component size (memory ~ 8 * size^2 bytes).
    max_component_size: Size = 5000
    # In a component of at least this many rows (copy groups counting once), linkage
    # groups are joined while their true mean similarity (copies counted) reaches
    # link_threshold (``clustering.rejoin``): WPGMA's equal halves split big events of
    # hundreds of rewrites (#18). ecbplus-dev's largest component has 33 articles, so its
    # outputs are unchanged; on heavy-tailed synthetic 10k the 1,703-version event went
    # from 2 fragments (pair recall 0.970) to 1, and F1 from 0.992 to 1.000.
    rejoin_min_size: Size = 100
    # An excerpt (a teaser, an RSS summary, a one-line lede) scores ~0.10 against the
    # story it was cut from. An article of at most excerpt_max_tokens tokens is tied to
    # longer ones that open with the same excerpt_opening_tokens tokens, published within
    # excerpt_max_days; after linkage, one in a group of short articles only joins the
    # group holding most of them (``dedup.excerpts``); 0 tokens turns it off. Heavy-tailed
    # synthetic 100k: pair F1 0.9947 -> 0.9999, the last event of 300+ versions under 0.95
    # to 1.000; ecbplus-dev unchanged (no group of short articles).
    # A negative excerpt_max_days means no date window.
    excerpt_max_tokens: Natural = 60
    excerpt_opening_tokens: Count = 10
    excerpt_max_days: float = 2.0


@dataclass(frozen=True, slots=True)
class MergeConfig:
    """Sentence alignment and difference extraction for canonical stories."""

    # Two sentences state the same claim when their token cosine reaches this.
    align_threshold: Share = 0.5
    # A sentence whose content words lie this much inside one story sentence is the same
    # claim split or joined differently (near-copies); 0.8 kept the planted-change benchmark
    # (benchmarks/merge_quality.py) free of duplicate sentence differences.
    containment_threshold: Share = 0.8
    # Story sentences with fewer content words (numbers count) than this ("Const.",
    # "Watch:") carry no claim worth a `sentence` difference; 2 keeps "She was 85."-size
    # facts only when they name something, and drops one-word fragments.
    min_sentence_words: Natural = 2
    # A "title" longer than this (or of several sentences) is a lead paragraph that a
    # plain-text reader took for the headline; headlines in ecbplus-dev are <= 30 words.
    max_title_words: Count = 30
    # A story sentence is compared through at most this many member sentences, which bounds
    # alignment cost on clusters of many syndicated copies; 4 changed no benchmark number.
    max_node_representatives: Count = 4
    # Numbers in sentences too different to align are compared only when they share a role
    # and are within this factor (143 vs 144 dead); 23 vs 1,500 arrested are two different
    # counts. 2.0 removed such pairs on real ecbplus-dev clusters without losing the seeds.
    cross_number_max_ratio: Ratio = 2.0


@dataclass(frozen=True, slots=True)
class IndexConfig:
    """``StoryIndex`` (incremental, persistent) settings; the other stages' settings still apply.

    Placement reuses ``CandidateConfig``, ``RefineConfig`` and ``ClusterConfig``; these
    fields choose the placement rule, bound the per-article cost and choose when stories
    are merged.
    """

    # Average similarity to a cluster's members needed to join it; None means
    # ClusterConfig.link_threshold, the batch's average-link threshold.
    join_threshold: Share | None = None
    # Events partners scored per new article (those sharing the most LSH bands first);
    # None means CandidateConfig.events_max_per_doc (20). Copies candidates are all scored.
    # Scoring them is the largest stage of an add. On ecbplus-dev, ARI vs batch (1 / 10 /
    # 100 per add) is 0.987 / 0.972 / 0.989 with 12 and 0.987 / 0.970 / 0.991 with 20, but
    # 0.965 at 10 per add with 10 or 8. On the first 30k synthetic articles (100 per add),
    # 12 adds 7% more per second than 20 (1,165 vs 1,088 CPU adds/s, run side by side) for
    # F1 vs gold 0.9928 instead of 0.9942 (batch: 0.9900).
    events_candidates: Count | None = 12
    # Members (most recent first) compared when averaging similarity to a large cluster.
    max_link_members: Count = 100
    # Re-link the neighbourhood of each add with the batch's weighted average linkage
    # (issue #6): the new articles' component over stored edges, whole clusters included,
    # re-clustered as the batch does with the current IDF (see StoryIndex). False keeps the
    # greedy placement only (join the best cluster, never merge or split). On ecbplus-dev
    # in file order, ARI vs batch 0.810 -> 0.987 one article per add, 0.810 -> 0.972 ten.
    relink: bool = True
    # Candidate pairs scoring at least this are stored as edges of the graph whose
    # components bound the re-linkage (None: ClusterConfig.edge_threshold). Lower than the
    # batch's edge threshold because a pair is scored once, with the IDF of its arrival,
    # and may reach edge_threshold only later. ARI vs batch on ecbplus-dev (1 / 10 per
    # add): 0.962 / 0.956 at 0.13, 0.987 / 0.964 at 0.091, 0.987 / 0.970 at 0.078,
    # 0.973 / 0.973 at 0.065, 0.961 / 0.956 at 0.052 (relink_refresh 1): 0.08 is on the plateau.
    relink_edge_threshold: Share | None = 0.08
    # A neighbourhood larger than this many articles is not re-linked (its new articles
    # keep their greedy placement): linkage is quadratic in it (300 articles: 0.7 MB of
    # scores, a few ms). The largest batch component on ecbplus-dev has 33 articles.
    relink_max_size: Size = 300
    # Least recently linked components re-linked per added article besides the new
    # articles' own (rounded up per add), so stories no article touches follow the
    # drifting IDF; 0 disables. ARI vs batch on ecbplus-dev (1 / 10 / 100 per add): 0.935 /
    # 0.937 / 0.972 with 0, 0.987 / 0.970 / 0.991 with 0.05, 0.1 and 0.25 alike (0.970 with
    # 1 at 10 per add). On the first 30k synthetic articles (100 per add): ARI vs batch
    # 0.9929 with 0.1 and 0.25, 0.9928 with 0.05, and 0.1 adds 3% more per second than 0.25
    # (0.25 cost 1.2x adds/s against 0 and 1 cost 1.8x, benchmarks.index_bench --docs 20000).
    relink_refresh: Amount = 0.1
    # When a touched cluster's story is merged again: "read" (on the first read after the
    # change, then cached) or "add" (inside the add transaction; readers never merge).
    story_refresh: StoryRefresh = "read"
    # Seconds a writer waits for another process's write transaction before failing.
    busy_timeout: Amount = 30.0


@dataclass(frozen=True, slots=True)
class Config:
    """All stages' settings; pass ``config=`` to any entry point."""

    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    signatures: SignatureConfig = field(default_factory=SignatureConfig)
    candidates: CandidateConfig = field(default_factory=CandidateConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    clustering: ClusterConfig = field(default_factory=ClusterConfig)
    merge: MergeConfig = field(default_factory=MergeConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
