"""A project's description rendered as the public index renders it: readme_renderer for
reStructuredText, Markdown and plain text, by the core metadata's Description-Content-Type,
its output sanitized (nh3, an allowlist of tags and attributes).

One change to that allowlist: no images. The web UI loads nothing from elsewhere (its
Content-Security-Policy forbids it), so an image could only show as a broken one.
"""

import email.message
import html

MAX_DESCRIPTION_CHARACTERS = 512 * 1024  # beyond this, rendering costs seconds; shown as text
_NO_IMAGES = frozenset({"img", "picture"})


def render_description(text: str, content_type: str | None) -> str:
    """Sanitized HTML of a description; plain text rendering when its markup is broken."""
    # Imported here: docutils and the Markdown renderer take a while to import, and a bodega
    # only installers talk to never renders a description.
    import readme_renderer.clean
    import readme_renderer.markdown
    import readme_renderer.rst
    import readme_renderer.txt

    media_type, parameters = _parse_content_type(content_type)
    rendered: str | None = None
    if len(text) <= MAX_DESCRIPTION_CHARACTERS:
        # The core metadata spec: no content type means reStructuredText.
        if media_type in ("", "text/x-rst"):
            rendered = readme_renderer.rst.render(text)
        elif media_type == "text/markdown":
            variant = parameters.get("variant", "GFM")
            rendered = readme_renderer.markdown.render(text, variant=variant)
    if rendered is None:
        rendered = readme_renderer.txt.render(text) or html.escape(text)
    tags = set(readme_renderer.clean.ALLOWED_TAGS) - _NO_IMAGES
    return readme_renderer.clean.clean(rendered, tags=tags) or ""


def _parse_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    message = email.message.Message()
    message["Content-Type"] = value or ""
    media_type = message.get_content_type() if value else ""
    parameters = {k.lower(): v for k, v in message.get_params(failobj=[])[1:]}
    return media_type.lower(), parameters
