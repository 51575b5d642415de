"""adgen: self-hosted generative ad creatives.

A campaign spec (brand, products, audiences, placements) expands into jobs; each job generates
audience-targeted copy and images with brand-tuned models, lays out finished creatives at each
placement's exact size, checks every text against the platform's rules, and records everything for
review and export.
"""

__version__ = "0.1.0"
