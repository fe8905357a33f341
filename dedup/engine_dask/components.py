"""Connected components of the accepted edges by label propagation with pointer jumping,
each round a few shuffles of (node, label) arrays; labels end as each component's
smallest node."""

from __future__ import annotations

import dataclasses

import numpy as np

from dedup.engine_dask.records import Edges, Graph, Jumped, Messages, Received
from dedup.engine_dask.routing import owner, route, split

__all__ = ["answer", "edges_by_group", "init", "jump", "labels_by_part", "messages",
           "receive"]


def _min_by(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum value per distinct key (keys sorted ascending in the result)."""
    if not len(keys):
        return keys, values
    order = np.lexsort((values, keys))
    keys, values = keys[order], values[order]
    first = np.concatenate(([True], keys[1:] != keys[:-1]))
    return keys[first], values[first]


def _messages(buckets: int, node: np.ndarray, label: np.ndarray) -> list[Messages]:
    return [Messages(*s) for s in split(route(node, buckets), buckets, node, label)]


def init(*slices: Edges) -> Graph:
    """The edges of one source bucket; each node starts with its smallest neighbour."""
    src, dst, score = (np.concatenate([getattr(s, f) for s in slices])
                       for f in ("src", "dst", "score"))
    order = np.lexsort((dst, src))
    src, dst, score = src[order], dst[order], score[order]
    nodes, lowest = _min_by(src, dst)
    return Graph(src, dst, score, nodes, np.minimum(nodes, lowest))


def messages(graph: Graph, buckets: int) -> list[Messages]:
    """Every node tells its neighbours the smallest label it knows."""
    return _messages(buckets, *_min_by(graph.dst, graph.label_of(graph.src)))


def receive(graph: Graph, buckets: int, *heard: Messages) -> Received:
    """Take the smallest label heard; ask each node's label for its own (pointer jumping)."""
    node, label = _min_by(*Messages.joined(heard))
    labels = graph.labels.copy()
    at = np.searchsorted(graph.nodes, node)
    np.minimum.at(labels, at, label)
    changed = int(np.sum(labels != graph.labels))
    new = dataclasses.replace(graph, labels=labels)
    ask = labels != graph.nodes
    requests = [Messages(*s) for s in split(route(labels[ask], buckets), buckets,
                                            graph.nodes[ask], labels[ask])]
    return Received(requests, new, changed)


def answer(graph: Graph, buckets: int, *requests: Messages) -> list[Messages]:
    """Each asking node gets the label of the node it asked about."""
    node, target = Messages.joined(requests)
    return _messages(buckets, node, graph.label_of(target))


def jump(graph: Graph, *answers: Messages) -> Jumped:
    node, label = Messages.joined(answers)
    labels = graph.labels.copy()
    np.minimum.at(labels, np.searchsorted(graph.nodes, node), label)
    return Jumped(dataclasses.replace(graph, labels=labels),
                  int(np.sum(labels != graph.labels)))


def labels_by_part(graph: Graph, offsets: np.ndarray) -> list[Messages]:
    """Each node's final label, sent to the partition holding the node."""
    return [Messages(*s) for s in split(owner(graph.nodes, offsets), len(offsets) - 1,
                                        graph.nodes, graph.labels)]


def edges_by_group(graph: Graph, buckets: int) -> list[Edges]:
    """Each edge once (low -> high), sent to its component's bucket."""
    one_way = graph.src < graph.dst
    src, dst, score = graph.src[one_way], graph.dst[one_way], graph.score[one_way]
    return [Edges(*s) for s in split(route(graph.label_of(src), buckets), buckets,
                                     src, dst, score)]
