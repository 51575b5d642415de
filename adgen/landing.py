"""Landing URLs that report back: a product's page plus UTM parameters naming the exact creative.

Every exported creative gets a final URL made from its product's `url` and the spec's `tracking`
template, so that a platform's performance report (which carries the UTM parameters through to
analytics) joins back to the creative, audience and campaign that earned the click. Query strings
already on the product URL are kept in their order; the UTM parameters follow them.
"""

import re
from string import Formatter
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# What a template may name; values come from the creative being exported.
PLACEHOLDERS = ("platform", "campaign", "audience", "product", "placement", "creative")
UTM_DEFAULTS = {
    "utm_source": "{platform}",
    "utm_medium": "paid",
    "utm_campaign": "{campaign}",
    "utm_term": "{audience}",
    "utm_content": "{creative}",
}


class URLError(ValueError):
    """A landing URL that cannot be used; the message says what would be valid."""


def check_url(url: str) -> str:
    """The URL unchanged when it is an absolute http(s) URL with a host and no spaces."""
    if re.search(r"\s", url):
        raise URLError(f"{url!r} contains a space; encode it as %20")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise URLError(f"{url!r} is not an http(s) URL; use e.g. https://example.com/product")
    return url


def check_template(value: str) -> str:
    """A template value naming only known placeholders, e.g. '{platform}' or 'spring-{audience}'."""
    for _, name, spec, conversion in Formatter().parse(value):
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise URLError(f"{{{name}}} is not a placeholder; use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
    return value


def slug(text: str) -> str:
    """Lower-case words joined by hyphens: how names go into UTM values."""
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))


def final_url(product_url: str, template: dict[str, str], values: dict[str, str]) -> str:
    """The product URL with the template's parameters filled from `values` and appended. A parameter
    the product URL already sets is an error rather than a silent overwrite of either."""
    check_url(product_url)
    parts = urlsplit(product_url)
    existing = parse_qsl(parts.query, keep_blank_values=True)
    taken = {key for key, _ in existing}
    added = []
    for key, value in template.items():
        if key in taken:
            raise URLError(f"{product_url!r} already sets {key}; remove it there or from tracking")
        filled = value.format(**values)
        if filled:
            added.append((key, filled))
    query = "&".join(q for q in (parts.query, urlencode(added)) if q)
    return check_url(urlunsplit(parts._replace(query=query)))
