"""French formatting (numbers, percents, durations, euros, dates, plurals) and user-facing texts.

The one home of the French shown by the map, the report, the gap methods text and the CLI.
One number format everywhere: narrow no-break space between thousands, decimal comma,
no-break space before a unit (``%``, ``min``, ``€``).

>>> integer(12345.4)
'12\\u202f345'
>>> number(7.25), number(10.0), number(0.123, 2), number(float("nan"))
('7,2', '10', '0,12', '—')
>>> number(0.50, 2, trim=True), number(float("inf"), trim=True, missing="–")
('0,5', '–')
>>> percent(12.345), percent(None), percent(5)
('12,3\\xa0%', 'inconnu', '5,0\\xa0%')
>>> minutes(7.25), minutes(float("inf")), minutes(10.0, fixed=False)
('7,2\\xa0min', "aucun lieu d'accompagnement", '10\\xa0min')
>>> hours(3.25), hours(2.0), euros(50000)
('3\\xa0h\\xa015', '2\\xa0h', '50\\u202f000\\xa0€')
>>> plural(1, "commune"), plural(2, "commune"), plural(0, "IRIS", "IRIS")
('1 commune', '2 communes', '0 IRIS')
>>> plural(3, "poste itinérant", "postes itinérants")
'3 postes itinérants'
>>> join(["a", "b", "c"]), join(["a"])
('a, b et c', 'a')
>>> date(datetime.date(2026, 3, 1))
'1er mars 2026'
"""

from __future__ import annotations

import datetime
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

#: Narrow no-break space: thousands separator of the map and the report.
NNBSP = "\u202f"
#: No-break space: between a number and its unit (``%``, ``min``, ``h``, ``€``, ``km``).
NBSP = "\u00a0"
#: What the map and the report print for a missing value.
MISSING = "—"
#: Travel time to a place when there is none (infinite minutes).
NO_PLACE = "aucun lieu d'accompagnement"


# --------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------
def integer(x: Any, *, missing: str = MISSING) -> str:
    """Rounded integer with a thousands separator.

    Parameters
    ----------
    x : number
        None or a non-finite float gives ``missing``.
    missing : str
        Text for a missing value.

    Examples
    --------
    >>> integer(1234567), integer(None), integer(999.5)
    ('1\\u202f234\\u202f567', '—', '1\\u202f000')
    """
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return missing
    return f"{int(round(float(x))):,}".replace(",", NNBSP)


