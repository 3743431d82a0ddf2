"""User names that cannot pass for one another.

An admin reading an account list, or a clerk reading a log line, cannot tell ``wang`` from
``Wang``, ``ｗａｎｇ`` (full-width) or ``wаng`` (a Cyrillic а). So the store keeps every name's
``fold`` — NFKC, case folding, NFKC again (Unicode's NFKC_Casefold recipe: folding can undo
normalisation), then the Cyrillic and Greek letters that are drawn like Latin ones mapped to those —
and refuses a new account whose fold is taken. Names that mix Latin, Cyrillic and Greek letters are
refused outright: nobody's real name needs that, and it is how look-alikes are usually built.
Chinese names, and Latin with Han (``wang王``), are fine.

Logging in by another spelling of the same fold (``Wang`` for ``wang``) is accepted: phones
capitalise the first letter, and since the fold is unique it names exactly one account. The
failed-login throttle counts by fold too, so the spellings share one count.
"""

from __future__ import annotations

import unicodedata

# Lower-case letters (after case folding) that Unicode's confusables.txt draws like Latin ones;
# several are here for their capitals (В, Н, М, Т look like B, H, M, T once folding is forgotten).
_LOOK_ALIKES = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "н": "h", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "ӏ": "l", "м": "m", "о": "o", "р": "p", "ԛ": "q", "с": "c", "ѕ": "s", "т": "t", "у": "y", "х": "x",
    "ԁ": "d", "ԝ": "w", "ү": "y", "ɡ": "g",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ζ": "z",
})
_CONFUSABLE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK"})


def fold(name: str) -> str:
    """The form two names share when a reader could take one for the other."""
    nfkc = unicodedata.normalize("NFKC", name)
    return unicodedata.normalize("NFKC", nfkc.casefold()).translate(_LOOK_ALIKES)


def _script(ch: str) -> str:
    return unicodedata.name(ch, "?").split(" ", 1)[0]


def mixed_scripts(name: str) -> list[str]:
    """The look-alike scripts a name mixes (empty when it does not): ``wаng`` → CYRILLIC, LATIN."""
    found = {_script(ch) for ch in unicodedata.normalize("NFKC", name) if ch.isalpha()}
    mixed = found & _CONFUSABLE_SCRIPTS
    return sorted(mixed) if len(mixed) > 1 else []
