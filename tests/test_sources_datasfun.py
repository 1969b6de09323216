"""datas.fun commune reader (cnfs_geo.sources.datasfun)."""

from cnfs_geo.sources import datasfun


def test_datasfun_columns(bundle):
    df = datasfun.read_datasfun_communes(bundle.file("datasfun_communes"))
    assert list(df.columns) == datasfun.DATASFUN_COLUMNS
    assert (df["insee_dep"] == "49").all() and df["insee_com"].str.len().eq(5).all()
