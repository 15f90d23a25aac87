"""Physical parameters of a pipe from its geometry and insulation, for the Pipe FMU and models/common/plugflow.h.

The heat loss per metre and kelvin is U' = 1 / R', with R' (m K/W) the sum of the thermal resistances in series
from the water to the surroundings; the film and the steel wall add well under 1 % to R' of an insulated pipe
and are left out (the film coefficient couples water and wall inside the model instead). The wall heat capacity
per metre is that of the steel annulus. Inputs in SI (m, W/(m K), W/(m2 K), kg/m3, J/(kg K)); see
models/Pipe/README.md for typical values.
"""
from __future__ import annotations

import math

STEEL_RHO_KG_M3 = 7850.0
STEEL_CP_J_KGK = 490.0


def _positive(**values: float) -> None:
    bad = [f"{k} = {v!r}" for k, v in values.items() if not (v > 0.0 and math.isfinite(v))]
    if bad:
        raise ValueError(f"expected positive finite values, found {', '.join(bad)}")


def wall_capacity_J_mK(D_i_m: float, D_o_m: float, rho_kg_m3: float = STEEL_RHO_KG_M3,
                       cp_J_kgK: float = STEEL_CP_J_KGK) -> float:
    """Heat capacity per metre of a wall annulus from D_i_m to D_o_m, J/(m K)."""
    _positive(D_i_m=D_i_m, rho_kg_m3=rho_kg_m3, cp_J_kgK=cp_J_kgK)
    if not D_o_m > D_i_m:
        raise ValueError(f"outer diameter D_o_m = {D_o_m!r} must exceed the inner diameter D_i_m = {D_i_m!r}")
    return 0.25 * math.pi * (D_o_m ** 2 - D_i_m ** 2) * rho_kg_m3 * cp_J_kgK


def insulation_resistance_mK_W(D_m: float, s_ins_m: float, k_ins_W_mK: float) -> float:
    """Conduction through a cylindrical insulation layer of thickness s_ins_m on a pipe of outer diameter D_m."""
    _positive(D_m=D_m, s_ins_m=s_ins_m, k_ins_W_mK=k_ins_W_mK)
    return math.log((D_m + 2.0 * s_ins_m) / D_m) / (2.0 * math.pi * k_ins_W_mK)


def surface_resistance_mK_W(D_m: float, h_W_m2K: float) -> float:
    """Convection (and radiation, if folded into h) from an outer surface of diameter D_m to the surroundings."""
    _positive(D_m=D_m, h_W_m2K=h_W_m2K)
    return 1.0 / (h_W_m2K * math.pi * D_m)


def ground_resistance_mK_W(D_m: float, depth_m: float, k_ground_W_mK: float) -> float:
    """A single pipe of outer diameter D_m buried with its axis depth_m below the surface, in soil of
    conductivity k_ground_W_mK, surface at the undisturbed ground temperature: arccosh(2 H / D) / (2 pi k)."""
    _positive(D_m=D_m, depth_m=depth_m, k_ground_W_mK=k_ground_W_mK)
    if not 2.0 * depth_m > D_m:
        raise ValueError(f"depth_m = {depth_m!r} must exceed the pipe's outer radius {0.5 * D_m!r}")
    return math.acosh(2.0 * depth_m / D_m) / (2.0 * math.pi * k_ground_W_mK)


def loss_coefficient_W_mK(*resistances_mK_W: float) -> float:
    """U' = 1 / sum of the resistances in series, W/(m K)."""
    if not resistances_mK_W:
        raise ValueError("expected at least one thermal resistance")
    _positive(**{f"resistance {i}": r for i, r in enumerate(resistances_mK_W)})
    return 1.0 / sum(resistances_mK_W)
