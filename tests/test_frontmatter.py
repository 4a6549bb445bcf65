"""Front matter: safe YAML, validation with lines, Marp aliases."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slidesvc.errors import DeckError
from slidesvc.frontmatter import (
    MAX_FRONT_MATTER_BYTES,
    BadValue,
    _simple_entries,
    _yaml_entries,
    convert,
    find_front_matter,
    parse_front_matter,
)

DECK = Path("talk.md")


def parse(text: str) -> tuple[dict[str, object], dict[str, int], list[str], list[str]]:
    result = parse_front_matter(text.split("\n"), DECK)
    return (
        result.settings,
        result.lines,
        [str(e) for e in result.errors],
        [str(w) for w in result.warnings],
    )


def test_no_front_matter() -> None:
    """A deck not starting with --- has none; the body starts at line 1."""
    result = parse_front_matter(["# Title", "---", "x"], DECK)
    assert result.settings == {} and result.body_start == 0


def test_separator_then_markdown_is_not_front_matter() -> None:
    """A deck starting with a separator and Markdown keeps that Markdown."""
    assert find_front_matter(["---", "# Slide one", "text", "---", "# Two"]) is None
    assert find_front_matter(["---", "# a comment", "title: x", "---"]) == 3


def test_values_and_lines() -> None:
    """Each key is converted and remembers its line (the YAML starts on line 2)."""
    settings, lines, errors, warnings = parse(
        "---\ntitle: 'Hello: World'\n\nsize: 16:9\npaginate: yes\n---\n# A"
    )
    assert settings == {"title": "Hello: World", "aspect": ("16:9", 1280, 720), "paginate": True}
    assert lines == {"title": 2, "aspect": 4, "paginate": 5}
    assert errors == warnings == []


def test_sexagesimal_trap_is_avoided() -> None:
    """YAML 1.1 reads 4:3 as the number 243; aspect keeps what was written."""
    settings, *_ = parse("---\naspect: 4:3\n---\n")
    assert settings["aspect"] == ("4:3", 960, 720)


def test_dates_stay_as_written() -> None:
    """A YAML date is kept as the author wrote it."""
    settings, *_ = parse("---\ndate: 2024-05-01\n---\n")
    assert settings["date"] == "2024-05-01"


def test_errors_name_key_value_allowed_and_line() -> None:
    """Every bad key is reported, with its own line, and the rest still loads."""
    _, _, errors, _ = parse(
        "---\ntitle: ok\npaginate: maybe\nmath: sometimes\n"
        "headingDivider: 9\nlang: 'not a tag'\n---"
    )
    assert errors == [
        "talk.md:3: paginate: 'maybe' is not allowed: use true or false",
        "talk.md:4: math: 'sometimes' is not allowed: use true, false, katex or mathjax",
        "talk.md:5: headingDivider: 9 is not allowed: use a heading level 1-6 "
        "or a list of levels ([1, 2])",
        "talk.md:6: lang: 'not a tag' is not a language tag: use e.g. en, de or pt-BR",
    ]


def test_unknown_key_warns() -> None:
    """Unknown keys are warnings with their line."""
    _, _, errors, warnings = parse("---\ntitle: x\n\nfooo: 1\n---")
    assert errors == []
    assert warnings == ["talk.md:4: warning: unknown front matter key 'fooo' (ignored)"]


@pytest.mark.parametrize(
    ("yaml_text", "line", "fragment"),
    [
        ("a: &x 1\nb: *x", 2, "anchors and aliases"),
        ("title: !!python/object/apply:os.system ['true']", 2, "tag !!python/object/apply"),
        ("title: !custom x", 2, "tag !custom"),
        ("title: [unclosed", 2, "not valid YAML"),
        ("title: x\nauthor: y: z", 3, "not valid YAML"),
    ],
)
def test_unsafe_or_broken_yaml_is_an_error(yaml_text: str, line: int, fragment: str) -> None:
    """Unsafe YAML features and syntax errors stop with the line."""
    with pytest.raises(DeckError) as info:
        parse_front_matter(["---", *yaml_text.split("\n"), "---"], DECK)
    assert fragment in info.value.message
    assert info.value.line == line


def test_front_matter_size_limit() -> None:
    """Front matter over 64 KiB is refused before YAML sees it."""
    big = ["---", "title: x", f"description: {'a' * MAX_FRONT_MATTER_BYTES}", "---"]
    with pytest.raises(DeckError, match="64 KiB"):
        parse_front_matter(big, DECK)


def test_unclosed_front_matter() -> None:
    """Front matter without its closing line is an error on line 1."""
    with pytest.raises(DeckError, match="not closed") as info:
        parse_front_matter(["---", "title: x", "# Slide"], DECK)
    assert info.value.line == 1


def test_nested_settings() -> None:
    """embed and pdf are mappings, validated key by key."""
    settings, _, errors, _ = parse(
        "---\nembed:\n  origins:\n    - https://wiki.example.org/\n"
        "    - http://localhost:8080\npdf: {notes: true, filename: slides.pdf}\n---"
    )
    assert errors == []
    assert settings["embed"] == ("https://wiki.example.org", "http://localhost:8080")
    assert settings["pdf"] == {"notes": True, "filename": "slides.pdf"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("embed", {"origins": ["https://x.org/path"]}),
        ("embed", {"origin": ["https://x.org"]}),
        ("pdf", {"filename": "../evil.pdf"}),
        ("pdf", {"notes": "yes please"}),
        ("aspect", "wide"),
        ("aspect", "20x20"),
        ("heading_divider", [1, 7]),
        ("heading_divider", True),
        ("title", ["a", "list"]),
    ],
)
def test_bad_values(name: str, value: object) -> None:
    """Values outside the contract raise BadValue."""
    with pytest.raises(BadValue):
        convert(name, value, None)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("math", "mathjax", True),
        ("math", False, False),
        ("heading_divider", [3, 1, 3], (1, 3)),
        ("heading_divider", 3, (1, 2, 3)),
        ("aspect", "1920x1080", ("1920x1080", 1920, 1080)),
        ("aspect", "16:10", ("16:10", 1280, 800)),
        ("scripts", True, True),
        ("pdf", {"filename": "deck"}, {"filename": "deck.pdf"}),
        ("title", 2024, "2024"),
    ],
)
def test_good_values(name: str, value: object, expected: object) -> None:
    """Accepted spellings convert to the model's types."""
    assert convert(name, value, None) == expected


