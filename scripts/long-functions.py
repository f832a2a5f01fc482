#!/usr/bin/env python3
"""Lists production functions longer than LIMIT lines that do not say why.

A function is counted from its `fn` line to its closing brace (as `cargo fmt` lays it
out). Tests are left out: `tests/` folders, `tests.rs` files, code after `#[cfg(test)]`,
and the conformance suite. A long function passes if the comment just above it (its doc
comment included) has the words "Long on purpose", followed by the reason.

    scripts/long-functions.py [crates]      exits 1 if any function is listed
"""
import os
import re
import sys

LIMIT = 65
FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
SKIP_FILES = {"tests.rs", "conformance.rs"}


def is_test_path(root):
    parts = root.split(os.sep)
    return "tests" in parts or "benches" in parts


def long_functions(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    end = next((i for i, l in enumerate(lines) if l.startswith("#[cfg(test)]")), len(lines))
    found = []
    for i in range(end):
        m = FN.match(lines[i])
        if not m:
            continue
        indent, name = m.group(1), m.group(7)
        # The signature ends at the first line ending in `{` (a body) or `;` (none).
        j = i
        while j < end and not lines[j].rstrip().endswith(("{", ";", "}")):
            j += 1
        if j >= end or not lines[j].rstrip().endswith("{"):
            continue
        while j < end and lines[j] != indent + "}":
            j += 1
        length = j - i + 1
        if length <= LIMIT:
            continue
        above = []
        k = i - 1
        while k >= 0 and lines[k].strip().startswith(("///", "//", "#[")):
            above.append(lines[k])
            k -= 1
        if not any("Long on purpose" in l for l in above):
            found.append((length, f"{path}:{i + 1}", name))
    return found


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else "crates"
    found = []
    for root, _, files in os.walk(top):
        if is_test_path(root):
            continue
        for f in files:
            if f.endswith(".rs") and f not in SKIP_FILES:
                found += long_functions(os.path.join(root, f))
    for length, where, name in sorted(found, reverse=True):
        print(f"{where}: `{name}` is {length} lines (over {LIMIT}) and does not say why")
    if found:
        print("Split it into steps a reader can name, or write `Long on purpose: <why>` above it.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
