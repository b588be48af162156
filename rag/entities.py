"""Finding the tenant's named entities (record titles) in a piece of text.

A follow-up question such as "电话是多少？" names no venue; the dialogue manager answers it
about the entity in focus, which it learns from the titles that earlier turns mention.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# A one-character title is too ambiguous to spot inside running text.
MIN_TITLE_CHARS = 2


class EntityIndex:
    """Record titles per tenant, loaded on first use and reloaded after a change.

    Args:
        load_titles: returns every record title of a tenant (from the store).
    """

    def __init__(self, load_titles: Callable[[str], list[str]]) -> None:
        self._load_titles = load_titles
        self._titles: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def invalidate(self, tenant: str) -> None:
        """Forget a tenant's titles; the next lookup reloads them."""
        with self._lock:
            self._titles.pop(tenant, None)

    def mentions(self, tenant: str, text: str) -> list[str]:
        """Return the titles found in `text`, in order of appearance.

        Longer titles win over titles they contain: in "故宫博物院" only 故宫博物院 is
        found, not 故宫.
        """
        found: list[tuple[int, int, str]] = []
        for title in self._sorted_titles(tenant):
            start = text.find(title)
            while start != -1:
                end = start + len(title)
                if not any(s < end and start < e for s, e, _ in found):
                    found.append((start, end, title))
                start = text.find(title, end)
        return _unique(title for _, _, title in sorted(found))

    def _sorted_titles(self, tenant: str) -> list[str]:
        with self._lock:
            titles = self._titles.get(tenant)
        if titles is None:
            loaded = {t for t in self._load_titles(tenant) if len(t) >= MIN_TITLE_CHARS}
            titles = sorted(loaded, key=len, reverse=True)
            with self._lock:
                self._titles[tenant] = titles
        return titles


def _unique(items) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
