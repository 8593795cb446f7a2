"""Ansible host patterns, for ``-l/--limit`` and for ``hosts:`` in plays, with ansible-core's meaning.

- terms separated by ``,`` (or by ``:`` when the whole pattern is not one host name);
- a term is a node or group name, a shell glob (``work*``, ``all``, ``*``), or ``~regex`` (matched from the
  start, as Python's ``re.match``); a group name gives its nodes, and a glob or a regex also matches node
  names when it matches no group (or has ``.``, ``?``, ``*``, ``[`` in it);
- ``name[i]``, ``name[i:j]`` (both ends included), ``name[i:]``: those of the term's hosts by position
  (``-1`` is the last);
- ``&term`` keeps only hosts also in that term; ``!term`` takes hosts away. Whatever their order, plain terms
  are joined first, then ``&`` terms, then ``!`` terms; a pattern of only ``&``/``!`` terms starts from all;
- ``@file`` (``--limit`` only): the names in that file, one per line (Ansible's retry files).

Unlike Ansible, which warns and goes on, a term that matches no node is an error naming it.

>>> match("all:!node1", ["node1", "node2"], {"workers": ["node2"]})
['node2']
>>> match("workers:&node[12]", ["node1", "node2"], {"workers": ["node2"]})
Traceback (most recent call last):
...
ValueError: 'node[12]' matches no node (a subscript [i:j] picks positions of a group's hosts); nodes: node1, node2
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

_SUBSCRIPT = re.compile(r"\A(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]+)?)\]\Z")
_ONE_HOST = re.compile(r"\A[A-Za-z0-9._-]+(\[[0-9a-z]+:[0-9a-z]+\])?[A-Za-z0-9._-]*\Z")
_TERM = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")


def split(pattern: str) -> list[str]:
    """Terms of a pattern: split on ``,``; else on ``:`` outside brackets, unless it is one host name."""
    pattern = pattern.strip()
    if "," in pattern:
        terms = pattern.split(",")
    elif _ONE_HOST.match(pattern):
        terms = [pattern]
    else:
        terms = _TERM.findall(pattern)
    return [t.strip() for t in terms if t.strip()]


def _ordered(terms: list[str]) -> list[str]:
    plain = [t for t in terms if t[0] not in "&!"]
    both = [t for t in terms if t[0] == "&"]
    minus = [t for t in terms if t[0] == "!"]
    return (plain or ["all"]) + both + minus


def _compile(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text[1:]) if text.startswith("~") else re.compile(fnmatch.translate(text))
    except re.error as exc:
        raise ValueError(f"{text!r} is not a valid regular expression ({exc})") from None


def _enumerate(term: str, hosts: list[str], groups: dict[str, list[str]]) -> list[str]:
    """Hosts of one term (no subscript): each matching group's hosts, then hosts whose names it matches. As in
    ansible-core, a host may appear more than once here (in two matching groups): a subscript counts them all."""
    regex = _compile(term)
    out: list[str] = []
    matched_groups = [g for g in groups if regex.match(g)]
    for g in matched_groups:
        out += groups[g]
    if not matched_groups or term.startswith("~") or any(c in term for c in ".?*["):
        out += [h for h in hosts if regex.match(h)]
    return out


def _one(term: str, hosts: list[str], groups: dict[str, list[str]]) -> list[str]:
    subscript = None
    m = None if term.startswith("~") else _SUBSCRIPT.match(term)
    if m:
        term, index, start, _sep, end = m.groups()
        subscript = (int(index), None) if index else (int(start), int(end) if end else -1)
    found = _enumerate(term, hosts, groups)
    if subscript is None:
        return found
    start, stop = subscript
    if stop is None:
        return [found[start]] if -len(found) <= start < len(found) else []
    if stop == -1:
        stop = len(found) - 1
    return found[start:stop + 1]


def match(pattern: str, hosts: list[str], groups: dict[str, list[str]], files: bool = False) -> list[str]:
    """The hosts ``pattern`` selects, in inventory order; ValueError naming a term that selects none.

    ``groups`` need not hold ``all`` (it is added). ``files``: ``@path`` terms read names from that file.
    """
    groups = {"all": list(hosts), "ungrouped": [], **groups}
    terms: list[str] = []
    for term in split(pattern):
        if term.startswith("@") and files:
            try:
                terms += [line.strip() for line in Path(term[1:]).read_text().splitlines() if line.strip()]
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"{term}: cannot read the file ({exc})") from None
        else:
            terms.append(term)
    if not terms:
        raise ValueError(f"{pattern!r} names no host")
    chosen: list[str] = []
    for term in _ordered(terms):
        name = term[1:] if term[0] in "&!" else term
        if not name:
            raise ValueError(f"{term!r}: a term needs a name after {term[0]}")
        found = _one(name, hosts, groups)
        if not found and name not in groups:
            hint = " (a subscript [i:j] picks positions of a group's hosts)" if _SUBSCRIPT.match(name) else ""
            raise ValueError(f"{name!r} matches no node{hint}; nodes: {', '.join(hosts)}")
        if term[0] == "&":
            chosen = [h for h in chosen if h in found]
        elif term[0] == "!":
            chosen = [h for h in chosen if h not in found]
        else:
            chosen += [h for h in found if h not in chosen]
    return [h for h in hosts if h in chosen]
