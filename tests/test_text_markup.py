"""HTML in, HTML out (``server/text/markup.py``): markup byte for byte, text by units with inline tags."""

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from server.text.markup import MAX_ALIGNED_SPANS, Unit, parse


def rejoined(layout):
    return "".join(p if isinstance(p, str) else p.raw for p in layout.parts)


def upper(layout):
    """Translate every unit to upper case (a stand-in translator whose output is easy to check)."""
    return layout.assemble(
        [u.model_text().upper() for u in layout.units], [[t.upper() for t in u.span_texts()] for u in layout.units]
    )


DOCUMENT = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Account settings</title>
<style>p { color: red; } /* <b>not text</b> */</style>
<script>var s = "<p>Hello</p>"; if (a < b) {}</script></head>
<body class="main" data-x='1'>
  <!-- a comment with <b>tags</b> -->
  <h1 id=top>Change <b>password</b></h1>
  <p>Tom &amp; Jerry&nbsp;&#169; <a href="/help?a=1&amp;b=2" title="Help">read the help</a> first.</p>
  <p translate="no">Brand Name</p><p class="x notranslate">Keep me</p>
  <pre>  two  spaces  </pre><code>x = 1</code><textarea>draft</textarea>
  <ul><li>One</li><li>Two <i>three</i></li></ul>
