"""The README stays true: every inventory key is in the reference, and its console examples run as shown."""

import re
import subprocess
import sys

import pytest

from provisioner.inventory.load import schema

from ..conftest import ROOT

README = (ROOT / "README.md").read_text()


def keys(node: dict, prefix: str = "") -> list[str]:
    """Every key path of the schema: ``cluster.pod_cidr``, ``nodes[].pods``, ``dns.coredns.ttl``."""
    out = []
    if node.get("type") == "array" and "items" in node:
        return keys(node["items"], prefix + "[]")
    for name, sub in node.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        if "properties" in sub or sub.get("type") == "array" and "properties" in sub.get("items", {}):
            out += keys(sub, path)
        else:
            out.append(path)
    return out


def test_every_inventory_key_is_in_the_reference():
    reference = README.split("## Inventory reference", 1)[1].split("## CLI reference", 1)[0]
    documented = set(re.findall(r"^\| `([^`]+)` \|", reference, re.M))
    missing = sorted(set(keys(schema())) - documented)
    assert not missing, f"README inventory reference lacks: {missing}"
    unknown = sorted(documented - set(keys(schema())))
    assert not unknown, f"README documents keys the schema does not have: {unknown}"


def console_examples():
    for block in re.findall(r"```console\n(.*?)```", README, re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            yield command, output


@pytest.mark.parametrize("command,output", list(console_examples()), ids=lambda x: x[:40] if isinstance(x, str) else "")
def test_console_examples_are_real(command, output):
    assert command.startswith("provision ")
    argv = [sys.executable, "-m", "provisioner.cli", *command.split()[1:]]
    p = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    assert (p.stdout + p.stderr) == output


def test_every_cli_command_is_in_the_reference():
    from provisioner.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "==SUPPRESS==" or a.__class__.__name__ == "_SubParsersAction")
    cli_ref = README.split("## CLI reference", 1)[1].split("## Troubleshooting", 1)[0]
    for name in sub.choices:
        if name == "lab":
            for action in ("up", "down", "status", "vagrant-inventory"):
                assert f"`provision lab {action}" in cli_ref
        else:
            assert f"`provision {name}" in cli_ref, name


def test_every_module_is_in_the_walkthrough():
    from provisioner.modules import MODULES

    steps = README.split("## The manual procedure, step by step", 1)[1].split("## See your network", 1)[0]
    for name in MODULES:
        if name in ("file", "service"):
            continue
        assert f"`{name}`" in steps, name


def test_every_link_to_a_file_of_the_repository_is_there():
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links to {target}, which is not there"
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"(?m)^#+ (.*)$", README)}
    for anchor in re.findall(r"\]\(#([^)]+)\)", README):
        assert anchor in headings, f"README links to #{anchor}, a heading it does not have"


def test_every_cli_option_of_a_run_is_in_the_reference():
    from provisioner.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    cli_ref = README.split("## CLI reference", 1)[1].split("## Troubleshooting", 1)[0]
    for action in sub.choices["apply"]._actions:
        longest = max(action.option_strings, key=len, default=None)
        if longest and longest != "--help":
            assert f"`{longest}" in cli_ref or f" {longest}" in cli_ref, longest
