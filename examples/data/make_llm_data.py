"""Write the example language-model data set (examples/data/sst2_chat.*.jsonl) from SST-2 sentences.

Each row is an instruction pair made from one SST-2 movie-review sentence and its label:
prompt "Is this review positive or negative? <sentence>", response "<Positive|Negative>. The
review says: <sentence>" (the label word, then the sentence restated verbatim). Only sentences of
at most 20 words are used, so a row fits in about 80 SmolLM2 tokens with the chat template.
The train rows come from sst2.train.txt, val from sst2.dev.txt, test from sst2.test.txt (first
rows in file order that fit). Usage: python examples/data/make_llm_data.py [TEXT_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SIZES = {"train": ("sst2.train.txt", 512), "val": ("sst2.dev.txt", 64), "test": ("sst2.test.txt", 100)}
LABELS = {"0": "Negative", "1": "Positive"}


def rows(path: Path, n: int) -> list[dict]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        label, _, sentence = line.partition(" ")
        if label in LABELS and 0 < len(sentence.split()) <= 20:
            out.append({"prompt": f"Is this review positive or negative? {sentence}",
                        "response": f"{LABELS[label]}. The review says: {sentence}"})
        if len(out) == n:
            break
    return out


def main() -> None:
    here = Path(__file__).resolve().parent
    text_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else here.parents[2] / "shared" / "data" / "text"
    for split, (name, n) in SIZES.items():
        out = here / f"sst2_chat.{split}.jsonl"
        out.write_text("".join(json.dumps(r) + "\n" for r in rows(text_dir / name, n)), encoding="utf-8")
        print(f"{out}: {n} rows")


if __name__ == "__main__":
    main()
