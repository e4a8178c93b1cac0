"""Customer records with known truth for the identity-resolution benchmarks, written to Parquet.

    .venv/bin/python bench/resolution_generator.py --records 100000 [--seed 1] [--easy] [--out FILE]

The generator itself is `threadline.resolution.synthetic` (the tests use it too); this script writes its
output (the model's record columns plus `person`, the truth) to a Parquet file and prints what is in it.
`load` is what the other resolution benchmarks call: it reuses a file in `bench/.data/` when the same
(records, seed, mode) was generated before by the same generator.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import common
from threadline.resolution import synthetic
from threadline.resolution.synthetic import generate


def path_for(records: int, seed: int, easy: bool) -> Path:
    """The cache file; its name carries a digest of the generator's source, so a changed generator
    never reuses records an older one wrote."""
    source = Path(synthetic.__file__).read_bytes()
    version = hashlib.sha1(source).hexdigest()[:8]
    return common.DATA / f"resolution-{'easy' if easy else 'real'}-{records}-seed{seed}-{version}.parquet"


def load(records: int, seed: int, easy: bool = False) -> pa.Table:
    """The generated records, from `bench/.data/` when generated before (generation is deterministic)."""
    path = path_for(records, seed, easy)
    if path.exists():
        return pq.read_table(path)
    table = generate(records, seed=seed, easy=easy)
    common.DATA.mkdir(exist_ok=True)
    pq.write_table(table, path)
    return table


def describe(table: pa.Table) -> str:
    rows = table.to_pylist()
    sizes = Counter(Counter(r["person"] for r in rows).values())
    people = sum(sizes.values())
    true_pairs = sum(n * (n - 1) // 2 * count for n, count in sizes.items())
    han = sum(1 for r in rows if not (r["full_name"] or f"{r['first_name']}{r['last_name']}").isascii())
    missing = {
        c: sum(r[c] is None for r in rows) / len(rows) for c in ("birth_date", "email", "phone", "street")
    }
    return (
        f"{len(rows):,} records of {people:,} people ({true_pairs:,} true pairs); records per person: "
        + ", ".join(f"{n}: {sizes[n]:,}" for n in sorted(sizes))
        + f"; names in Han script: {han / len(rows):.0%}; missing: "
        + ", ".join(f"{c} {share:.0%}" for c, share in missing.items())
    )


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--records", type=int, default=100_000)
    args.add_argument("--seed", type=int, default=1)
    args.add_argument("--easy", action="store_true", help="FEBRL-like: Latin names, small changes only")
    args.add_argument("--out", type=Path, help="Parquet file (default: bench/.data/resolution-...)")
    options = args.parse_args()
    start = time.perf_counter()
    table = generate(options.records, seed=options.seed, easy=options.easy)
    elapsed = time.perf_counter() - start
    out = options.out or path_for(options.records, options.seed, options.easy)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    print(f"{describe(table)}\ngenerated in {elapsed:.1f} s, written to {out}")


if __name__ == "__main__":
    main()
