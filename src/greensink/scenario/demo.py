"""The demo city's scenario layers: three planning changes drawn from its own zones and green space.

* ``new_park`` – the parcel with the least green space becomes a park (G1);
* ``construction`` – the parcel with the most green space (another parcel) is lost to construction;
* ``street_trees`` – every parcel of the first district gets street trees (planting).

The demo config (greensink/data/demo_config.yaml) and config/examples/demo-scenarios.yaml plan with them
(rule demo_scenario_layers writes them).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from greensink.aggregate import overlay_areas_m2

DEMO_LAYERS = ("new_park", "construction", "street_trees")


def demo_scenario_layers(parcels: gpd.GeoDataFrame, districts: gpd.GeoDataFrame,
                         greenspace: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    """{layer name: polygons} of :data:`DEMO_LAYERS` (columns zone_id, green_share_pct), chosen by each
    parcel's green-space share (exact overlay; ties by zone id)."""
    parcels = parcels.sort_values("zone_id").reset_index(drop=True)
    geoms = np.asarray(parcels.geometry.values, dtype=object)
    green = np.asarray(overlay_areas_m2(geoms, np.asarray(greenspace.geometry.values, dtype=object)).sum(axis=1)).ravel()
    share = 100.0 * green / shapely.area(geoms)
    order = np.lexsort((parcels["zone_id"].astype(str).to_numpy(), share))
    park, built = int(order[0]), int(order[-1])
    first = districts.sort_values("zone_id").geometry.values[0]
    inside = shapely.contains(first, shapely.point_on_surface(geoms))

    def layer(mask: np.ndarray) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"zone_id": parcels["zone_id"].to_numpy()[mask], "green_share_pct": share[mask]},
                                geometry=geoms[mask], crs=parcels.crs)

    index = np.arange(len(parcels))
    return {"new_park": layer(index == park), "construction": layer(index == built), "street_trees": layer(inside)}
