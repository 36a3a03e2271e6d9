#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# docs/tutorial.md must show every examples/tutorial/stepN_*.cpp verbatim (from its first #include
# line to its end) as a ```cpp block, in step order, and no other ```cpp block, so the code a reader
# copies is the code that the examples suite builds and runs. Exits 1 and says what drifted.
# Usage: check_tutorial.py [ROOT]   (the repository root; by default this script's parent's parent)
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
page = (root / "docs" / "tutorial.md").read_text()
steps = sorted((p for p in (root / "examples" / "tutorial").glob("step*_*.cpp")
                if re.match(r"step\d+_", p.name)),
               key=lambda p: int(re.match(r"step(\d+)_", p.name).group(1)))
if not steps:
    sys.exit("check_tutorial: no examples/tutorial/step*_*.cpp found")

blocks = re.findall(r"^```cpp\n(.*?)^```$", page, re.S | re.M)
codes = []
for step in steps:
    text = step.read_text()
    first_include = re.search(r"^#include", text, re.M)
    if not first_include:
        sys.exit(f"check_tutorial: {step.name} has no #include line")
    codes.append(text[first_include.start():])

position = 0  # the next block a step may match: steps appear in order
for step, code in zip(steps, codes):
    try:
        position = blocks.index(code, position) + 1
    except ValueError:
        if code in blocks:
            sys.exit(f"check_tutorial: examples/tutorial/{step.name} is shown in docs/tutorial.md "
                     "before the step it follows; keep the steps in order")
        sys.exit(f"check_tutorial: examples/tutorial/{step.name} (from its first #include on) is "
                 "not shown verbatim in docs/tutorial.md; copy the file's code into its ```cpp "
                 "block")
for number, block in enumerate(blocks, 1):
    if block not in codes:
        sys.exit(f"check_tutorial: docs/tutorial.md's ```cpp block number {number} is no step's "
                 "code (a removed or renamed step?)")
print(f"check_tutorial: {len(steps)} steps shown verbatim, in order")
