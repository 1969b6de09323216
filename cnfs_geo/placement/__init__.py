"""Where to put new CNFS posts: exact location models on sparse MILPs, a national solver
and an equity model (spopt-like: ``*_from_geodataframes`` checks the CRS, then hands over
to ``*_from_od``). Method: ``docs/methods_placement.md``.

Examples
--------
>>> import pandas as pd
>>> from cnfs_geo import access, catalog, territory, placement
>>> c = territory.communes_from_cog("49", catalog.resolve_data_dir())
>>> demand = c[["ref_x", "ref_y"]].set_axis(["x", "y"], axis=1)
>>> sites = c[["chef_lieu_x", "chef_lieu_y"]].set_axis(["x", "y"], axis=1)
>>> sites.index = "commune:" + sites.index
>>> od = access.od_crowfly(demand, sites, max_minutes=10)
>>> r = placement.mclp_from_od(od, c["population"], p=3, threshold=10)
>>> len(r.posts), r.solution["status"]
(3, 'optimal')
"""

from ._base import SOLVER, TIE_BREAK, PlacementResult, Solution
from ._milp import keep_objective
from ._milp import solve as solve_milp
from ._milp import status_name as milp_status
from .covering import lscp_from_geodataframes, lscp_from_od, mclp_from_geodataframes, mclp_from_od
from .equity import PER, EquityResult, equity_from_od, equity_of_posts
from .median import pmedian_from_geodataframes, pmedian_from_od
from .rules import Rules
from .scalable import SCALABLE_SOLVER, SCALABLE_TIE_BREAK, mclp_scalable_from_od

__all__ = [
    "PER",
    "SCALABLE_SOLVER",
    "SCALABLE_TIE_BREAK",
    "SOLVER",
    "TIE_BREAK",
    "EquityResult",
    "PlacementResult",
    "Rules",
    "Solution",
    "equity_from_od",
    "equity_of_posts",
    "keep_objective",
    "lscp_from_geodataframes",
    "lscp_from_od",
    "mclp_from_geodataframes",
    "mclp_from_od",
    "mclp_scalable_from_od",
    "milp_status",
    "pmedian_from_geodataframes",
    "pmedian_from_od",
    "solve_milp",
]
