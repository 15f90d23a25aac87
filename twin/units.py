"""Unit suffixes of names (``T_supply_K``, ``P_gpu_W``) and the conversions allowed at the edges.

Inside twin everything is SI with the unit in the name. Input files may use the units people write
(C, kW, MWh); they are converted here, once, when read.
"""
from __future__ import annotations

# suffix -> (SI suffix, factor, offset): SI value = value * factor + offset
EDGE_UNITS: dict[str, tuple[str, float, float]] = {
    "C": ("K", 1.0, 273.15),
    "kW": ("W", 1e3, 0.0),
    "MW": ("W", 1e6, 0.0),
    "Wh": ("J", 3600.0, 0.0),
    "kWh": ("J", 3.6e6, 0.0),
    "MWh": ("J", 3.6e9, 0.0),
    "L": ("m3", 1e-3, 0.0),
    "kPa": ("Pa", 1e3, 0.0),
    "bar": ("Pa", 1e5, 0.0),
    "min": ("s", 60.0, 0.0),
    "h": ("s", 3600.0, 0.0),
    "d": ("s", 86400.0, 0.0),
    "m3_h": ("m3_s", 1.0 / 3600.0, 0.0),
    "t_h": ("kg_s", 1000.0 / 3600.0, 0.0),
}

# SI and other suffixes that may end a name, longest first so that "W_mK" wins over "K"
KNOWN_SUFFIXES = sorted(
    {"K", "W", "J", "Pa", "m", "m2", "m3", "s", "kg", "kg_s", "m3_s", "W_K", "W_mK", "W_m2K", "J_K", "J_kgK",
     "J_mK", "m2K_W", "Pa_s2_m6", "rel", "1", "EUR", "EUR_MWh", "g_kWh", "kg_m3", "rpm"} | set(EDGE_UNITS),
    key=len, reverse=True)


def split_unit(name: str) -> tuple[str, str | None]:
    """('T_supply', 'K') for 'T_supply_K'; (name, None) when the name carries no known unit suffix."""
    for suffix in KNOWN_SUFFIXES:
        if name.endswith("_" + suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix) - 1], suffix
    return name, None


def to_si(name: str) -> tuple[str, float, float]:
    """(SI name, factor, offset) for a name with an edge unit; the name itself with (1, 0) otherwise."""
    base, unit = split_unit(name)
    if unit in EDGE_UNITS:
        si, factor, offset = EDGE_UNITS[unit]
        return f"{base}_{si}", factor, offset
    return name, 1.0, 0.0


def parse_duration_s(text: str) -> float:
    """'365d', '7d', '24h', '90min', '60s' or a plain number of seconds."""
    t = str(text).strip()
    for suffix, factor in (("min", 60.0), ("d", 86400.0), ("h", 3600.0), ("s", 1.0)):
        if t.endswith(suffix):
            return float(t[: -len(suffix)]) * factor
    return float(t)
