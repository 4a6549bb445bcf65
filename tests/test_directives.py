"""Slide splitting, directive comments and notes at the line level."""

from __future__ import annotations

from pathlib import Path

from slidesvc.directives import Chunk, extract, split_slides

DECK = Path("talk.md")


def split(text: str, levels: tuple[int, ...] = ()) -> list[Chunk]:
    chunks, _ = split_slides(text.split("\n"), 0, levels, DECK)
    return chunks


def test_split_keeps_lines_and_starts() -> None:
    """Chunks hold the lines between separators and know their first line."""
    chunks = split("a\n---\nb\nc\n---\n\n\nd")
    assert [c.lines for c in chunks] == [["a"], ["b", "c"], ["", "", "d"]]
    assert [c.start for c in chunks] == [1, 3, 6]
    assert [c.line for c in chunks] == [1, 3, 8]


def test_separator_rules() -> None:
    """Only an exact --- line (trailing spaces ok) separates; not ----, not indented."""
    assert len(split("a\n---  \nb")) == 2
    assert len(split("a\n----\nb\n ---\nc\n--- x\nd")) == 1


def test_no_split_inside_fences_or_comments() -> None:
    """Fences (``` ~~~, longer fences need longer closers) and comments hide ---."""
    text = "a\n````\n```\n---\n````\n<!--\n---\n-->\n~~~\n---\n~~~\nb"
    assert len(split(text)) == 1


def test_unclosed_fence_warning() -> None:
    """The warning names the fence's line and how to close it."""
    _, warnings = split_slides(["a", "", "~~~", "code", "---"], 0, (), DECK)
    (warning,) = warnings
    assert warning.line == 3 and "~~~" in warning.message


def test_heading_divider_levels() -> None:
    """Headings at the chosen levels start slides, except at a slide's top."""
    chunks = split("# A\n## B\nx\n### C\n# D", levels=(1, 2))
    assert [c.lines[0] for c in chunks] == ["# A", "## B", "# D"]
    assert [c.start for c in chunks] == [1, 2, 5]


def test_heading_divider_ignores_code_notes_and_leading_directives() -> None:
    """No split for # in code or notes, nor after a directive-only start."""
    chunks = split("<!-- _class: x -->\n# A\n```\n# not\n```\n???\n# note heading", levels=(1,))
    assert len(chunks) == 1


def test_extract_directives_local_spot_global() -> None:
    """Plain keys carry on, _keys are spot, deck keys are global."""
    source = extract(
        Chunk(10, ["<!-- class: a b", "_color: red -->", "<!-- theme: gaia -->", "# T"])
    )
    assert {k: (d.value, d.line) for k, d in source.local.items()} == {"class": ("a b", 10)}
    assert {k: (d.value, d.line) for k, d in source.spot.items()} == {"color": ("red", 10)}
    assert {k: d.value for k, d in source.globals.items()} == {"theme": "gaia"}
    assert source.content == "\n\n\n# T"
    assert source.notes == []


def test_marp_aliases() -> None:
    """backgroundColor and backgroundImage are the background directive."""
    source = extract(Chunk(1, ["<!-- _backgroundColor: #fff -->", "<!-- backgroundImage: x -->"]))
    assert source.spot["background"].value == "#fff"
    assert source.local["background"].value == "x"


def test_comment_that_is_not_a_directive_is_a_note() -> None:
    """Unknown keys, prose and spot globals make a comment a note."""
    source = extract(
        Chunk(1, ["<!-- TODO: fix -->", "<!-- remember to smile -->", "<!-- _theme: x -->", "x"])
    )
    assert source.notes == ["TODO: fix", "remember to smile", "_theme: x"]
    assert not source.local and not source.spot and not source.globals


def test_notes_directive_and_yaml_block_value() -> None:
    """notes: text is a note; a YAML block value (style: |) is still a directive."""
    source = extract(
        Chunk(1, ["<!-- notes: say hi -->", "<!--", "style: |", "  h1 { color: red }", "-->"])
    )
    assert source.notes == ["say hi"]
    assert source.globals["style"].value == "h1 { color: red }"


def test_notes_markers() -> None:
    """??? and Note:/Notes: start notes that run to the end of the slide."""
    assert extract(Chunk(1, ["a", "???", "n1", "n2"])).notes == ["n1\nn2"]
    assert extract(Chunk(1, ["a", "Note: first", "more"])).notes == ["first\nmore"]
    source = extract(Chunk(1, ["a", "Notes:", "", "more"]))
    assert source.notes == ["more"] and source.content == "a"


def test_markers_and_comments_inside_code_are_content() -> None:
    """Inside fences and code spans nothing is a note or directive."""
    lines = ["```", "???", "<!-- class: x -->", "```", "`<!-- y -->` text"]
    source = extract(Chunk(1, lines))
    assert source.content == "\n".join(lines)
    assert source.notes == [] and not source.local


def test_comment_mid_line_and_unclosed() -> None:
    """A comment inside a line is cut out; an unclosed one hides the rest."""
    source = extract(Chunk(1, ["before <!-- n1 --> after", "x <!-- n2", "y"]))
    assert source.content == "before  after\nx \n"
    assert source.notes == ["n1", "n2\ny"]
