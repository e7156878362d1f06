"""How the course draws and prints things: colours and number formats. Imports nothing heavy.

The plots, the widgets and the instructor's report all take their colours from here, so the
report does not load torch to learn six hex codes.

>>> PALETTE[:2]
('#0072B2', '#D55E00')
>>> format_bytes(2732), format_bytes(4_004_000), format_bytes(28_000_000_000)
('2.7 kB', '4.0 MB', '28.0 GB')
"""

from __future__ import annotations

__all__ = ["PALETTE", "format_bytes"]

# Okabe & Ito (2008): blue, vermillion, bluish green, reddish purple, orange, sky blue,
# yellow, black. Colour-blind readers can tell them apart. Yellow is pale on white, so it
# comes late.
PALETTE: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
)


def format_bytes(n: float) -> str:
    """Bytes in decimal units, as disk and GPU makers quote them.

    >>> format_bytes(999), format_bytes(1500)
    ('999 B', '1.5 kB')
    """
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