#: Upper bounds (s) of the run-time brackets a report states (see :func:`duration_bracket`).
DURATION_BRACKETS = (5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def duration_bracket(seconds: float) -> str:
    """A run time as a bracket, ``« moins de 5 s »``: the report states how long an
    analysis takes without printing a figure that changes from one run to the next (the
    same inputs give the same files; the terminal prints the exact time).

    >>> duration_bracket(1.7), duration_bracket(12), duration_bracket(90), duration_bracket(7200)
    ('moins de 5 s', 'moins de 30 s', 'moins de 2 min', "plus d'une heure")
    """
    for b in DURATION_BRACKETS:
        if seconds < b:
            return f"moins de {b} s" if b < 120 else f"moins de {b // 60} min"
    return "plus d'une heure"


def number(x: Any, digits: int = 1, *, trim: bool = False, missing: str = MISSING) -> str:
    """Decimal number with a decimal comma.

    Parameters
    ----------
    x : number
        None, NaN or ±inf gives ``missing``.
    digits : int
        Decimals kept.
    trim : bool
        False (map, report): ``digits`` decimals, except that a whole number loses its
        decimals when ``digits <= 1`` (``10.0`` → ``"10"``, ``7.25`` → ``"7,2"``).
        True (gaps methods text): trailing zeros and the comma are stripped
        (``0.50`` → ``"0,5"``); use ``digits >= 1``.
    missing : str
        Text for a missing value (``"—"``; the gaps methods text uses ``"–"``).

    Examples
    --------
    >>> number(2.0, 2), number(2.0, 2, trim=True), number(12.5, 0)
    ('2,00', '2', '12')
    """
    if trim:
        if x is None or not math.isfinite(float(x)):
            return missing
        s = f"{float(x):.{digits}f}".rstrip("0").rstrip(".")
        return s.replace(".", ",")
    if x is None or pd.isna(x):
        return missing
    x = float(x)
    if not math.isfinite(x):
        return missing
    if x == round(x) and digits <= 1:
        return f"{int(round(x))}"
    return f"{x:.{digits}f}".replace(".", ",")


def percent(x: Any, digits: int = 1, *, missing: str = "inconnu") -> str:
    """Percentage (``x`` already in %) with one decimal: ``12,3 %``.

    A share that is not whole never reads as whole, nor a share that is not nil as nil:
    99,97 % is written ``99,9 %`` (not ``100,0 %`` while people are left out) and 0,02 %
    ``0,1 %``.

    >>> percent(99.97), percent(100), percent(0.02), percent(0), percent(12.345)
    ('99,9\xa0%', '100,0\xa0%', '0,1\xa0%', '0,0\xa0%', '12,3\xa0%')

    Parameters
    ----------
    x : number
        Percent value; None or NaN gives ``missing`` (±inf prints as ``inf``).
    digits : int
        Decimals kept (always written).
    missing : str
        Text for a missing value.
    """
    if x is None or pd.isna(x):
        return missing
    v, step = float(x), 10.0**-digits
    if 100 - step / 2 <= v < 100:
        v = 100 - step
    elif 0 < v < step / 2:
        v = step
    return f"{v:.{digits}f}".replace(".", ",") + NBSP + "%"


def minutes(x: Any, digits: int = 1, *, fixed: bool = True, missing: str = NO_PLACE) -> str:
    """Travel time in minutes: ``7,2 min``.

    Parameters
    ----------
    x : number
        Minutes.
    digits : int
        Decimals.
    fixed : bool
        True (travel times of communes, places, clusters): always ``digits``
        decimals, and None/NaN/inf gives ``missing``. False (thresholds of the
        report): :func:`number` (``10`` → ``"10 min"``; a missing value gives
        ``"— min"``).
    missing : str
        Text for a missing or infinite time when ``fixed``.
    """
    if not fixed:
        return number(x, digits) + NBSP + "min"
    if x is None or pd.isna(x) or not math.isfinite(float(x)):
        return missing
    return f"{float(x):.{digits}f}".replace(".", ",") + NBSP + "min"


def hours(h: Any) -> str:
    """Duration in hours to the minute: ``3.25`` → ``3 h 15``, ``2.0`` → ``2 h``."""
    if h is None or pd.isna(h) or not math.isfinite(float(h)):
        return MISSING
    total = int(round(float(h) * 60))
    hh, mm = divmod(total, 60)
    return f"{hh}{NBSP}h" + (f"{NBSP}{mm:02d}" if mm else "")


def euros(x: Any) -> str:
    """Whole euros: ``50 000 €`` (narrow no-break space, no-break space before ``€``)."""
    return integer(x) + NBSP + "€"


def population_share(value: float, total: float) -> str:
    """``12 345 (45,6 %)``: a count and its share of ``total`` (NaN share when 0)."""
    pct = 100.0 * float(value) / total if total else float("nan")
    return f"{integer(value)} ({percent(pct)})"


def value(v: Any) -> str:
    """Any scalar of a record (solver report): yes/no, integers, 4 significant digits.

    >>> value(True), value(12345), value(0.012345), value([1, 2]), value(None)
    ('oui', '12\\u202f345', '0,01235', '1 ; 2', '—')
    """
    if v is None:
        return MISSING
    if isinstance(v, (bool, np.bool_)):
        return "oui" if v else "non"
    if isinstance(v, (int, np.integer)):
        return integer(v)
    if isinstance(v, (list, tuple)):
        return " ; ".join(value(x) for x in v) if v else MISSING
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            return MISSING
        if abs(float(v)) >= 1000:
            return integer(v)
        return f"{float(v):.4g}".replace(".", ",")
    return str(v)


# --------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------
def of(name: str, preposition: str = "de") -> str:
    """``de``/``à`` before a place name, contracted with its article or elided as French
    writes it.

    >>> of("Le May-sur-Èvre"), of("Les Ulmes"), of("La Pommeraye"), of("Angers")
    ('du May-sur-Èvre', 'des Ulmes', 'de La Pommeraye', "d'Angers")
    >>> of("Le Lion-d'Angers", "à"), of("Les Ulmes", "à"), of("Saumur", "à")
    ("au Lion-d'Angers", 'aux Ulmes', 'à Saumur')
    """
    contracted = {("de", "Le "): "du ", ("de", "Les "): "des ", ("à", "Le "): "au ",
                  ("à", "Les "): "aux "}  # fmt: skip
    for (prep, article), joined in contracted.items():
        if preposition == prep and name.startswith(article):
            return joined + name[len(article) :]
    if preposition == "de" and name[:1] in "AEIOUYÂÉÈÊÎÔ":
        return "d'" + name
    return f"{preposition} {name}"


def plural(n: Any, singular: str, plural_form: str | None = None, *, fmt: Any = None) -> str:
    """``n`` and the noun agreed in number: ``1 commune``, ``2 communes``.

    French rule: singular for 0 and 1 (``0 commune``), plural from 2.

    Parameters
    ----------
    n : number
        The count.
    singular : str
        Noun (or noun phrase) in the singular.
    plural_form : str, optional
        Irregular plural (``("poste itinérant", "postes itinérants")``, ``"IRIS"``);
        default ``singular + "s"``.
    fmt : callable, optional
        Formats ``n`` (default :func:`integer` for a whole number).
    """
    word = singular if abs(float(n)) < 2 else (plural_form or singular + "s")
    shown = fmt(n) if fmt is not None else integer(n) if float(n) == int(n) else number(n)
    return f"{shown} {word}"


def join(items: Iterable[Any]) -> str:
    """``["a", "b", "c"]`` → ``"a, b et c"``."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " et " + items[-1]


MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
#: Days of the week of the itinerant timetable, Monday first.
DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
HALF_DAYS = ("matin", "après-midi")

#: Why a unit is an itinerant stop (column ``reason`` of the stops and the timetable).
STOP_REASON_UNCOVERED = "sans lieu ni poste fixe à moins de {threshold} min{minutes}"
STOP_REASON_PRIORITY = "territoire prioritaire ({reasons}), déjà à moins de {threshold} min"
STOP_REASON_COVERED = (
    "déjà à moins de {threshold} min, fragilité dans le quart supérieur "
    "(réglage itinerant_serve_covered)"
)
#: Why a day of an itinerant week has no visit.
EMPTY_DAY_REASON = (
    "{days} sans permanence : au-delà de {visits} demi-journées, le trajet de la semaine "
    "laisserait moins de {min_hours} sur place par permanence"
)
#: Why an eligible unit has no circuit when no base within its reach can gather the
#: least number of stops of a circuit (setting ``itinerant_min_stops``).
DROP_REASON_TOO_FEW_STOPS = (
    "aucune base de son territoire à sa portée ne réunit assez d'arrêts au-delà du seuil "
    "pour un circuit (un seul arrêt ferait un poste fixe : réglage itinerant_min_stops)"
)
#: ... or when the bases within its reach that could gather them would need stops
#: already in other circuits (a post is left unused).
DROP_REASON_STOPS_TAKEN = (
    "les bases à sa portée n'ont pas assez d'autres arrêts libres pour un circuit : ils sont "
    "déjà dans d'autres circuits (réglage itinerant_min_stops)"
)
#: Labels of the robustness analysis (cnfs_geo.robustness).
ROBUST_POST = "poste robuste"
FRAGILE_POST = "poste fragile"
#: Definition of "served by a circuit", the same in the GeoPackage, summary, map and report.
SERVED_DEFINITION = (
    "desservi par un circuit : une permanence hebdomadaire d'un médiateur itinérant "
    "à moins de {threshold} min"
)


def crowfly_model(detour: float, speed_kmh: float) -> str:
    """Sentence naming the crow-fly travel model.

    >>> crowfly_model(1.3, 50)
    "distance à vol d'oiseau × 1,3 (détour) à 50 km/h"
    """
    return f"distance à vol d'oiseau × {_g(detour)} (détour) à {_g(speed_kmh)} km/h"


def road_model(detour: float, off_network_kmh: float) -> str:
    """Sentence naming the road travel model (OSM graph plus off-network legs)."""
    return (
        f"temps de trajet en voiture sur le réseau routier OpenStreetMap (vitesse "
        f"maxspeed, sinon par type de voie), plus l'accès au réseau à vol d'oiseau "
        f"× {_g(detour)} à {_g(off_network_kmh)} km/h"
    )


def _g(x: float) -> str:
    """Shortest decimal form (``:g``) with a decimal comma: 1.3 → "1,3", 50.0 → "50"."""
    return f"{x:g}".replace(".", ",")


def date(d: datetime.date) -> str:
    """``1er mars 2026``, ``30 novembre 2026``."""
    day = "1er" if d.day == 1 else str(d.day)
    return f"{day} {MONTHS[d.month - 1]} {d.year}"


# --------------------------------------------------------------------------------------
# Labels shared by the map and the report
# --------------------------------------------------------------------------------------
#: Place kinds in priority order (main kind first) and their French labels.
KIND_LABELS: OrderedDict[str, str] = OrderedDict(
    [
        ("france_services", "France Services"),
        ("cnfs", "Conseiller numérique France Services"),
        ("lieu_mediation", "Lieu de médiation numérique"),
        ("aidants_connect", "Aidants Connect"),
    ]
)
SERVICE_LABELS = {
    "accompaniment": "accompagnement (une personne aide)",
    "access": "accès seul (équipement, sans accompagnement)",
}
LOCATED_LABELS = {"address": "à l'adresse", "commune": "au centre de la commune"}
#: Demand units: (singular, plural) French nouns by ``Scenario.demand_unit`` key.
UNIT_NOUNS: dict[str, tuple[str, str]] = {
    "finest": ("unité de demande", "unités de demande"),
    "commune": ("commune", "communes"),
    "iris": ("IRIS", "IRIS"),
    "commune2018": ("commune de 2018", "communes de 2018"),
}
#: What the demand units are, in brackets after « unités de demande » (the finest units
#: mix several kinds: their plural noun would only repeat « unités de demande »).
UNIT_KINDS: dict[str, str] = {
    "finest": "IRIS, communes déléguées ou communes entières",
}
UNIT_TYPE_LABELS = {
    "commune": "commune (non découpée en IRIS)",
    "iris": "IRIS",
    "commune2018": "commune déléguée ou commune de 2018",
}
ITINERANT_POST = "Poste itinérant (médiateur volant)"


def kinds_label(kinds: str) -> str:
    """French label of a ``;``-joined kinds string (``"France Services, Aidants Connect"``)."""
    parts = [k.strip() for k in str(kinds).split(";") if k.strip()]
    ordered = [k for k in KIND_LABELS if k in parts] + sorted(
        k for k in parts if k not in KIND_LABELS
    )
    return ", ".join(KIND_LABELS.get(k, k) for k in ordered)


def host_kind_label(kind: Any) -> str:
    """French label of a post's ``host_kind`` (``mairie``, ``itinerant`` or place kinds)."""
    if not isinstance(kind, str) or not kind:
        return MISSING
    if kind == "mairie":
        return "Mairie"
    if kind == "itinerant":
        return ITINERANT_POST
    return kinds_label(kind)


# --------------------------------------------------------------------------------------
# Map: layer names and tooltip labels
# --------------------------------------------------------------------------------------
LAYER_BEFORE = "Temps d'accès actuel (avant les nouveaux postes)"
LAYER_AFTER = "Temps d'accès avec les nouveaux postes"
LAYER_NEED = "Indice de fragilité numérique"
LAYER_PRIORITY = "Score de priorité"
LAYER_GAPS = "Communes non couvertes aujourd'hui"
LAYER_UNITS_BEFORE = "Temps d'accès actuel, par"  # + demand unit noun
LAYER_UNITS_AFTER = "Temps d'accès avec les nouveaux postes, par"
LAYER_NO_PROJECT = "EPCI sans projet numérique"
LAYER_EPCI = "Contours des EPCI"
LAYER_CLUSTERS = "Territoires prioritaires (grappes)"
LAYER_CIRCUITS = "Circuits itinérants (médiateur volant)"
LAYER_POSTS = "Nouveaux postes proposés"
LAYER_BASEMAP = "Fond de carte OpenStreetMap"
# Base maps: none by default (the map works offline); the two others need internet.
LAYER_NO_BASEMAP = "Sans fond de carte"
LAYER_BASEMAP_IGN = "Fond de carte Plan IGN (Géoplateforme)"
ATTRIBUTION_OSM = "© les contributeurs d'OpenStreetMap"
ATTRIBUTION_IGN = "© IGN – Plan IGN, Géoplateforme"
BASEMAP_UNAVAILABLE = (
    "Le fond de carte n'a pas pu être chargé (pas d'accès à internet ou serveur "
    "indisponible). Les couches de la carte restent utilisables sans fond de carte."
)

# Tooltip row labels; each map feature carries ``t`` = [title, value 1, value 2 …] and
# the browser builds the table: labels are written once.
COMMUNE_TIP_LABELS = [
    "EPCI",
    "Population",
    "Temps d'accès avant",
    "Lieu d'accompagnement le plus proche",
    "Temps d'accès après",
    "Couverture",
    "Indice de fragilité numérique",
    "Population pondérée par le besoin",
    "Locaux éligibles à la fibre",
    "Lieux dans la commune",
    "Part de la population couverte (avant → après)",
    "Circuit itinérant",
]
PRIORITY_TIP_LABELS = [
    "EPCI",
    "Population",
    "Score de priorité (0 à 100)",
    "Rang",
    "Territoire prioritaire",
    "Motifs",
    "Accessibilité (E2SFCA)",
    "Rapport à la cible",
    "Temps d'accès actuel",
    "Indice de fragilité numérique",
    "Locaux éligibles à la fibre",
]
CLUSTER_TIP_LABELS = [
    "Communes",
    "EPCI",
    "Population",
    "Population pondérée par le besoin",
    "Indice de fragilité moyen",
    "Temps d'accès moyen (max.)",
    "Lieu d'accompagnement le plus proche",
    "Lieux dans la zone",
    "Superficie",
]
NO_PROJECT_TIP_LABELS = [
    "SIREN",
    "Communes dans le département",
    "Population",
    "Population pondérée par le besoin",
    "Lieux de médiation numérique",
    "Conseillers numériques (permanences)",
    "France Services",
    "Aidants Connect",
    "Temps d'accès moyen (max.)",
]
UNIT_TIP_LABELS = [
    "Commune",
    "Type d'unité",
    "Population",
    "Population pondérée par le besoin",
    "Temps d'accès avant",
    "Temps d'accès après",
    "Couverture",
]
CIRCUIT_TIP_LABELS = [
    "Base",
    "Arrêts dans l'ordre de la tournée",
    "Distance par semaine",
    "Temps de conduite par semaine",
    "Heures de permanence par semaine",
    "Population desservie",
    "Population pondérée desservie",
]
STOP_TIP_LABELS = [
    "Circuit",
    "Ordre dans la tournée",
    "Population",
    "Permanences",
    "Heures par semaine",
]
PLACE_TIP_LABELS = [
    "Commune",
    "Type",
    "Niveau de service",
    "Conseillers",
    "Itinérant",
    "Position",
    "Sources",
]
EPCI_TIP_LABELS = ["SIREN", "Communes dans le département", "Population"]


def coverage_status(covered_before: Any, covered_after: Any, threshold: str) -> str:
    """French coverage status of a commune or demand unit (``threshold`` already formatted)."""
    if bool(covered_before):
        return f"couverte aujourd'hui (≤ {threshold} min)"
    if bool(covered_after):
        return "couverte grâce aux nouveaux postes"
    return f"non couverte (> {threshold} min)"


# --------------------------------------------------------------------------------------
# Report: labels of sources, statuses and the solver record
# --------------------------------------------------------------------------------------
REPORT_TITLE = "Plan de déploiement des conseillers numériques France Services"
#: Short French names of the offer sources, in the order the report lists them.
SOURCE_SHORT = {
    "france_services": "France Services",
    "cnfs_permanences": "CNFS",
    "aidants_connect": "Aidants Connect",
    "data_inclusion": "data·inclusion",
    "lieux_cd49_2022": "export 2022 des lieux de médiation du CD49",
    "lieux_cd49_2020": "fichier 2020-2021 des lieux de médiation du CD49",
    "conumm_angers": "guide CONUMM d'Angers",
}
SOURCE_STATUS = {
    "read": "lu",
    "missing": "fichier absent du répertoire de données",
    "not applicable": "non applicable",
}
SOLVER_LABELS = {
    "model": "Modèle",
    "objective": "Objectif atteint (population pondérée nouvellement couverte)",
    "bound": "Borne supérieure de l'objectif",
    "gap": "Écart à l'optimum (objectif rapporté à la borne)",
    "status": "Résultat du calcul",
    "p": "Nombre de postes",
    "threshold": "Seuil (min)",
    "n_candidates": "Sites candidats",
    "n_demand": "Communes (points de demande)",
    "weight_total": "Population pondérée totale",
    "weight_covered_before": "Population pondérée couverte avant",
    "weight_covered_after": "Population pondérée couverte après",
    "weight_uncoverable": "Population pondérée hors d'atteinte des sites candidats",
    "units": "Communes",
    "units_covered_before": "Communes couvertes avant",
    "units_uncoverable": "Communes hors d'atteinte des sites candidats",
    "candidates": "Sites candidats dans le modèle (à portée d'au moins une commune)",
    "threshold_min": "Seuil (min)",
}
MODEL_LABELS = {
    "mclp": "couverture maximale (MCLP)",
    "lscp": "couverture totale (LSCP)",
    "pmedian": "p-médian",
    "p-median": "p-médian",
    "equity": "capacité / équité (déficit d'accessibilité sous la cible)",
}
SOLVER_STATUS_LABELS = {
    "optimal": "optimal",
    "time_limit": "limite de temps atteinte",
    "feasible": "solution réalisable",
    "infeasible": "infaisable",
}
NO_PROJECT_CRITERION = (
    "Critère : un EPCI est « sans projet numérique » lorsqu'aucune de ses communes du "
    "département n'accueille de lieu de médiation numérique ni de permanence de conseiller "
    "numérique France Services (critère retenu en Anjou) ; ses France Services et structures "
    "Aidants Connect sont comptées à part."
)


# --------------------------------------------------------------------------------------
# Gap diagnosis: reasons and methods text
# --------------------------------------------------------------------------------------
REASON_FAR = "loin (> {threshold:g} min)"
REASON_THIN = "offre mince (ratio < cible)"
REASON_NEED = "fragilité élevée"
REASON_FIBRE = "fibre < {fibre:g} %"

GAPS_METHODS_TEMPLATE = """\
Territoires en déficit d'offre d'accompagnement numérique

Quatre critères sont calculés pour chaque commune :
1. Temps d'accès : temps de trajet jusqu'au lieu d'accompagnement le plus proche \
(modèle de déplacement du plan).
2. Accessibilité : {access_sentence}
3. Fragilité : indice de fragilité numérique (IFN 2023, score de 0 à 10).
4. Connectivité : part des locaux éligibles à la fibre (ARCEP).

Une commune est un territoire en déficit lorsqu'elle est « loin » (lieu le plus \
proche à plus de {threshold:g} min) ou que son « offre est mince » (accessibilité \
{target_phrase}), ET que sa « fragilité est élevée » (indice de fragilité au moins \
égal à {need_phrase}). Une couverture fibre inférieure à {fibre:g} % est signalée \
comme facteur aggravant, sans suffire à elle seule.

Le score de priorité (0 à 100) sert à classer les communes : chaque critère est \
ramené entre 0 et 1 (1 = situation la plus défavorable) — temps / {time_scale:g} min, \
plafonné à 1 ; 1 − accessibilité / moyenne départementale, borné entre 0 et 1 ; \
indice de fragilité / 10 ; 1 − part fibre / 100 — puis pondéré : temps {w_time}, \
accessibilité {w_access}, fragilité {w_need}, fibre {w_fibre}. La moyenne \
départementale est l'accessibilité moyenne pondérée par le besoin, égale au nombre \
de conseillers du département pour 10 000 habitants pondérés.

Les communes en déficit contiguës (frontière commune d'au moins {min_border:g} m) sont \
regroupées en zones, numérotées G01, G02… par population pondérée décroissante.

Un EPCI est dit « sans projet numérique » lorsqu'aucune de ses communes du \
département n'accueille de lieu de médiation numérique ni de permanence de \
conseiller numérique France Services ; les France Services et structures Aidants \
Connect qu'il compte sont indiquées à part.
"""


def _gaps_number(x: Any, digits: int = 2) -> str:
    return number(x, digits, trim=True, missing="–")


def access_sentence(
    weights: str | None, catchment: float, steps: Iterable[tuple[float, float]]
) -> str:
    """French sentence on the (E)2SFCA accessibility (``steps``: (upper minutes, weight))."""
    common = (
        "exprimé en conseillers pour 10 000 habitants pondérés par le besoin ; "
        "chaque lieu d'accompagnement apporte ses conseillers, la demande est la "
        "population pondérée par l'indice de fragilité numérique, dans un rayon de "
        f"{catchment:g} min"
    )
    if weights == "none":
        return (
            "indicateur à deux étapes (2SFCA, Luo et Wang 2003) "
            + common
            + ", tous les trajets du rayon comptant à parts égales."
        )
    if weights == "gaussian":
        return (
            "indicateur à deux étapes (E2SFCA à noyau gaussien) "
            + common
            + ", les trajets comptant d'autant moins qu'ils sont longs."
        )
    parts = [f"{_gaps_number(w)} jusqu'à {float(up):g} min" for up, w in steps]
    return (
        "indicateur à deux étapes (E2SFCA, Luo et Qi 2009) "
        + common
        + ", avec des poids dégressifs selon le temps de trajet ("
        + ", ".join(parts)
        + ")."
    )


def gaps_methods(
    *,
    threshold: float,
    target: float | None,
    reference: float | None,
    target_share: float | None,
    need_quantile: float,
    need_threshold: float | None,
    fibre: float,
    time_scale: float,
    weights: dict[str, float],
    catchment: float,
    min_border: float,
    access_weights: str | None,
    access_steps: Iterable[tuple[float, float]],
) -> str:
    """French methods text of the gap diagnosis, filled with the values used.

    ``target``, ``reference`` and ``need_threshold`` may be None (data-dependent values
    left generic); ``target_share`` is None when an absolute target is given.
    """
    unit = "conseillers pour 10 000 habitants pondérés"
    if target_share is not None:  # relative target
        share = f"{_gaps_number(100 * target_share, 1)} %"
        if target is None or reference is None:
            target_phrase = f"inférieure à {share} de la moyenne départementale"
        else:
            target_phrase = (
                f"inférieure à la cible de {_gaps_number(target)} {unit}, soit "
                f"{share} de la moyenne départementale de "
                f"{_gaps_number(reference)}"
            )
    else:
        target_phrase = f"inférieure à la cible de {_gaps_number(target)} {unit}"
        if reference is not None:
            target_phrase += f" ; moyenne départementale : {_gaps_number(reference)}"
    if need_quantile == 0.5:
        need_phrase = "la médiane départementale"
    else:
        need_phrase = (
            "la valeur atteinte ou dépassée par "
            f"{_gaps_number(100 * (1 - need_quantile), 1)} % "
            "des communes du département"
        )
    if need_threshold is not None:
        need_phrase += f", soit {_gaps_number(need_threshold)}"
    return GAPS_METHODS_TEMPLATE.format(
        access_sentence=access_sentence(access_weights, catchment, access_steps),
        threshold=threshold,
        target_phrase=target_phrase,
        need_phrase=need_phrase,
        fibre=fibre,
        time_scale=time_scale,
        w_time=_gaps_number(weights["time"]),
        w_access=_gaps_number(weights["access"]),
        w_need=_gaps_number(weights["need"]),
        w_fibre=_gaps_number(weights["fibre"]),
        min_border=min_border,
    )


# --------------------------------------------------------------------------------------
# Data directory: missing data, download errors, provenance (catalog, fetch, cli)
# --------------------------------------------------------------------------------------
def data_fetch_hint(departement: str, folder: str) -> str:
    """The one sentence telling which command fills a data folder for a département."""
    return (
        f"Correctif : lancez `cnfs-geo data fetch --departement {departement} --data-dir "
        f"{folder}` puis `cnfs-geo plan --departement {departement} --data-dir {folder}`."
    )


def data_missing_files(folder: str, n: int) -> str:
    """Heading of the list of missing files of a data folder."""
    what = plural(n, "fichier de données manquant", "fichiers de données manquants")
    return f"{what} dans {folder} :"


def data_no_departement(departement: str, folder: str, *, bundle: bool) -> str:
    """One sentence: no data for a département in a folder, and the command to run."""
    what = (
        "les données intégrées ne couvrent que le Maine-et-Loire (49)"
        if bundle
        else "ce dossier n'en contient pas"
    )
    target = "DOSSIER" if bundle else folder
    return (
        f"Pas de données pour le département {departement} dans {folder} ({what}) : lancez "
        f"`cnfs-geo data fetch --departement {departement} --data-dir {target}` puis "
        f"`cnfs-geo plan --departement {departement} --data-dir {target}`."
    )


def download_error(source: str, url: str, problem: str, fix: str) -> str:
    """A download error: which source, which address, what happened, what to do."""
    return f"Téléchargement de « {source} » impossible ({url}) : {problem}. Correctif : {fix}"


def source_vintage(row: Mapping[str, Any]) -> str:
    """Vintage of a provenance row, with its retrieval date when known."""
    v = str(row.get("vintage") or "millésime inconnu")
    return f"{v}, récupéré le {row['retrieved']}" if row.get("retrieved") else v


def sources_footer(rows: Iterable[Mapping[str, Any]]) -> str:
    """One line naming every source with its vintage (map footer)."""
    return "Sources : " + " ; ".join(f"{r['title']} ({source_vintage(r)})" for r in rows) + "."


#: State of a data file (``cnfs-geo data check``).
DATA_FILE_STATUS = {
    "ok": "intact",
    "missing": "absent",
    "checksum mismatch": "empreinte sha256 différente",
    "size mismatch": "taille différente",
    "unchecked": "présent, non vérifié",
}


#: Short name of the Cartographie nationale in report sentences.
NATIONAL_MAP_SHORT = "Cartographie nationale des lieux d'inclusion numérique"


def offer_covered(labels: Iterable[str]) -> str:
    """Report sentence: separate offer files not needed, their lieux are in the national map."""
    return (
        f"{join(list(labels))} : pas de fichier séparé, ces lieux sont dans la "
        f"{NATIONAL_MAP_SHORT} (labels nationaux)."
    )


def offer_from_national_map(local: Iterable[str], deps: Iterable[str]) -> str:
    """Report sentence: local files not applicable, the lieux come from the national map."""
    return (
        f"Les fichiers locaux de lieux de médiation ({join(list(local))}) ne décrivent que le "
        f"département {join(list(deps))} et ne s'appliquent pas ici. Les lieux de médiation "
        f"numérique viennent de la {NATIONAL_MAP_SHORT}, export national courant."
    )


#: Stages of ``cnfs-geo plan`` as the progress lines name them (``plan._Laps`` keys).
PLAN_STAGES = {
    "read": "fichiers d'entrée lus et vérifiés",
    "territory": "communes et EPCI",
    "offer": "offre existante lue et dédoublonnée",
    "need": "indice de fragilité numérique",
    "coverage": "temps d'accès et couverture actuelle",
    "gaps": "communes non couvertes et territoires prioritaires",
    "candidates": "sites candidats",
    "placement": "placement des nouveaux postes",
    "itinerant": "circuits itinérants",
    "outputs": "tableaux du plan",
}

PROGRESS_WRITE = "Écriture de la carte, du rapport et du GeoPackage"
PROGRESS_COMPARE = "Comparaison des nombres de postes"
PROGRESS_VARIANTS = "Comparaison des variantes"
PROGRESS_NATIONAL = "Départements"
PROGRESS_ROAD_OD = "Temps de trajet par la route"


# --------------------------------------------------------------------------------------
# Report: cost, de-duplication rule, import warnings, solver diagnostics
# --------------------------------------------------------------------------------------
#: Years covered by the State funding of one post (``Settings.cost_per_post_eur``).
COST_YEARS = 2


def cost_per_post(each: float) -> str:
    """``50 000 € par poste pour 2 ans (25 000 € par an)``: the funding with its period."""
    return (
        f"{euros(each)} par poste pour {plural(COST_YEARS, 'an')} "
        f"({euros(each / COST_YEARS)} par an)"
    )


#: The offer module's de-duplication rule, for the report (``{d}``: distance in metres).
DEDUP_RULE = (
    "1) Même identifiant : les fiches des deux exports du Département (2022 et 2020-2021) "
    "qui portent le même identifiant de lieu désignent un seul lieu (l'export 2022 "
    "d'abord) ; une fiche data·inclusion issue du dispositif conseiller numérique rejoint la "
    "permanence de même identifiant. 2) Entre sources, dans l'ordre France Services, "
    "permanences des conseillers numériques, Département, Ville d'Angers, data·inclusion, "
    "Aidants Connect, une fiche rejoint un lieu d'une autre source quand les deux sont "
    "localisés à l'adresse à moins de {d} m l'un de l'autre, ou, si l'un n'est localisé "
    "qu'à la commune, quand ils sont dans la même commune ; il faut en outre le même SIRET "
    "ou des noms concordants (mêmes mots une fois retirés les accents, les articles et les "
    "mots génériques comme « mairie » ou « médiathèque »). Chaque lieu reçoit au plus une "
    "fiche par source ; les rapprochements les plus sûrs (nom, puis SIRET, puis distance) "
    "passent d'abord. 3) Deux fiches d'une même source ne sont jamais fusionnées. "
    "Pourquoi : le SIRET seul fusionnerait les permanences qu'une structure tient dans "
    "plusieurs communes, la distance seule des lieux voisins mais distincts."
)

_WARNING_PATTERNS: list[tuple[str, str]] = [
    (
        r"^(?P<src>.+?): record (?P<id>\S+): longitude/latitude missing; relocated at the "
        r"chef-lieu of its commune (?P<code>\w+) \((?P<nom>[^)]*)\).*$",
        "{src}, fiche {id} : coordonnées absentes ; lieu placé au chef-lieu de sa commune, "
        "{nom} ({code}).",
    ),
    (
        r"^(?P<src>\S+) (?P<id>\S+) \((?P<nom>.*)\): AFFICHAGE=INACTIF in the 2020-2021 "
        r"source but published in the 2022-12 export.*$",
        "{src}, fiche {id} ({nom}) : marquée inactive dans la source 2020-2021 mais publiée "
        "dans l'export 2022-12 ; le lieu est gardé d'après la fiche 2022.",
    ),
    (
        r"^(?P<src>\S+) (?P<id>\S+): USER_NOM '(?P<v>.*)' is an address, not a name.*$",
        "{src}, fiche {id} : le nom « {v} » est une adresse ; lieu nommé « Lieu sans nom » "
        "et non utilisé pour rapprocher les noms.",
    ),
    (
        r"^(?P<src>\S+) (?P<id>\S+) \((?P<nom>.*)\): blank City Insee Code; commune "
        r"(?P<code>\w+) \((?P<cnom>.*?)\) found from .*$",
        "{src}, fiche {id} ({nom}) : code INSEE de la commune absent ; commune {cnom} "
        "({code}) retrouvée par le code postal ou le nom de la ville.",
    ),
]

#: Coordinate problems of the offer import (``offer._locate``), in French.
_COORD_PROBLEMS: list[tuple[str, str]] = [
    (r"^(?P<f>\S+) missing$", "coordonnées absentes"),
    (r"^(?P<f>\S+) = (?P<raw>.+) is not numeric$", "coordonnées non numériques ({raw})"),
    (r"^(?P<f>\S+) = (?P<raw>.+) out of range \(.*\)$", "coordonnées impossibles ({raw})"),
    (
        r"^(?P<f>\S+) = (?P<raw>.+) lies (?P<km>[\d.]+) km outside département (?P<dep>\w+) .*$",
        "coordonnées {raw} à {km} km hors du département {dep}",
    ),
]
_COORD_RECORD = r"^(?P<src>.+?): record (?P<id>\S+)(?: \((?P<nom>.*?)\))?: "


def _coord_problem(text: str) -> str:
    import re

    for pattern, template in _COORD_PROBLEMS:
        m = re.match(pattern, text)
        if m:
            g = m.groupdict()
            if "km" in g:
                km = float(g["km"])
                g["km"] = (integer(km) if km >= 100 else number(km, 1)) + "\u00a0km"
                template = template.replace("{km} km", "{km}")
            return template.format(**g)
    return "coordonnées inutilisables"


def _coord_warning(text: str) -> str | None:
    """French wording of the offer import's coordinate repairs (swap, relocation)."""
    import re

    m = re.match(
        _COORD_RECORD + r"(?P<f>\S+) = (?P<raw>.+) swapped \(lat/lon or x/y inverted\).*$", text
    )
    if m:
        nom = f" ({m['nom']})" if m["nom"] else ""
        return (
            f"{m['src']}, fiche {m['id']}{nom} : coordonnées inversées ({m['f']} = {m['raw']}) ; "
            "corrigées, le point remis dans l'ordre tombe dans le département."
        )
    m = re.match(
        _COORD_RECORD + r"(?P<why>.+); relocated at the chef-lieu of its commune "
        r"(?P<code>\w+) \((?P<cnom>[^)]*)\).*$",
        text,
    )
    if m:
        return (
            f"{m['src']}, fiche {m['id']} : {_coord_problem(m['why'])} ; lieu placé au "
            f"chef-lieu de sa commune, {m['cnom']} ({m['code']})."
        )
    m = re.match(
        _COORD_RECORD + r"(?P<why>.+); coordinates ignored: merged by identifier into place "
        r"(?P<key>.+)$",
        text,
    )
    if m:
        return (
            f"{m['src']}, fiche {m['id']} : {_coord_problem(m['why'])} ; coordonnées "
            f"ignorées, fiche rattachée par son identifiant au lieu {m['key']}."
        )
    m = re.match(r"^(?P<src>\S+): duplicated record id\(s\) \[(?P<ids>.*)\] made unique", text)
    if m:
        ids = m["ids"].replace("'", "")
        return (
            f"{m['src']} : identifiant de fiche en double ({ids}) ; les fiches sont gardées "
            "toutes, rendues distinctes par un suffixe ~2, ~3…"
        )
    return None


#: An import warning with no French wording yet (its English text is in the ``-v`` log).
WARNING_OTHER = "fiche corrigée à l'import (détail technique : cnfs-geo plan -v)"


def import_warning(text: str) -> str:
    """French wording of one warning of the offer import (the module writes English).

    >>> import_warning("x.json: record s:1: longitude/latitude missing; relocated at "
    ...                "the chef-lieu of its commune 49007 (Angers), located='commune'")[:53]
    'x.json, fiche s:1 : coordonnées absentes ; lieu placé'
    """
    import re

    for pattern, template in _WARNING_PATTERNS:
        m = re.match(pattern, str(text))
        if m:
            return template.format(**m.groupdict())
    french = _coord_warning(str(text))
    if french is not None:
        return french
    source = str(text).split(":", 1)[0].strip()
    return f"{source} : {WARNING_OTHER}" if source and len(source) < 80 else WARNING_OTHER


def solver_result(status: Any, gap: Any) -> str:
    """Plain-French outcome of the placement computation (status and relative gap)."""
    g = float(gap) if isinstance(gap, (int, float)) and math.isfinite(float(gap)) else None
    if str(status) == "optimal" and (g is None or g <= 1e-9):
        return "solution optimale prouvée"
    if str(status) in ("optimal", "time_limit", "feasible") and g is not None:
        return (
            "meilleure solution trouvée dans le temps de calcul imparti, à au plus "
            f"{percent(100.0 * g)} de l'optimum"
        )
    return SOLVER_STATUS_LABELS.get(str(status), "résultat non précisé")


# --------------------------------------------------------------------------------------
# Command line: help, argparse errors, spreadsheet columns
# --------------------------------------------------------------------------------------
CLI_HELP_HELP = "affiche cette aide et quitte"
CLI_DESCRIPTION = """\
Diagnostic de couverture et placement de conseillers numériques France Services.

Exemples :
  cnfs-geo plan --departement 49 --posts 8 --threshold 10 --out maps/49
      diagnostic et placement de 8 nouveaux postes ; écrit plan.gpkg (QGIS),
      carte_couverture.html (carte) et rapport.html (rapport) dans --out
  cnfs-geo compare --departement 49 --out maps/49/comparaison
      couverture gagnée selon le nombre de postes (comparaison.csv, comparaison.png)
  cnfs-geo data fetch
      télécharge les fichiers nationaux (pour les autres départements)

Une erreur dans les données est signalée par un message (fichier, ligne ou champ,
correction) et la commande s'arrête avec le code 2."""
CLI_PLAN_DESCRIPTION = (
    "Diagnostic de couverture et placement de nouveaux postes pour un département ; "
    "écrit plan.gpkg, carte_couverture.html et rapport.html dans le dossier de sortie."
)
CLI_COMPARE_DESCRIPTION = (
    "Compare plusieurs nombres de postes (comparaison.csv, comparaison.png) et, pour un "
    "budget donné, les variantes avec postes itinérants et hypothèse fibre (variantes.csv)."
)

_ARGPARSE_ERRORS: list[tuple[str, str]] = [
    (r"^the following arguments are required: (?P<a>.*)$", "arguments obligatoires : {a}"),
    (r"^unrecognized arguments: (?P<a>.*)$", "arguments inconnus : {a}"),
    (
        r"^argument (?P<o>\S+): invalid (?:int|float) value: (?P<v>.*)$",
        "option {o} : {v} n'est pas un nombre valide",
    ),
    (
        r"^argument (?P<o>\S+): invalid choice: (?P<v>.*?) \(choose from (?P<c>.*)\)$",
        "option {o} : choix {v} inconnu (choix possibles : {c})",
    ),
    (r"^argument (?P<o>\S+): expected one argument$", "option {o} : une valeur est attendue"),
    (
        r"^argument (?P<o>\S+): expected at least one argument$",
        "option {o} : au moins une valeur est attendue",
    ),
    (
        r"^argument (?P<o>\S+): not allowed with argument (?P<a>\S+)$",
        "option {o} : incompatible avec l'option {a}",
    ),
    # the project's own option checks (cli._count, cli._minutes…) already speak French
    (r"^argument (?P<o>\S+): (?P<m>.*)$", "option {o} : {m}"),
]


def argparse_error(message: str) -> str:
    """French wording of an argparse usage error (the message itself when unknown).

    >>> argparse_error("argument --posts/-n: invalid int value: 'huit'")
    "option --posts/-n : 'huit' n'est pas un nombre valide"
    """
    import re

    for pattern, template in _ARGPARSE_ERRORS:
        m = re.match(pattern, message)
        if m:
            return template.format(**m.groupdict())
    return message


#: Where the data directory comes from (``catalog.DataDir.origin``), as the CLI says it.
DATA_ORIGIN = {
    "bundle": "jeu de Maine-et-Loire fourni avec le logiciel",
    "argument": "option --data-dir",
    "environment": "variable CNFS_GEO_DATA_DIR",
}

#: Status of ``catalog.verify`` as ``cnfs-geo data check`` prints it.
CHECK_STATUS = {
    "ok": "intact",
    "missing": "absent",
    "checksum mismatch": "empreinte différente",
    "unchecked": "non vérifié",
}

#: French headers of the comparison tables written for spreadsheets.
SPREADSHEET_COLUMNS = {
    "scenario": "Scénario",
    "posts": "Postes",
    "fixed_posts": "Postes fixes",
    "itinerant_posts": "Postes itinérants",
    "cost_eur": "Coût (€)",
    "fibre_target_pct": "Fibre visée (%)",
    "need_total": "Population pondérée totale",
    "communes_covered": "Communes couvertes",
    "communes_served_itinerant": "Communes desservies par un circuit",
    "population_covered": "Population couverte",
    "pct_population_covered": "Population couverte (%)",
    "need_covered": "Population pondérée couverte",
    "pct_need_covered": "Population pondérée couverte (%)",
    "pct_need_covered_with_itinerant": "Population pondérée couverte ou desservie (%)",
    "marginal_population": "Population gagnée par poste ajouté",
    "marginal_need": "Population pondérée gagnée par poste ajouté",
    "gap": "Écart à l'optimum",
    "hosts": "Communes des postes",
}


def spreadsheet_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with French column headers (``SPREADSHEET_COLUMNS``; others unchanged)."""
    return frame.rename(columns=SPREADSHEET_COLUMNS)
