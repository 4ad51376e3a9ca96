"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

from hypothesis import strategies as st

TYPES = st.sampled_from(["A", "B_TYPE", "fromloc.city_name", "Actor"])


@st.composite
def well_formed_bio(draw, types: st.SearchStrategy[str] = TYPES, max_size: int = 140) -> list[str]:
    """BIO tags where every ``I-X`` continues an ``X`` span (up to ``max_size`` words)."""
    n = draw(st.integers(0, max_size))
    tags: list[str] = []
    for _ in range(n):
        choice = draw(st.sampled_from(["O", "B", "I"]))
        if choice == "I" and tags and tags[-1] != "O":
            tags.append("I-" + tags[-1][2:])
        elif choice == "O":
            tags.append("O")
        else:
            tags.append("B-" + draw(types))
    return tags
