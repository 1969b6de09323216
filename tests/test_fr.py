"""French formatting (_fr.py): each function reproduces what its callers printed."""

from __future__ import annotations

import datetime
import doctest
import math

import numpy as np
import pytest

from cnfs_geo import _fr

NNBSP, NBSP = "\u202f", "\u00a0"


def test_doctests_pass():
    assert doctest.testmod(_fr).failed == 0


@pytest.mark.parametrize(
    "x, out",
    [
        (0, "0"),
        (999.4, "999"),
        (1234.5, f"1{NNBSP}234"),
        (-1234567, f"-1{NNBSP}234{NNBSP}567"),
        (np.int64(50_000), f"50{NNBSP}000"),
        (np.float64(12.6), "13"),
        (None, "—"),
        (float("nan"), "—"),
        (float("inf"), "—"),
    ],
)
def test_integer_map_and_report(x, out):
    assert _fr.integer(x) == out


def test_integer_one_format_for_every_output():
    # the CLI, the map and the report share it: narrow no-break space between thousands
    assert _fr.integer(676_019.4) == "676\u202f019"


@pytest.mark.parametrize(
    "x, digits, out",
    [
        (10.0, 1, "10"),
        (7.25, 1, "7,2"),
        (7.26, 1, "7,3"),
        (0.0, 1, "0"),
        (2.0, 2, "2,00"),
        (1.234, 2, "1,23"),
        (12.5, 0, "12"),
        (13.5, 0, "14"),
        (None, 1, "—"),
        (np.nan, 2, "—"),
        (math.inf, 1, "—"),
    ],
)
def test_number(x, digits, out):
    assert _fr.number(x, digits) == out


@pytest.mark.parametrize(
    "x, digits, out",
    [
        (0.3, 2, "0,3"),
        (0.68, 2, "0,68"),
        (50.0, 1, "50"),
        (1.0, 2, "1"),
        (2.345, 2, "2,35"),
        (None, 2, "–"),
        (math.inf, 2, "–"),
    ],
)
def test_number_trimmed_as_in_the_gaps_methods_text(x, digits, out):
    assert _fr.number(x, digits, trim=True, missing="–") == out


def test_percent():
    assert _fr.percent(12.345) == f"12,3{NBSP}%"
    assert _fr.percent(100) == f"100,0{NBSP}%"
    assert _fr.percent(None) == _fr.percent(np.nan) == "inconnu"
    assert _fr.percent(5.05) == f"5,0{NBSP}%"  # 5.05 is 5.0499… in binary
    assert _fr.percent(81.25) == f"81,2{NBSP}%"
    # not whole is never written whole, not nil never nil (236 people left out of 833 776)
    assert _fr.percent(100 * (833_776 - 236) / 833_776) == f"99,9{NBSP}%"
    assert _fr.percent(100 * 236 / 833_776) == f"0,1{NBSP}%"
    assert _fr.percent(0) == f"0,0{NBSP}%"


def test_minutes_fixed_and_short():
    assert _fr.minutes(7.25) == f"7,2{NBSP}min"
    assert _fr.minutes(10) == f"10,0{NBSP}min"
    assert _fr.minutes(math.inf) == _fr.minutes(None) == "aucun lieu d'accompagnement"
    assert _fr.minutes(10.0, fixed=False) == f"10{NBSP}min"
    assert _fr.minutes(12.4, 0, fixed=False) == f"12{NBSP}min"
    assert _fr.minutes(7.5, fixed=False) == f"7,5{NBSP}min"


def test_hours_euros_and_shares():
    assert _fr.hours(3.25) == f"3{NBSP}h{NBSP}15"
    assert _fr.hours(2.0) == f"2{NBSP}h"
    assert _fr.hours(0.05) == f"0{NBSP}h{NBSP}03"
    assert _fr.hours(np.nan) == "—"
    assert _fr.euros(400_000) == f"400{NNBSP}000{NBSP}€"
    assert _fr.population_share(250, 1000) == f"250 (25,0{NBSP}%)"
    assert _fr.population_share(0, 0) == "0 (inconnu)"


def test_value_of_solver_records():
    assert _fr.value(True) == "oui" and _fr.value(np.bool_(False)) == "non"
    assert _fr.value(1234) == f"1{NNBSP}234"
    assert _fr.value(123456.7) == f"123{NNBSP}457"
    assert _fr.value(0.5) == "0,5" and _fr.value(3.14159) == "3,142"
    assert _fr.value([]) == "—" and _fr.value(["a", 2]) == "a ; 2"
    assert _fr.value(float("nan")) == "—" and _fr.value("HiGHS") == "HiGHS"


def test_plural_never_writes_s_in_brackets():
    assert _fr.plural(0, "commune") == "0 commune"
    assert _fr.plural(1, "commune") == "1 commune"
    assert _fr.plural(2, "commune") == "2 communes"
    assert _fr.plural(2, "poste itinérant", "postes itinérants") == "2 postes itinérants"
    assert _fr.plural(1, "poste itinérant", "postes itinérants") == "1 poste itinérant"
    assert _fr.plural(367, "IRIS", "IRIS") == "367 IRIS"
    assert _fr.plural(12_345, "habitant", fmt=_fr.integer) == f"12{NNBSP}345 habitants"
    for n in range(4):
        assert "(s)" not in _fr.plural(n, "commune")


