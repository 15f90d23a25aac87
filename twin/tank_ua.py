"""Heat-loss coefficient (UA) of an insulated cylindrical storage tank, from its geometry and insulation data.

The BufferTank FMU takes one total ``UA_W_K``; this module computes it from what a data sheet gives: inner height
and diameter, insulation thickness and conductivity, inner and outer surface heat-transfer coefficients. Each
surface is a chain of series resistances (inner film, insulation, outer film):

- side wall: a cylindrical shell, R = 1/(h_in 2 pi r_i H) + ln(r_o/r_i)/(2 pi lambda H) + 1/(h_out 2 pi r_o H);
- top and bottom: flat slabs over the inner cross-section, R = 1/(h_in A_i) + s/(lambda A_i) + 1/(h_out A_o),
  with A_i = pi r_i^2 and A_o = pi r_o^2 (the outer face of the end insulation spans the outer diameter).

The steel wall's resistance is negligible next to the insulation and is left out; thermal bridges (feet, ports,
flanges) are not included, so the result is a lower bound of a real tank's UA.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TankUA:
    """UA of each surface of the tank, W/K."""

    side_W_K: float
    top_W_K: float
    bottom_W_K: float

    @property
    def total_W_K(self) -> float:
        return self.side_W_K + self.top_W_K + self.bottom_W_K


def cylinder_ua(height_m: float, diameter_m: float, insulation_m: float, lambda_W_mK: float,
                h_in_W_m2K: float, h_out_W_m2K: float) -> TankUA:
    """UA of a vertical cylinder (inner height and diameter) insulated on its side, top and bottom."""
    values = {"height_m": height_m, "diameter_m": diameter_m, "insulation_m": insulation_m,
              "lambda_W_mK": lambda_W_mK, "h_in_W_m2K": h_in_W_m2K, "h_out_W_m2K": h_out_W_m2K}
    bad = [f"{k} = {v!r}" for k, v in values.items() if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"cylinder_ua: expected finite values > 0; got {', '.join(bad)}")
    r_i = 0.5 * diameter_m
    r_o = r_i + insulation_m
    R_side = (1.0 / (h_in_W_m2K * 2.0 * math.pi * r_i * height_m)
              + math.log(r_o / r_i) / (2.0 * math.pi * lambda_W_mK * height_m)
              + 1.0 / (h_out_W_m2K * 2.0 * math.pi * r_o * height_m))
    A_i, A_o = math.pi * r_i ** 2, math.pi * r_o ** 2
    R_end = 1.0 / (h_in_W_m2K * A_i) + insulation_m / (lambda_W_mK * A_i) + 1.0 / (h_out_W_m2K * A_o)
    return TankUA(side_W_K=1.0 / R_side, top_W_K=1.0 / R_end, bottom_W_K=1.0 / R_end)


def cylinder_volume_m3(height_m: float, diameter_m: float) -> float:
    """Inner volume of a vertical cylinder."""
    return 0.25 * math.pi * diameter_m ** 2 * height_m
