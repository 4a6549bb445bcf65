"""slidesvc: publish a talk written in Markdown.

A deck compiles to one self-contained HTML slideshow and a PDF, and runs as
its own tiny aiohttp service (embed view, oEmbed, live follow, PDF download).
"""

__version__ = "0.1.0"
