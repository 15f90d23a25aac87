"""Python components of the plant: controllers and small signal blocks, stepped like FMUs.

A block declares its ports and parameters (name with unit suffix, description, bounds), and its ``step``
depends only on its arguments and its own state; the engine does all routing. Sign conventions and the
control laws are in each class's docstring. Every block's state is a small dict of floats, so checkpoints
can save it.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Param:
    name: str
    default: float | None          # None: required
    description: str
    min: float = -math.inf
    max: float = math.inf


class Block(abc.ABC):
    """Base class. Subclasses set INPUTS, OUTPUTS (port names with units) and PARAMS."""

    INPUTS: tuple[str, ...] = ()
    REQUIRED: tuple[str, ...] = ()      # inputs a scenario must connect (the others default: 'enable' 1, else 0)
    OUTPUTS: tuple[str, ...] = ()
    PARAMS: tuple[Param, ...] = ()
    DESCRIPTION = ""

    def __init__(self, name: str, parameters: dict[str, float]):
        self.name = name
        self.p = {q.name: float(parameters.get(q.name, q.default)) for q in self.PARAMS}
        self.state: dict[str, float] = {}
        self._y = np.zeros(len(self.OUTPUTS))

    @classmethod
    def param(cls, name: str) -> Param | None:
        return next((q for q in cls.PARAMS if q.name == name), None)

    def setup(self, t_s: float) -> np.ndarray:
        """Initial outputs."""
        return self._y

    @abc.abstractmethod
    def step(self, t_s: float, h_s: float, u: np.ndarray) -> np.ndarray:
        """Advance from t_s by h_s with inputs u; return the outputs (a reused array)."""

    def get_state(self) -> dict:
        return {"state": dict(self.state), "y": self._y.tolist()}

    def set_state(self, s: dict) -> None:
        self.state = dict(s["state"])
        self._y[:] = s["y"]


class PI(Block):
    """PI controller with anti-windup (the integrator stops when the output saturates in the same direction).

    u = clip(u0 + kp * e + I, u_min, u_max),  e = direction * (setpoint - measured),  dI/dt = kp * e / ti_s.
    direction = +1 when raising u raises the measurement (heating), -1 when raising u lowers it (cooling:
    more flow, colder). ``enable`` (>= 0.5) runs the controller; disabled, it outputs u_off and resets.
    """

    DESCRIPTION = "PI controller with anti-windup"
    INPUTS = ("measured", "setpoint", "enable")
    REQUIRED = ("measured", "setpoint")
    OUTPUTS = ("u",)
    PARAMS = (
        Param("kp", None, "proportional gain per unit of the measurement", 0.0),
        Param("ti_s", None, "integral time, s", 1e-3),
        Param("direction", 1.0, "+1: u raises the measurement; -1: u lowers it", -1.0, 1.0),
        Param("u_min", 0.0, "lower output limit"),
        Param("u_max", 1.0, "upper output limit"),
        Param("u0", 0.0, "output offset (feed-forward)"),
        Param("u_off", 0.0, "output while disabled"),
        Param("u_start", 0.0, "initial output"),
    )

    def setup(self, t_s):
        self.state = {"I": self.p["u_start"] - self.p["u0"]}
        self._y[0] = self.p["u_start"]
        return self._y

    def step(self, t_s, h_s, u):
        p = self.p
        if u[2] < 0.5:
            self.state["I"] = p["u_start"] - p["u0"]
            self._y[0] = p["u_off"]
            return self._y
        e = p["direction"] * (u[1] - u[0])
        I = self.state["I"]
        I_new = I + p["kp"] * e * h_s / p["ti_s"]
        v = p["u0"] + p["kp"] * e + I_new
        # conditional integration: do not integrate further into saturation
        if (v > p["u_max"] and I_new > I) or (v < p["u_min"] and I_new < I):
            I_new = I
            v = p["u0"] + p["kp"] * e + I_new
        self.state["I"] = I_new
        self._y[0] = min(max(v, p["u_min"]), p["u_max"])
        return self._y


class Hysteresis(Block):
    """On/off switch with hysteresis and minimum on/off times.

    Switches on when x rises above on_above, off when it falls below off_below (off_below < on_above for
    a 'heat available' signal; give on_above < off_below for a 'too cold, heat' signal: then it switches on
    below on_above and off above off_below). A switch waits until the current state has lasted min_on_s /
    min_off_s. ``enable`` < 0.5 forces off (still respecting min_on_s).
    """

    DESCRIPTION = "on/off with hysteresis and minimum on/off times"
    INPUTS = ("x", "enable")
    REQUIRED = ("x",)
    OUTPUTS = ("on",)
    PARAMS = (
        Param("on_above", None, "switch-on threshold"),
        Param("off_below", None, "switch-off threshold"),
        Param("min_on_s", 0.0, "minimum on time, s", 0.0),
        Param("min_off_s", 0.0, "minimum off time, s", 0.0),
        Param("initial_on", 0.0, "initial state (0 or 1)", 0.0, 1.0),
    )

    def setup(self, t_s):
        self.state = {"on": float(self.p["initial_on"] >= 0.5), "since_s": t_s - 1e12}
        self._y[0] = self.state["on"]
        return self._y

    def step(self, t_s, h_s, u):
        p, s = self.p, self.state
        x, enabled = u[0], u[1] >= 0.5
        rising = p["on_above"] >= p["off_below"]
        want_on = (x > p["on_above"]) if rising else (x < p["on_above"])
        want_off = (x < p["off_below"]) if rising else (x > p["off_below"])
        held = t_s - s["since_s"]
        if s["on"] >= 0.5:
            if (want_off or not enabled) and held >= p["min_on_s"]:
                s["on"], s["since_s"] = 0.0, t_s
        elif want_on and enabled and held >= p["min_off_s"]:
            s["on"], s["since_s"] = 1.0, t_s
        self._y[0] = s["on"]
        return self._y


class Linear(Block):
    """y = k1*u1 + k2*u2 + k3*u3 + b, clipped to [y_min, y_max]: sums, gains, offsets."""

    DESCRIPTION = "weighted sum with offset and limits"
    INPUTS = ("u1", "u2", "u3")
    REQUIRED = ("u1",)
    OUTPUTS = ("y",)
    PARAMS = (Param("k1", 1.0, "weight of u1"), Param("k2", 0.0, "weight of u2"), Param("k3", 0.0, "weight of u3"),
              Param("b", 0.0, "offset"), Param("y_min", -math.inf, "lower limit"), Param("y_max", math.inf, "upper limit"))

    def step(self, t_s, h_s, u):
        p = self.p
        self._y[0] = min(max(p["k1"] * u[0] + p["k2"] * u[1] + p["k3"] * u[2] + p["b"], p["y_min"]), p["y_max"])
        return self._y


class Product(Block):
    """y = u1 * u2 (e.g. a speed command gated by an on/off signal)."""

    DESCRIPTION = "product of two signals"
    INPUTS = ("u1", "u2")
    REQUIRED = ("u1", "u2")
    OUTPUTS = ("y",)

    def step(self, t_s, h_s, u):
        self._y[0] = u[0] * u[1]
        return self._y


class FlowForHeat(Block):
    """Mass flow that carries a heat rate between two temperatures: mdot = Q / (cp * (T_hot - T_cold)).

    cp = 4186 J/(kg K) (within 0.5 % of water's between 20 and 80 C: this block only sets a flow command).
    The temperature difference is floored at dT_min_K; the flow is clipped to [mdot_min, mdot_max].
    """

    DESCRIPTION = "flow command for a heat rate and a temperature difference"
    INPUTS = ("Q_W", "T_hot_K", "T_cold_K")
    REQUIRED = ("Q_W", "T_hot_K", "T_cold_K")
    OUTPUTS = ("mdot_kg_s",)
    PARAMS = (Param("dT_min_K", 5.0, "smallest temperature difference used", 0.1),
              Param("mdot_min_kg_s", 0.0, "minimum flow", 0.0), Param("mdot_max_kg_s", math.inf, "maximum flow", 0.0))

    def step(self, t_s, h_s, u):
        p = self.p
        dT = max(u[1] - u[2], p["dT_min_K"])
        self._y[0] = min(max(max(u[0], 0.0) / (4186.0 * dT), p["mdot_min_kg_s"]), p["mdot_max_kg_s"])
        return self._y


class Throttle(Block):
    """Thermal feedback: IT power is throttled when the coolant supply is too warm.

    Below T_limit_K the full demand runs; between T_limit_K and T_max_K the power falls linearly to
    f_min of the demand (GPU clocks drop); above T_max_K it stays at f_min. Outputs the power drawn and the
    power lost to throttling (the work deferred).
    """

    DESCRIPTION = "IT power throttled by coolant supply temperature"
    INPUTS = ("P_demand_W", "T_coolant_K")
    REQUIRED = ("P_demand_W", "T_coolant_K")
    OUTPUTS = ("P_W", "P_throttled_W", "E_J", "E_throttled_J")
    PARAMS = (Param("T_limit_K", 318.15, "coolant supply temperature where throttling begins", 273.15, 400),
              Param("T_max_K", 328.15, "temperature of deepest throttling", 273.15, 400),
              Param("f_min", 0.3, "power fraction at deepest throttling", 0.0, 1.0))

    def setup(self, t_s):
        self._y[:] = 0.0
        return self._y

    def step(self, t_s, h_s, u):
        p = self.p
        x = (u[1] - p["T_limit_K"]) / max(p["T_max_K"] - p["T_limit_K"], 1e-9)
        f = 1.0 - (1.0 - p["f_min"]) * min(max(x, 0.0), 1.0)
        P = max(u[0], 0.0) * f
        self._y[0] = P
        self._y[1] = max(u[0], 0.0) - P
        self._y[2] += P * h_s
        self._y[3] += self._y[1] * h_s
        return self._y


BLOCKS: dict[str, type[Block]] = {c.__name__: c for c in (PI, Hysteresis, Linear, Product, FlowForHeat, Throttle)}
