"""Where a card sends practice staff: the recording page, opened in a browser or by SMART
App Launch from the EHR, and the clinical rules that decided the card (CDS Hooks 2.0 Links).
No URL carries patient data.
"""

import json

from iris_prompt.urls import RULES_PATH, TEMPLATE_PATH

__all__ = ["LAUNCH_PATH", "PAGE_PATH", "RULES_LABEL", "card_links", "rules_link"]

# The page for practice staff, relative to the service's public base URL.
PAGE_PATH = TEMPLATE_PATH
# The SMART App Launch URL of the page (EHR launch: the EHR adds `iss` and `launch`).
LAUNCH_PATH = PAGE_PATH + "/launch"


def card_links(
    public_base_url: str, hook_instance: str, card_uuid: str, *, smart_launch: bool = False
) -> list[dict[str, str]]:
    """The card's links to the recording page (CDS Hooks 2.0, Link).

    With `smart_launch` (a SMART client is configured), a `smart` link to the launch URL, whose
    `appContext` carries only the hookInstance and the card's uuid; the EHR adds `iss` and
    `launch` and the page files the entries in the record. Always an `absolute` link to the page,
    for systems without SMART launch. Neither URL carries any patient data.
    https://cds-hooks.hl7.org/2.0/#link

        >>> links = card_links("https://iris.example", "d1577c69", "4e0a3a1e", smart_launch=True)
        >>> [(link["type"], link["url"]) for link in links]
        [('smart', 'https://iris.example/template/launch'), ('absolute', 'https://iris.example/template')]
        >>> [link["type"] for link in card_links("https://iris.example", "d1577c69", "4e0a3a1e")]
        ['absolute']
    """
    base = _base(public_base_url)
    url = base + PAGE_PATH
    links = [{"label": "Record the enquiry (open in a browser)", "url": url, "type": "absolute"}]
    if smart_launch:
        app_context = json.dumps(
            {"hookInstance": hook_instance, "card": card_uuid}, separators=(",", ":")
        )
        smart = {
            "label": "Record the enquiry and file it in the record (template)",
            "url": base + LAUNCH_PATH,
            "type": "smart",
            "appContext": app_context,
        }
        links.insert(0, smart)
    return links


RULES_LABEL = "Why this card: the clinical rules"


def rules_link(public_base_url: str, anchor: str) -> dict[str, str]:
    """The card's link to the rule that decided it, on the rules page (`docs/rules.md`).

    >>> rules_link("https://iris.example/", "rule-3")["url"]
    'https://iris.example/rules#rule-3'
    """
    url = f"{_base(public_base_url)}{RULES_PATH}#{anchor}"
    return {"label": RULES_LABEL, "url": url, "type": "absolute"}


def _base(public_base_url: str) -> str:
    base = public_base_url.rstrip("/")
    if not base.startswith(("https://", "http://")) or "?" in base or "#" in base:
        raise ValueError("public_base_url must be an http(s) URL without query or fragment")
    return base
