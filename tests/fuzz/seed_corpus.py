#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_decode from protocol.md's hex examples.

Each fsp-hex block becomes one file named by the sha256 of its bytes; one more
file holds all examples back to back, as a stream of several frames.
Usage: tests/fuzz/seed_corpus.py [protocol.md [corpus/decode]]
"""
import hashlib
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
doc = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../protocol.md")
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "corpus/decode")

text = open(doc, encoding="utf-8").read()
blocks = re.findall(r"^```fsp-hex [^\n]+\n(.*?)^```", text, re.M | re.S)
frames = [bytes.fromhex(" ".join(b.split())) for b in blocks]
os.makedirs(out, exist_ok=True)
for data in frames + [b"".join(frames)]:
    name = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(frames) + 1} seeds in {out}")