SIMPLE_VALUES = st.one_of(
    st.sampled_from(
        [
            "true",
            "Yes",
            "off",
            "NULL",
            "~",
            "",
            "0",
            "7",
            "012",
            "1.5",
            "2024-05-01",
            "16:9",
            "'quoted'",
            '"dq"',
            "'it''s'",
            "a: b",
            "x #c",
            "C#",
            "-1",
            "[1, 2]",
            "=",
            "on the go",
        ]
    ),
    st.text(alphabet="abcXYZ019 :#'\"-_.", max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(st.tuples(st.sampled_from(["title", "paginate", "x-y"]), SIMPLE_VALUES)))
def test_plain_front_matter_reads_like_yaml(items: list[tuple[str, str]]) -> None:
    """The PyYAML-free reader, when it answers, agrees with PyYAML."""
    lines = [f"{key}: {value}".rstrip() for key, value in items]
    simple = _simple_entries(lines)
    if simple is None:
        return
    try:
        expected = _yaml_entries("\n".join(lines), DECK)
    except DeckError:
        pytest.fail(f"the simple reader accepted what YAML rejects: {lines}")
    assert [(k, v, line) for k, v, _, line in simple] == [
        (k, v, line) for k, v, _, line in expected
    ]


def test_control_characters_are_an_error_with_line() -> None:
    """YAML refuses control characters; the error names the line."""
    with pytest.raises(DeckError) as info:
        parse_front_matter(["---", "title: x", "author: a\x1bb", "---"], DECK)
    assert info.value.line == 3 and "U+001B" in info.value.message
