"""A FHIR search read as a client reads it: the first page, then each page's `next` link until
a page has none."""

from typing import Any

from tests.support.inprocess import SyncClient


def every_page(
    client: SyncClient, url: str, headers: dict[str, str], most: int = 10
) -> list[dict[str, Any]]:
    """Each page's Bundle, in order; at most `most` pages, so a `next` that never ends fails."""
    pages: list[dict[str, Any]] = []
    following: str | None = url
    while following is not None:
        assert len(pages) < most, f"still a next link after {most} pages"
        answer = client.get(following, headers=headers)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        links = pages[-1].get("link", [])
        following = next((link["url"] for link in links if link["relation"] == "next"), None)
    return pages
