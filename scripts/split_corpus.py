"""Assemble the bundled corpus from topic files: deduplicate, keep probe sentences out, split train/validation.

python -m scripts.split_corpus SOURCE_DIR [--valid-share 0.05]
Writes assets/corpus/train.txt and valid.txt. A line goes to validation when a hash of its text falls in the
validation share, so the split is stable when topic files grow and no line can be in both.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from core.compare.probes import fill_mask_probes, topic_sentences
from core.paths import ASSETS


def probe_sentences() -> list[str]:
    """Every probe sentence as it reads in full: a corpus line containing one would leak it into training."""
    return [s for _, s in topic_sentences()] + [p.sentence.replace("[MASK]", p.expected) for p in fill_mask_probes()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path)
    p.add_argument("--valid-share", type=float, default=0.05)
    args = p.parse_args()
    probes = probe_sentences()
    seen, train, valid, dropped = set(), [], [], 0
    for path in sorted(args.source.glob("*.txt")):
        for line in path.read_text(encoding="utf-8-sig").splitlines():
            line = " ".join(line.split())
            if not line or line in seen:
                continue
            seen.add(line)
            if any(p in line for p in probes):
                dropped += 1
                continue
            bucket = int(hashlib.md5(line.encode()).hexdigest()[:8], 16) / 16**8
            (valid if bucket < args.valid_share else train).append(line)
    out = ASSETS / "corpus"
    (out / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    (out / "valid.txt").write_text("\n".join(valid) + "\n", encoding="utf-8")
    print(f"train {len(train)} lines, valid {len(valid)} lines, {dropped} dropped for containing a probe sentence")


if __name__ == "__main__":
    main()
