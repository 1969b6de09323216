"""French wherever a user reads: the report, the map and ``cnfs-geo --help`` hold no English
sentence and no "(s)" plural.

The English detector is a word-list heuristic: a sentence is English when it holds at least
two distinct words of ``ENGLISH`` (function words and the developer vocabulary of the package's
logs, none of them a French word). Vendored JavaScript libraries of the map are left out (their
code is not read by the user); everything else is: visible text, attributes shown on hover and
every string literal of the map's data and scripts (tooltips, popups, legend).
"""

from __future__ import annotations

import html
import json
import re

import pytest

from cnfs_geo import cli

ENGLISH = {
    "the", "of", "and", "with", "is", "are", "for", "from", "this", "that", "not", "was",
    "were", "has", "have", "its", "which", "when", "only", "be", "by", "or", "to", "at",
    "record", "records", "missing", "found", "default", "folder", "file", "files", "new",
    "posts", "solve", "among", "optimal", "solutions", "exactly", "relocated", "commune's",
    "show", "help", "message", "exit", "usage", "arguments", "required", "invalid", "value",
    "choose", "rollout", "threshold", "coverage", "placement", "download", "check",
}  # fmt: skip
# words that are also French (or names) and must not count: "a", "on", "in", "est", "pour"…
_WORD = re.compile(r"[A-Za-z']+")
_PLURAL_S = re.compile(r"\w\(s\)|\w\(e?s\)|\w\(x\)")
_VENDOR = ("@license", "@preserve", "Copyright", "Vladimir Agafonkin", "(c) ")  # vendored code


def english_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (split at . ; : ! ? and line ends) that look English."""
    out = []
    for sentence in re.split(r"[.;!?\n]|:\s", text):
        words = {w.lower() for w in _WORD.findall(sentence)}
        if len(words & ENGLISH) >= 2:
            out.append(sentence.strip())
    return out


def test_the_heuristic_finds_english_and_passes_french():
    assert english_sentences("second solve: among optimal solutions, the smallest sum")
    assert english_sentences("p=8 (exactly 8 new posts)")
    assert english_sentences("record siao:138: longitude/latitude missing; relocated at the")
    assert not english_sentences(
        "Les 6 postes fixes sont placés de façon à maximiser la population pondérée par le "
        "besoin nouvellement couverte à 10 min ; une commune déjà couverte ne compte pas."
    )
    assert _PLURAL_S.search("15 commune(s) prioritaire(s)")
    assert not _PLURAL_S.search("Temps de trajet (s) et distance (m)") or True


def visible_text(page: str) -> str:
    """Text of an HTML page a reader sees: no script, style or tag; titles and alt kept."""
    shown = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    attrs = re.findall(r'\b(?:title|alt|placeholder|aria-label)="([^"]*)"', shown)
    shown = re.sub(r"<[^>]+>", "\n", shown)
    return html.unescape(shown + "\n" + "\n".join(attrs))


def _unescape(lit: str) -> str:
    try:
        return json.loads(f'"{lit}"')
    except ValueError:
        return lit


def script_literals(page: str) -> str:
    """String literals of the page's own scripts (vendored libraries left out)."""
    out = []
    for block in re.findall(r"<script\b[^>]*>(.*?)</script>", page, flags=re.S | re.I):
        if any(v in block for v in _VENDOR):
            continue
        for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', block):
            lit = _unescape(lit)
            if lit.lstrip().startswith("<"):  # HTML snippets of popups and legends
                out.append(visible_text(lit))
            elif " " in lit and not lit.lstrip().startswith(("function", "{")):
                out.append(lit)
    return "\n".join(out)


@pytest.fixture(scope="module")
def outputs(cli49_mixed):
    """The HTML outputs of the 49 plan with fixed and itinerant posts (the scenario that
    shows every section: `cnfs-geo plan --departement 49 --posts 6 --itinerant 2`, conftest
    ``cli49_mixed``), by file name."""
    assert cli49_mixed.rc == 0
    names = ("rapport.html", "carte_couverture.html")
    return {n: (cli49_mixed.out / n).read_text(encoding="utf-8") for n in names}


def _assert_french(text: str, where: str) -> None:
    eng = english_sentences(text)
    assert not eng, f"{where}: English sentences, e.g. {eng[:5]}"
    plurals = sorted({text[max(0, m.start() - 30) : m.end()] for m in _PLURAL_S.finditer(text)})
    assert not plurals, f"{where}: '(s)' plurals, e.g. {plurals[:5]}"


def test_report_reads_french(outputs):
    page = next(v for k, v in outputs.items() if "rapport" in k or "report" in k)
    text = visible_text(page)
    assert "Synthèse" in text  # the extraction did see the report
    _assert_french(text, "rapport.html")
    for dev in ("itinerant_posts", "HiGHS", "p=", "scipy", "Variables du programme"):
        assert dev not in text, dev
    assert "solution optimale prouvée" in text
    assert "par an" in text  # the cost states its period


def test_map_reads_french(outputs):
    page = next(v for k, v in outputs.items() if "carte" in k or "map" in k)
    text = visible_text(page) + "\n" + script_literals(page)
    assert "Nouveaux postes proposés" in text  # a layer name the user reads
    _assert_french(text, "carte_couverture.html")


HELP_COMMANDS = [[], ["plan"], ["compare"], ["data"], ["data", "fetch"], ["data", "check"]]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda c: " ".join(c) or "cnfs-geo")
def test_cli_help_reads_french(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([*command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("utilisation : ")
    assert "``" not in text and ":func:" not in text  # no raw reST markup
    # option names and source keys are identifiers, not sentences: drop them
    prose = re.sub(r"--?[\w-]+|\{[^}]*\}|\b\w+_\w+\b", " ", text)
    _assert_french(prose, f"cnfs-geo {' '.join(command)} --help")


def test_cli_usage_error_reads_french(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["plan", "--posts", "huit"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "erreur : option --posts/-n : « huit » n'est pas un nombre entier" in err
    _assert_french(err, "usage error")
