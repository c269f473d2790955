"""Checks that generated Swift parses, with tree-sitter-swift: what can be checked of Swift on a
machine without a Swift toolchain. Compiler-control lines (#if, #endif) are dropped first, as
the grammar does not take them around attributes; the generated code has no #else branches.

Usage: python swift_syntax.py FILE.swift
"""

import re
import sys

import tree_sitter
import tree_sitter_swift

parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_swift.language()))


def errors(source):
    if re.search(r"(?m)^[ \t]*#(else|elseif)\b", source):
        return [(0, "an #else branch: the check would read both branches")]
    text = re.sub(r"(?m)^[ \t]*#(if|endif)\b.*$", "", source)
    found = []

    def walk(node):
        if node.type == "ERROR" or node.is_missing:
            found.append((node.start_point.row + 1, node.type))
            return
        for child in node.children:
            walk(child)

    walk(parser.parse(text.encode()).root_node)
    return found


# The check must be able to fail: a broken declaration is found.
assert errors("public func f( -> Int {"), "tree-sitter-swift accepted broken Swift"
path = sys.argv[1]
with open(path) as f:
    source = f.read()
problems = errors(source)
declarations = len(re.findall(r"(?m)^\s*(?:public |open |fileprivate |private )?(?:func|class|struct|enum|protocol) ", source))
if problems:
    for line, kind in problems[:20]:
        print(f"{path}:{line}: {kind}")
    sys.exit(1)
print(f"{path}: parses ({declarations} declarations)")
