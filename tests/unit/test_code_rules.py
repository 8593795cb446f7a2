"""Rules of the house that a reader could break without noticing, checked over the code itself.

- A regular expression that checks a whole value is anchored with ``\\A…\\Z``: ``^…$`` lets a trailing newline
  through (``re.match(r"^[a-z]+$", "plab\\n")`` matches), and ``$`` anywhere but the end is a mistake too.
- Shell text is made in one place: only provisioner/shell.py calls ``shlex.quote``.
- The SSH library is one module's business: only provisioner/transport/ssh.py imports paramiko; everything else
  talks to the Transport protocol.
"""

import ast
import json
import re

from ..conftest import ROOT

SOURCES = sorted(p for p in (ROOT / "provisioner").rglob("*.py"))
REGEX_CALLS = {"compile", "match", "fullmatch", "search", "sub", "subn", "split", "findall", "finditer"}


def regex_literals():
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in REGEX_CALLS
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                flags = ast.unparse(node.args[-1]) if len(node.args) > 1 else ""
                flags += "".join(ast.unparse(k.value) for k in node.keywords if k.arg == "flags")
                yield f"{path.relative_to(ROOT)}:{node.lineno}", node.args[0].value, flags


def test_whole_value_patterns_are_anchored_with_A_and_Z():
    found = list(regex_literals())
    assert len(found) > 10  # the walk sees the code's patterns
    bad = [(where, pattern) for where, pattern, flags in found
           if "MULTILINE" not in flags and ".M" not in flags and "(?m)" not in pattern
           and (pattern.startswith("^") or re.search(r"(?<!\\)\$\)?$", pattern))]
    assert not bad, f"anchor with \\A…\\Z: {bad}"


def test_schema_patterns_are_anchored_with_A_and_Z():
    schema = json.loads((ROOT / "provisioner/inventory/schema.json").read_text())
    patterns = re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', json.dumps(schema))
    assert patterns and all(p.startswith("\\\\A") and p.endswith("\\\\Z") for p in patterns), patterns


def test_only_the_shell_module_quotes():
    users = [str(p.relative_to(ROOT)) for p in SOURCES if "shlex.quote" in p.read_text()]
    assert users == ["provisioner/shell.py"], users


def test_the_anchor_rule_catches_what_it_should():
    assert re.match(r"^[a-z]+$", "plab\n") and not re.match(r"\A[a-z]+\Z", "plab\n")


def test_only_the_ssh_transport_imports_paramiko():
    users = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in ("paramiko", "fabric") for n in names):
                users.append(str(path.relative_to(ROOT)))
    assert users == ["provisioner/transport/ssh.py"], users
