"""``server.text.placeholders`` against hand-built cases and against gettext's own checker: for messages of
every format flag and translations that drop, add, duplicate or reorder directives, ``Syntax.intact`` must
accept exactly what ``msgfmt -c`` accepts."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from server.text.placeholders import DEFAULT, restore_accelerator, split_accelerator, syntax_for_flags


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Hello {name}, you have %(count)d new messages.", ["{name}", "%(count)d"]),
        ("%s: cannot open %s", ["%s", "%s"]),
        ("%1$s of %2$s, %-10.2f%% done", ["%1$s", "%2$s", "%-10.2f", "%%"]),
        ("{0} of {total}, {0:>8} {} {{user.name}}", ["{0}", "{total}", "{0:>8}", "{}", "{{user.name}}"]),
        ("Set $HOME, ${XDG_CONFIG_HOME} or %APPDATA%.", ["$HOME", "${XDG_CONFIG_HOME}", "%APPDATA%"]),
        (
            "Click <b>Save</b> or press <kbd>Ctrl</kbd>+<br/>S &amp; go &#8212; now",
            ["<b>", "</b>", "<kbd>", "</kbd>", "<br/>", "&amp;", "&#8212;"],
        ),
        (
            "See https://example.org/docs?a=1&b=%20, or write to help@example.org.",
            ["https://example.org/docs?a=1&b=%20", "help@example.org"],
        ),
        (
            "Edit ~/.config/app/settings.ini, /etc/hosts or C:\\Program Files\\App.",
            ["~/.config/app/settings.ini", "/etc/hosts", "C:\\Program Files\\App"],
        ),
        (
            'Open %@ with %1$@ (Apple), %{name} and %<count>05d (Ruby), see $t(files) or $t(a, {"n": 2})',
            ["%@", "%1$@", "%{name}", "%<count>05d", "$t(files)", '$t(a, {"n": 2})'],
        ),
        # prose that only looks like a directive or a path, in text that declares no format
        ("50% off, 100%done, km/h and/or {not a field}", []),
    ],
)
def test_placeholders_found_in_text_that_declares_no_format(text, expected):
    assert DEFAULT.placeholders(text) == expected


def test_declared_printf_counts_every_form_that_prose_hides():
    c = syntax_for_flags(["c-format"])
    assert c.placeholders("%'d files, % d left, %lu bytes, %zd, %<PRId64>") == ["%'d", "% d", "%lu", "%zd", "%<PRId64>"]
    assert DEFAULT.placeholders("%'d files, % d left") == []
    assert syntax_for_flags(["fuzzy"]) == DEFAULT
    assert syntax_for_flags(["qt-format"]).placeholders("%1 of %L2") == ["%1", "%L2"]


def test_intact_by_hand():
    c = syntax_for_flags(["c-format"])
    assert c.intact("%s has %d", "%s a %d")
    assert not c.intact("%s has %d", "%d a %s")  # unnumbered: order is meaning
    assert c.intact("%1$s has %2$d", "%2$d a %1$s")  # numbered: any order
    assert not c.intact("%s", "%s %s") and not c.intact("%s %s", "%s")
    assert DEFAULT.intact("Hello {name}", "Bonjour {name}") and not DEFAULT.intact("Hello {name}", "Bonjour {nom}")


@pytest.mark.parametrize(
    "text,marker,letter,translation,expected",
    [
        ("~File", "~", "F", "Fichier", "~Fichier"),
        ("Save &As…", "&", "A", "Enregistrer sous…", "&Enregistrer sous…"),
        ("_Open", "_", "O", "Öffnen", "_Öffnen"),
        ("Open _Recent", "_", "R", "Ouvrir les documents récents", "Ouvrir les documents _récents"),
    ],
)
def test_accelerators_are_taken_out_and_put_back_on_the_same_letter(text, marker, letter, translation, expected):
    stripped, found_marker, found_letter = split_accelerator(text)
    assert (found_marker, found_letter) == (marker, letter) and marker not in stripped
    assert restore_accelerator(translation, found_marker, found_letter) == expected


@pytest.mark.parametrize("text", ["__init__", "AT&T", "R&D &amp; more", "&Quit &Now", "x_y", "~/docs"])
def test_what_is_not_an_accelerator(text):
    assert split_accelerator(text) == (text, None, None)


# (flag, msgid, [(translation, kept)]): ``kept`` by hand; "stricter" where msgfmt accepts what we do not ship
# (a dropped ``%%``, a changed flag such as ``%'d`` -> ``%d``: the output would read differently).
MESSAGES = [
    (
        "c-format",
        "%s: cannot open '%s': %s\n",
        [
            ("%s : impossible d'ouvrir « %s » : %s\n", True),
            ("%s : impossible d'ouvrir : %s\n", False),
            ("%s %s %s %s\n", False),
            ("%d : impossible %s %s\n", False),
        ],
    ),
    (
        "c-format",
        "%'d bytes (%s) copied, %g s, %s/s",
        [
            ("%'d octets (%s) copiés, %g s, %s/s", True),
            ("%d octets (%s) copiés, %g s, %s/s", "stricter"),
            ("(%s) %'d octets, %g s, %s/s", False),
        ],
    ),
    (
        "c-format",
        "%1$s: option '%2$s' requires an argument",
        [
            ("%1$s : l'option « %2$s » exige un argument", True),
            ("« %2$s » : %1$s exige un argument", True),
            ("%1$s : l'option exige", False),
        ],
    ),
    (
        "c-format",
        "%-10.2f%% of %lu blocks",
        [("%-10.2f%% de %lu blocs", True), ("%-10.2f de %lu blocs", "stricter"), ("%lu blocs, %-10.2f%%", False)],
    ),
    (
        "python-format",
        "%(name)s has %(count)d files",
        [
            ("%(name)s a %(count)d fichiers", True),
            ("%(count)d fichiers pour %(name)s", True),
            ("%(name)s a des fichiers", False),
        ],
    ),
    ("python-format", "%s of %d", [("%s sur %d", True), ("%d sur %s", False), ("%s sur", False)]),
    (
        "python-brace-format",
        "{0} of {total} files",
        [("{0} sur {total} fichiers", True), ("{total} : {0}", True), ("{0} fichiers", False)],
    ),
]


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext's msgfmt is not installed (.ci/run installs it)")
@pytest.mark.parametrize("flag,msgid,translations", MESSAGES)
def test_intact_agrees_with_msgfmt(tmp_path, flag, msgid, translations):
    """What ``intact`` keeps, msgfmt -c accepts; what it refuses, msgfmt -c refuses too, except the stricter
    cases."""
    syntax = syntax_for_flags([flag])
    for i, (translation, kept) in enumerate(translations):
        po = tmp_path / f"m{i}.po"
        po.write_text(
            'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
            f"#, {flag}\nmsgid {quote(msgid)}\nmsgstr {quote(translation)}\n",
            encoding="utf-8",
        )
        accepted = subprocess.run(["msgfmt", "-c", "-o", "/dev/null", str(po)], capture_output=True).returncode == 0
        assert syntax.intact(msgid, translation) == (kept is True), (msgid, translation)
        assert accepted == (kept is not False), (msgid, translation)


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def test_glossary_terms_match_whole_words_in_any_case_the_longer_first():
    from server.text.glossary import Glossary

    g = Glossary.of([("file", "fichier"), ("file name", "nom de fichier"), ("Settings", "Paramètres")], ["Writer"])
    assert [t.target for t in g.matches("The FILE NAME of a file in profile settings, in Writer.", "en")] == [
        "nom de fichier",
        "fichier",
        "Paramètres",
        "Writer",
    ]
    assert g.matches("profiles, filed, writers", "en") == []  # whole words only, no inflection
    assert [t.target for t in Glossary.of([("文件", "file")]).matches("打开文件。", "zh")] == ["file"]
    assert Glossary.missing(["fichier", "fichier"], "Le Fichier") == ["fichier"]  # one per occurrence
