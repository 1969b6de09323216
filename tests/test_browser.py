"""The generated map and report in a real browser (headless Chromium, network disabled).

Both Maine-et-Loire demo plans (8 fixed posts; 6 fixed + 2 itinerant) are written with
:func:`cnfs_geo.outputs.write_outputs`, then each map and report is opened in headless
Chromium with the network emulated offline (tests/_cdp.py). The tests count the requests
to anything but ``file://`` (and inlined ``data:``), collect console errors, check what
is drawn against the plan's frames, and save screenshots under the pytest tmp dir (and
into ``$CNFS_GEO_SHOTS_DIR`` when set, to look at them). Skipped, with the reason shown,
when no Chromium is installed (Debian package ``chromium``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from _cdp import Browser, find_chromium

from cnfs_geo import _fr, maps

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on the PATH: install the Debian package 'chromium' "
    "(.ci/run does) to run the browser tests",
)

# The Leaflet map object of the page (folium names it map_<id>).
_MAP = "Object.values(window).find(function(v) { return v instanceof L.Map; })"
# What the map draws, read back from Leaflet and the DOM.
_DRAWN = f"""(function() {{
    var map = {_MAP};
    var polygons = 0, circles = 0, projected = 0;
    map.eachLayer(function(l) {{
        if (l instanceof L.CircleMarker) {{ circles += 1; }}
        else if (l instanceof L.Polygon && l.feature) {{
            polygons += 1;
            if (l._parts && l._parts.length) {{ projected += 1; }}
        }}
    }});
    var canvas = document.querySelector(".leaflet-overlay-pane canvas");
    var ctx = canvas.getContext("2d");
    var px = ctx.getImageData(0, 0, canvas.width, canvas.height).data, painted = 0;
    for (var i = 3; i < px.length; i += 4) {{ if (px[i] > 0) {{ painted += 1; }} }}
    var legend = document.getElementById("legende").getBoundingClientRect();
    return {{
        lang: document.documentElement.lang,
        polygons: polygons, projected: projected, circles: circles,
        painted_share: painted / (canvas.width * canvas.height),
        posts: document.querySelectorAll(".leaflet-marker-pane .cg-post-icon").length,
        legend_height: legend.height, legend_width: legend.width,
        legend_text: document.getElementById("legende").innerText,
        message_shown: !document.getElementById("cg-basemap-msg").hidden,
        titles: Array.from(document.querySelectorAll("[title]")).map(function(e) {{
            return e.title; }})
    }};
}})()"""
# Click the base-map radio button whose label is `name`.
_PICK_BASE = """(function(name) {
    var labels = document.querySelectorAll(".leaflet-control-layers-base label");
    for (var i = 0; i < labels.length; i++) {
        if (labels[i].innerText.trim() === name) {
            labels[i].querySelector("input").click(); return true;
        }
    }
    return false;
})(%s)"""


@pytest.fixture(scope="module")
def demos(plan49, plan49_mixed, cli49, cli49_mixed):
    """The two demo plans and the outputs the command line wrote for them (conftest
    ``cli49`` and ``cli49_mixed``: same scenarios), by name."""
    out = {}
    for name, plan, run in (("49", plan49, cli49), ("49_mutualise", plan49_mixed, cli49_mixed)):
        assert run.rc == 0
        paths = {"map": run.out / "carte_couverture.html", "report": run.out / "rapport.html"}
        out[name] = (plan, paths)
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    assert CHROMIUM is not None
    with Browser(CHROMIUM, tmp_path_factory.mktemp("chromium-profile")) as b:
        yield b


def _keep(shot: Path, name: str) -> None:
    """Copy a screenshot to $CNFS_GEO_SHOTS_DIR when set (to look at it)."""
    target = os.environ.get("CNFS_GEO_SHOTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / name)


@pytest.mark.parametrize("demo", ["49", "49_mutualise"])
def test_map_renders_offline(demos, browser, demo, tmp_path):
    plan, paths = demos[demo]
    page = browser.open_page(1400, 900)
    page.goto(paths["map"].as_uri())
    page.wait_for(f"document.querySelectorAll('.cg-post-icon').length >= {len(plan.posts)}")
    drawn = page.evaluate(_DRAWN)
    shot = page.screenshot(tmp_path / f"carte_{demo}.png")
    _keep(shot, f"carte_{demo}.png")

    assert page.network_requests() == []
    assert page.console_errors() == []
    assert drawn["lang"] == "fr"
    # communes (time before, on by default) and, when any, the priority territories
    n_clusters = 0 if plan.gap_clusters is None else len(plan.gap_clusters)
    assert drawn["polygons"] == len(plan.communes) + n_clusters
    assert drawn["projected"] == drawn["polygons"]
    # the département fills part of the canvas (which extends past the view by 10 %)
    assert drawn["painted_share"] > 0.05
    # every place (one circle each, all place layers on) and every post
    assert drawn["circles"] == len(plan.places)
    assert drawn["posts"] == len(plan.posts)
    assert drawn["legend_height"] > 200 and drawn["legend_width"] > 150
    assert drawn["legend_text"].startswith("Légende")
    assert not drawn["message_shown"]
    # Leaflet's own tooltips in French too (its defaults are "Zoom in", "Zoom out"…)
    assert "Zoom avant" in drawn["titles"] and "Zoom arrière" in drawn["titles"]
    assert not [t for t in drawn["titles"] if re.search(r"\b(Zoom in|Zoom out|library)\b", t)]
    assert paths["map"].stat().st_size <= 3 * 1024 * 1024


@pytest.mark.parametrize("base", [_fr.LAYER_BASEMAP, _fr.LAYER_BASEMAP_IGN])
def test_base_map_asks_for_tiles_and_says_when_it_cannot_load(demos, browser, base, tmp_path):
    plan, paths = demos["49"]
    page = browser.open_page(1400, 900)
    page.goto(paths["map"].as_uri())
    page.wait_for(f"document.querySelectorAll('.cg-post-icon').length >= {len(plan.posts)}")
    assert page.network_requests() == []
    assert page.evaluate(_PICK_BASE % repr(base))
    page.wait_for("!document.getElementById('cg-basemap-msg').hidden")
    message = page.evaluate("document.getElementById('cg-basemap-msg').innerText")
    shot = page.screenshot(tmp_path / "fond.png")
    _keep(shot, f"carte_49_fond_{'osm' if base == _fr.LAYER_BASEMAP else 'ign'}.png")

    host = "tile.openstreetmap.org" if base == _fr.LAYER_BASEMAP else "data.geopf.fr"
    requests = page.network_requests()
    assert requests and all(host in u for u in requests), requests
    assert message == _fr.BASEMAP_UNAVAILABLE
    # the only errors are the failed tiles (offline), none from the page's scripts
    assert all(host in e for e in page.console_errors()), page.console_errors()
    # back to no base map: the message goes away
    assert page.evaluate(_PICK_BASE % repr(maps.base_layer_names()[0]))
    assert page.evaluate("document.getElementById('cg-basemap-msg').hidden")


@pytest.mark.parametrize("demo", ["49", "49_mutualise"])
def test_report_renders_offline(demos, browser, demo, tmp_path):
    plan, paths = demos[demo]
    page = browser.open_page(1100, 1400)
    page.goto(paths["report"].as_uri())
    page.browser.pump(0.5)
    info = page.evaluate(
        """({lang: document.documentElement.lang,
             tables: document.querySelectorAll("table").length,
             images: Array.from(document.images).map(function(i) {
                 return [i.complete, i.naturalWidth]; })})"""
    )
    shot = page.screenshot(tmp_path / f"rapport_{demo}.png")
    _keep(shot, f"rapport_{demo}.png")

    assert page.network_requests() == []
    assert page.console_errors() == []
    assert info["lang"] == "fr"
    assert info["tables"] >= 3
    assert all(done and width > 0 for done, width in info["images"]), info["images"]


# Which marker is on top at the centre of each post and circuit stop, and whether the title
# box overlaps the layer control.
_ON_TOP = """(function() {
    function top(el) {
        var r = el.getBoundingClientRect();
        var hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        if (!hit) { return "none"; }
        if (hit.closest(".cg-post-icon")) { return "post"; }
        var lab = hit.closest(".cg-lab");
        if (lab) { return lab.classList.contains("cg-stop") ? "stop" : "zone label"; }
        return hit.className ? String(hit.className) : hit.tagName;
    }
    var t = document.querySelector(".cg-title").getBoundingClientRect();
    var c = document.querySelector(".leaflet-control-layers").getBoundingClientRect();
    return {
        posts: Array.from(document.querySelectorAll(".cg-post-icon")).map(top),
        stops: Array.from(document.querySelectorAll(".cg-lab.cg-stop")).map(top),
        title_overlaps_layers: t.right > c.left && t.bottom > c.top && t.top < c.bottom
    };
})()"""


@pytest.mark.parametrize("demo", ["49", "49_mutualise"])
def test_posts_and_stops_are_not_hidden_under_labels_or_the_title(demos, browser, demo):
    """Seen in the screenshots: the zone labels (G08…) covered posts and circuit stops, and
    the title box hid the base-map buttons of the layer control."""
    plan, paths = demos[demo]
    page = browser.open_page(1400, 900)
    page.goto(paths["map"].as_uri())
    page.wait_for(f"document.querySelectorAll('.cg-post-icon').length >= {len(plan.posts)}")
    seen = page.evaluate(_ON_TOP)
    assert seen["posts"] == ["post"] * len(plan.posts), seen["posts"]
    # a stop may sit under its own base's post marker, never under a zone label
    assert "zone label" not in seen["stops"], seen["stops"]
    assert not seen["title_overlaps_layers"]
