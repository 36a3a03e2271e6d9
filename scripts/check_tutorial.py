#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# docs/tutorial.md must show every examples/tutorial/stepN_*.cpp verbatim (from its first #include
# line to its end) as a ```cpp block, in step order, so the code a reader copies is the code that
# the examples suite builds and runs. Exits 1 and says which step drifted.
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
page = (root / "docs" / "tutorial.md").read_text()
steps = sorted((root / "examples" / "tutorial").glob("step*_*.cpp"),
               key=lambda p: int(re.match(r"step(\d+)_", p.name).group(1)))
if not steps:
    sys.exit("check_tutorial: no examples/tutorial/step*_*.cpp found")

blocks = re.findall(r"^```cpp\n(.*?)^```$", page, re.S | re.M)
position = 0  # the next block a step may match: steps appear in order
for step in steps:
    text = step.read_text()
    first_include = re.search(r"^#include", text, re.M)
    if not first_include:
        sys.exit(f"check_tutorial: {step.name} has no #include line")
    code = text[first_include.start():]
    try:
        position = blocks.index(code, position) + 1
    except ValueError:
        where = "out of order in" if code in blocks else "not shown verbatim in"
        sys.exit(f"check_tutorial: examples/tutorial/{step.name} (from its first #include on) is "
                 f"{where} docs/tutorial.md; copy the file's code into its ```cpp block")
print(f"check_tutorial: {len(steps)} steps shown verbatim, in order")
