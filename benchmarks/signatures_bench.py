"""Signature speed: dedup's vectorised MinHash against datasketch's ``MinHash.update_batch``.

    python -m benchmarks.signatures_bench [--docs 5000] [--num-perm 128]

Both sides get the same articles (synthetic corpus, normalised by dedup) and the same
word 5-gram shingles and permutations; the check at the end confirms the signatures are
equal (datasketch is given dedup's shingle hash as its ``hashfunc``). Times are per
document, from token lists to finished signature; datasketch's figure excludes building
its shingle byte strings, so the ratio is in datasketch's favour.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from datasketch import MinHash

from benchmarks.synthetic import generate
from dedup import pipeline
from dedup.config import SignatureConfig
from dedup.signatures import MinHasher, TokenHasher, copy_shingles, shingle_hash


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--num-perm", type=int, default=128)
    args = parser.parse_args(argv)
    corpus = generate(args.docs)
    tokens = [pipeline.prepare(a["text"], a.get("title") or "", frozenset()).tokens
              for a in corpus.articles]
    config = SignatureConfig(num_perm=args.num_perm)
    n = config.shingle_size
    shingles = [
        [" ".join(t[i : i + min(n, len(t))]).encode() for i in range(max(len(t) - n + 1, 1))]
        if t else []
        for t in tokens
    ]

    start = time.perf_counter()
    reference = []
    for doc in shingles:
        m = MinHash(num_perm=args.num_perm, seed=config.seed, hashfunc=shingle_hash)
        m.update_batch(doc)
        reference.append(m.hashvalues)
    datasketch_s = time.perf_counter() - start

    start = time.perf_counter()
    for doc in shingles:  # the recipe people run: default SHA-1 hash, other values
        m = MinHash(num_perm=args.num_perm, seed=config.seed)
        m.update_batch(doc)
    default_s = time.perf_counter() - start

    start = time.perf_counter()
    ours = MinHasher(args.num_perm, config.seed).signatures(
        copy_shingles(tokens, config, TokenHasher())
    )
    dedup_s = time.perf_counter() - start

    equal = all(np.array_equal(a, b) for a, b in zip(reference, ours, strict=True))
    per = 1e6 / len(tokens)
    print(f"{len(tokens):,} documents, {np.mean([len(s) for s in shingles]):.0f} shingles "
          f"each on average, {args.num_perm} permutations")
    print("| system | µs per document | times dedup's time |")
    print("|---|---|---|")
    print(f"| datasketch update_batch, dedup's hashfunc (equal values) | "
          f"{datasketch_s * per:,.0f} | {datasketch_s / dedup_s:.1f} |")
    print(f"| datasketch update_batch, default sha1_hash32 | {default_s * per:,.0f} | "
          f"{default_s / dedup_s:.1f} |")
    print(f"| dedup MinHasher (tokens -> signatures) | {dedup_s * per:,.0f} | 1.0 |")
    print(f"signatures equal: {equal}")


if __name__ == "__main__":
    main()