def test_join_and_date():
    assert _fr.join([]) == "" and _fr.join(["a"]) == "a"
    assert _fr.join(["a", "b"]) == "a et b"
    assert (
        _fr.join(["France Services", "CNFS", "data·inclusion"])
        == "France Services, CNFS et data·inclusion"
    )
    assert _fr.date(datetime.date(2026, 11, 30)) == "30 novembre 2026"
    assert _fr.date(datetime.date(2026, 8, 1)) == "1er août 2026"


def test_labels():
    assert list(_fr.KIND_LABELS) == ["france_services", "cnfs", "lieu_mediation", "aidants_connect"]
    assert _fr.kinds_label("aidants_connect;france_services") == "France Services, Aidants Connect"
    assert _fr.kinds_label("autre;cnfs") == "Conseiller numérique France Services, autre"
    assert _fr.host_kind_label("mairie") == "Mairie"
    assert _fr.host_kind_label("itinerant") == "Poste itinérant (médiateur volant)"
    assert _fr.host_kind_label(None) == "—"
    assert _fr.coverage_status(True, True, "10") == "couverte aujourd'hui (≤ 10 min)"
    assert _fr.coverage_status(False, True, "10") == "couverte grâce aux nouveaux postes"
    assert _fr.coverage_status(False, False, "7,5") == "non couverte (> 7,5 min)"


def test_gaps_methods_text():
    text = _fr.gaps_methods(
        threshold=10.0,
        target=None,
        reference=None,
        target_share=0.5,
        need_quantile=0.5,
        need_threshold=None,
        fibre=80.0,
        time_scale=20.0,
        weights={"time": 0.3, "access": 0.3, "need": 0.3, "fibre": 0.1},
        catchment=20.0,
        min_border=10.0,
        access_weights="stepped",
        access_steps=[(5.0, 1.0), (10.0, 0.68), (15.0, 0.22), (20.0, 0.03)],
    )
    assert "plus de 10 min" in text and "inférieure à 50 % de la moyenne" in text
    assert "1 jusqu'à 5 min, 0,68 jusqu'à 10 min, 0,22 jusqu'à 15 min, 0,03 jusqu'à 20 min" in text
    assert "temps 0,3, accessibilité 0,3, fragilité 0,3, fibre 0,1" in text
    assert "{" not in text
    two = _fr.gaps_methods(
        threshold=15.0,
        target=1.5,
        reference=None,
        target_share=None,
        need_quantile=0.75,
        need_threshold=6.25,
        fibre=50.0,
        time_scale=20.0,
        weights={"time": 1, "access": 0, "need": 0, "fibre": 0},
        catchment=30.0,
        min_border=10.0,
        access_weights="none",
        access_steps=(),
    )
    assert "inférieure à la cible de 1,5 conseillers" in two
    assert "dépassée par 25 % des communes du département, soit 6,25" in two
    assert "2SFCA, Luo et Wang 2003" in two and "rayon de 30 min" in two


def test_plural_formats_the_number_with_the_one_format():
    assert _fr.plural(1234, "commune") == "1\u202f234 communes"
    assert _fr.plural(1, "poste itinérant", "postes itinérants") == "1 poste itinérant"


def test_cost_per_post_states_its_period():
    text = _fr.cost_per_post(50_000)
    assert text == f"50\u202f000{NBSP}€ par poste pour 2 ans (25\u202f000{NBSP}€ par an)"


def test_import_warnings_in_french_and_unknown_ones_not_in_english():
    w = (
        "aidants_connect 5147 (CCAS X): blank City Insee Code; commune 49271 "
        "(Saint-Clément-de-la-Place) found from Zip Code 49370 or City 'X'"
    )
    assert _fr.import_warning(w) == (
        "aidants_connect, fiche 5147 (CCAS X) : code INSEE de la commune absent ; commune "
        "Saint-Clément-de-la-Place (49271) retrouvée par le code postal ou le nom de la ville."
    )
    other = _fr.import_warning("lieux_cd49_2022 12: something else happened to the record")
    assert other == f"lieux_cd49_2022 12 : {_fr.WARNING_OTHER}" and "happened" not in other


def test_solver_result_in_plain_french():
    assert _fr.solver_result("optimal", 0.0) == "solution optimale prouvée"
    assert _fr.solver_result("time_limit", 0.0123) == (
        f"meilleure solution trouvée dans le temps de calcul imparti, à au plus 1,2{NBSP}% "
        "de l'optimum"
    )


def test_argparse_errors_in_french():
    assert _fr.argparse_error("unrecognized arguments: --foo") == "arguments inconnus : --foo"
    assert (
        _fr.argparse_error("argument --model: invalid choice: 'x' (choose from mclp, equity)")
        == "option --model : choix 'x' inconnu (choix possibles : mclp, equity)"
    )
