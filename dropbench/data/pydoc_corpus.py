"""Write a small real-English word-level corpus for `dataset=textdir` from text every Python
install ships: the help topics of the Python reference manual (`pydoc_data.topics`, about 65k
words). Lower-cased, punctuation split off (identifiers with underscores kept whole), numbers
as N, words outside the training text's most frequent --vocab replaced by <unk> (PTB-style);
topics in their stored order are split 80/10/10 into train/valid/test.

    python -m dropbench.data.pydoc_corpus OUT_DIR [--vocab 2000]
    dropbench train dataset=textdir dataset.path=OUT_DIR model=lstm ...
"""

import argparse
import re
from collections import Counter
from pathlib import Path

TOKEN = re.compile(r"[a-z_]+(?:'[a-z]+)?|\d+(?:\.\d+)?|[^\sa-z_\d]")


def sentences(text: str):
    """Each line with at least three words, tokenised (rules like "* * *" are skipped)."""
    for line in text.lower().splitlines():
        words = ["N" if w[0].isdigit() else w for w in TOKEN.findall(line)]
        if sum(w[0].isalpha() for w in words) >= 3:
            yield words


def main() -> None:
    from pydoc_data.topics import topics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--vocab", type=int, default=2000)
    args = parser.parse_args()
    lines = [words for key in topics for words in sentences(topics[key])]
    cut1, cut2 = int(0.8 * len(lines)), int(0.9 * len(lines))
    splits = {"train": lines[:cut1], "valid": lines[cut1:cut2], "test": lines[cut2:]}
    counts = Counter(w for words in splits["train"] for w in words)
    keep = {w for w, _ in counts.most_common(args.vocab - 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        text = "".join(" ".join(w if w in keep else "<unk>" for w in words) + "\n"
                       for words in split)
        (args.out / f"{name}.txt").write_text(text)
        print(f"{name}: {len(split)} lines, {sum(map(len, split))} words")


if __name__ == "__main__":
    main()