</body></html>"""


def test_markup_comes_back_byte_for_byte_and_only_text_changes():
    layout = parse(DOCUMENT)
    assert rejoined(layout) == DOCUMENT
    texts = [u.model_text() for u in layout.units]
    assert texts == ["Account settings", "Change password", "Tom & Jerry\xa0© read the help first.", "One", "Two three"]
    out = upper(layout)
    for kept in (
        '<meta charset="utf-8">',
        "<style>p { color: red; } /* <b>not text</b> */</style>",
        '<script>var s = "<p>Hello</p>"; if (a < b) {}</script>',
        "<!-- a comment with <b>tags</b> -->",
        "<body class=\"main\" data-x='1'>",
        "<h1 id=top>",
        '<a href="/help?a=1&amp;b=2" title="Help">',
        '<p translate="no">Brand Name</p>',
        '<p class="x notranslate">Keep me</p>',
        "<pre>  two  spaces  </pre>",
        "<code>x = 1</code>",
        "<textarea>draft</textarea>",
    ):
        assert kept in out, kept
    assert "<h1 id=top>CHANGE <b>PASSWORD</b></h1>" in out
    assert 'TOM &amp; JERRY\xa0© <a href="/help?a=1&amp;b=2" title="Help">READ THE HELP</a> FIRST.' in out
    assert "<li>TWO <i>THREE</i></li>" in out


def test_inline_tags_make_one_sentence_and_are_placed_in_its_translation():
    layout = parse("<p>Change <b>password</b> now.</p>")
    (unit,) = layout.units
    assert unit.model_text() == "Change password now." and unit.span_texts() == ["password"]
    assert (
        layout.assemble(["Changer le mot de passe maintenant."], [["mot de passe"]])
        == "<p>Changer le <b>mot de passe</b> maintenant.</p>"
    )
    # Not found in the translation: the same relative place, at word boundaries.
    assert (
        layout.assemble(["Changer le MDP maintenant."], [["mot de passe"]])
        == "<p>Changer <b>le MDP</b> maintenant.</p>"
    )
    # Translations are text: escaped on the way in.
    assert parse("<p>x</p>").assemble(["a < b & c"], [[]]) == "<p>a &lt; b &amp; c</p>"


def test_malformed_html_is_read_leniently_and_kept():
    for source in [
        "<p>unclosed <b>bold <i>deep</p> stray < sign & more",
        "</div>text</b> after",
        "<p",
        "a <",
        "<<<>>>",
        "<p>x</b> y</p>",
        "<!-- unterminated",
        "<![CDATA[x]]> y",
        "<p title='a>b'>t</p>",
    ]:
        layout = parse(source)
        assert rejoined(layout) == source
        upper(layout)  # renders without error


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<p>",
                "</p>",
                "<b>",
                "</b>",
                "<a href='x'>",
                "</a>",
                "<br>",
                "<script>",
                "</script>",
                "<pre>",
                "</pre>",
                "text",
                " more words ",
                "&amp;",
                "&lt;",
                "<",
                ">",
                "<!-- c -->",
                "\n",
                "<img src=x>",
                "<span translate=no>",
                "</span>",
                "é",
                "&#233;",
            ]
        ),
        max_size=30,
    )
)
def test_any_tag_soup_rejoins_exactly_and_renders(pieces):
    source = "".join(pieces)
    layout = parse(source)
    assert rejoined(layout) == source
    upper(layout)


def test_ten_thousand_tiny_inline_elements_are_one_unit_placed_by_position():
    source = "<p>" + "".join(f"<span>w{i}</span> " for i in range(10_000)) + "</p>"
    started = time.perf_counter()
    layout = parse(source)
    (unit,) = layout.units
    assert len(unit.spans) == 10_000 and unit.span_texts() == []  # beyond MAX_ALIGNED_SPANS: no extra rows
    out = layout.assemble([unit.model_text()], [[]])
    assert out.count("<span>") == 10_000 and out.count("</span>") == 10_000
    assert time.perf_counter() - started < 20
    assert MAX_ALIGNED_SPANS < 10_000


def test_a_document_without_text_has_no_units():
    for source in ["", "<p>   </p>", "<br><hr><img src=x>", "<script>x</script>", "<p>&nbsp;</p>"]:
        layout = parse(source)
        assert [p for p in layout.parts if isinstance(p, Unit)] == [] and upper(layout) == source


def identity(source):
    """Every unit 'translated' to its own text: a correct placement gives the source back."""
    layout = parse(source)
    return layout.assemble([u.model_text() for u in layout.units], [u.span_texts() for u in layout.units])


def test_an_unchanged_translation_puts_every_tag_back_where_it_was():
    for source in [
        "<p>Another <b>other</b> thing</p>",
        "<p>word <b>word</b> word</p>",
        "<p><b>Save <i>file</i></b> and file</p>",
        "<p>Run <code>ls -l</code> to list files</p>",
        '<p>Welcome to <span translate="no">Acme</span> Cloud</p>',
        "<p><b>red car</b> <i>car park</i></p>",
        '<h1>Change <a href="/p"><b>your</b> password</a> today</h1>',
        "<p>x <b><i>y</i></b> z</p>",
    ]:
        assert identity(source) == source, source


def test_kept_inline_elements_stay_in_the_sentence_and_come_back_as_they_were():
    layout = parse('<p>Run <code>ls -l</code> to list <span class="notranslate">Acme</span> files</p>')
    (unit,) = layout.units
    assert unit.model_text() == "Run ls -l to list Acme files" and unit.span_texts() == []
    out = layout.assemble(["Lancez ls -l pour lister les fichiers Acme"], [[]])
    assert out == '<p>Lancez <code>ls -l</code> pour lister les fichiers <span class="notranslate">Acme</span></p>'
    assert parse("<p><code>x = 1</code></p>").units == []  # only kept text: nothing to translate


def test_placements_nest_even_when_the_translations_overlap():
    out = parse("<p><b>red car</b> <i>car park</i></p>").assemble(
        ["voiture rouge parking"], [["voiture rouge", "rouge parking"]]
    )
    assert out == "<p><b>voiture rouge</b> <i>parking</i></p>"


def test_an_element_left_open_closes_with_its_block():
    layout = parse('<p><span translate="no">Brand</p><p>Translate me</p>')
    assert [u.model_text() for u in layout.units] == ["Translate me"]
    assert parse("<p>a</p><![x]<p>b</p>") and rejoined(parse("<p>x<![ x</p>")) == "<p>x<![ x</p>"


WORD = st.sampled_from(["alpha", "beta", "gamma", "delta", "river", "stone"])


def _inline(depth):
    leaf = st.builds(lambda ws: " ".join(ws), st.lists(WORD, min_size=1, max_size=3))
    if depth == 0:
        return leaf
    return st.one_of(
        leaf,
        st.builds(
            lambda tag, inner: f"<{tag}>{inner}</{tag}>",
            st.sampled_from(["b", "i", "em", "a", "span", "code"]),
            _inline(depth - 1),
        ),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_inline(2), min_size=1, max_size=4), min_size=1, max_size=3))
def test_any_well_formed_inline_markup_round_trips(blocks):
    source = "".join("<p>" + " ".join(parts) + "</p>" for parts in blocks)
    assert identity(source) == source
