"""MkDocs hook: the derivations (derivations/*.md, linked into docs/ by a symlink) link to
the guide as ../docs/PAGE.md, which is right on GitHub; on the site they sit inside docs/,
so those links become ../PAGE.md."""


def on_page_markdown(markdown, page, config, files):  # noqa: D103 - MkDocs hook signature
    if page.file.src_uri.startswith("derivations/"):
        return markdown.replace("](../docs/", "](../")
    return markdown
