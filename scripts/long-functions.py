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


def without_test_items(lines):
    """The lines, with every item under `#[cfg(test)]` blanked out: an inline module (or
    function) to its closing brace, a `mod tests;` declaration alone."""
    lines = list(lines)
    i = 0
    while i < len(lines):
        if lines[i].strip() != "#[cfg(test)]":
            i += 1
            continue
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        j = i + 1
        while j < len(lines) and lines[j].strip().startswith(("#[", "//")):
            j += 1
        if j < len(lines) and lines[j].rstrip().endswith("{"):
            while j < len(lines) and lines[j] != indent + "}":
                lines[j] = ""
                j += 1
        if j < len(lines):
            lines[j] = ""
        i = j + 1
    return lines


def reason_above(lines, i):
    """Whether the comments and attributes just above line `i` (up to the blank line or
    the end of the item before) say why the function is long."""
    k = i - 1
    while k >= 0:
        line = lines[k].strip()
        if line == "" or line.endswith(("}", ";")) and not line.startswith(("//", "#")):
            break
        if "Long on purpose" in line:
            return True
        k -= 1
    return False


def long_functions(path):
    lines = without_test_items(open(path, encoding="utf-8").read().split("\n"))
    end = len(lines)
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
        if length > LIMIT and not reason_above(lines, i):
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
