"""Assemble the bundled corpus from topic files: deduplicate, keep probe sentences out, split train/validation.

python -m scripts.split_corpus SOURCE_DIR [--valid-share 0.05]
Writes assets/corpus/train.txt and valid.txt. A line goes to validation when a hash of its text falls in the
validation share, so the split is stable when topic files grow and no line can be in both.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from core.compare.probes import everyday_probes, fill_mask_probes, topic_sentences
from core.formatting import count
from core.paths import ASSETS
from scripts.progress import stage


def probe_sentences() -> list[str]:
    """Every probe sentence as it reads in full: a corpus line containing one would leak it into training."""
    return ([s for _, s in topic_sentences()] + [p.sentence.replace("[MASK]", p.expected) for p in fill_mask_probes()]
            + [p.sentence.replace("[MASK]", answer) for p in everyday_probes() for answer in p.answers])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path)
    p.add_argument("--valid-share", type=float, default=0.05)
    args = p.parse_args(argv)
    topics = sorted(args.source.glob("*.txt"))
    if not topics:
        print(f"error: {args.source} holds no topic files (*.txt); give the folder of the corpus's topic files.",
              file=sys.stderr)
        return 2
    if not 0 < args.valid_share < 1:
        print(f"error: --valid-share must be between 0 and 1, not {args.valid_share}.", file=sys.stderr)
        return 2
    probes = probe_sentences()
    seen, train, valid, dropped = set(), [], [], 0
    for path in topics:
        stage(f"reading {path.name} ...")
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
    print(f"train {count(len(train), 'line')}, valid {count(len(valid), 'line')}, {dropped:,} dropped for containing a "
          "probe sentence")
    return 0


if __name__ == "__main__":
    sys.exit(main())
