"""dedup: find news articles about the same event, cluster them, merge each cluster."""

from importlib.metadata import PackageNotFoundError, version

from dedup.config import (
    CandidateConfig,
    ClusterConfig,
    Config,
    IndexConfig,
    MergeConfig,
    NormalizeConfig,
    RefineConfig,
    SignatureConfig,
)
from dedup.configfile import ConfigError, load_config
from dedup.dedupe import DedupeResult, dedupe, dedupe_parquet
from dedup.evaluate import Scores, score
from dedup.index import (
    Added,
    ClusterInfo,
    Placement,
    RetiredCluster,
    RetiredClusterError,
    StoryIndex,
    StoryIndexError,
)
from dedup.merge import merge
from dedup.pipeline import ClusterResult, DedupInputError, cluster
from dedup.records import Article, Assignment, Cluster, Difference, Rejected, Story, StorySentence

try:
    __version__ = version("dedup")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Added",
    "Article",
    "Assignment",
    "CandidateConfig",
    "Cluster",
    "ClusterConfig",
    "ClusterInfo",
    "ClusterResult",
    "Config",
    "ConfigError",
    "DedupInputError",
    "DedupeResult",
    "Difference",
    "IndexConfig",
    "MergeConfig",
    "NormalizeConfig",
    "Placement",
    "RefineConfig",
    "Rejected",
    "RetiredCluster",
    "RetiredClusterError",
    "Scores",
    "SignatureConfig",
    "Story",
    "StoryIndex",
    "StoryIndexError",
    "StorySentence",
    "__version__",
    "cluster",
    "dedupe",
    "dedupe_parquet",
    "load_config",
    "merge",
    "score",
]
