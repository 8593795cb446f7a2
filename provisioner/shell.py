"""The one place values become shell text.

Every value from an inventory, a playbook or a node that goes into a command line
goes through :func:`quote` (one word), :func:`command` (a whole command, every word
quoted) or :func:`sh` (a template whose ``{}`` fields each become one quoted word),
as pyinfra's ``make_formatted_string_command`` does. The shell syntax around them is
the caller's literal text; a value never is.

>>> command("ip", "addr", "add", "10.244.1.1/24", "dev", "v-net-0")
'ip addr add 10.244.1.1/24 dev v-net-0'
>>> sh("test -f {} && cat {}", "/etc/a b", "$(id)")
"test -f '/etc/a b' && cat '$(id)'"
"""

from __future__ import annotations

import shlex
import string


def quote(value: object) -> str:
    """``value`` as one shell word."""
    return shlex.quote(str(value))


def command(*words: object) -> str:
    """A command line of ``words``, each quoted as one word."""
    return " ".join(quote(w) for w in words)


def sh(template: str, *args: object, **kwargs: object) -> str:
    """``template`` (literal shell text) with each ``{}``/``{name}`` field replaced by its argument quoted as
    one word. Format specs and conversions are refused: a field is a word, never a formatted piece of one."""
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is not None and (spec or conversion):
            raise ValueError(f"sh(): field {{{name}}} takes no format spec or conversion")
    return template.format(*(quote(a) for a in args), **{k: quote(v) for k, v in kwargs.items()})
