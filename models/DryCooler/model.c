/* DryCooler: water-to-air finned coil with fans (see README.md for the equations).
 *
 * The coil is quasi-steady (epsilon-NTU for cross-flow, air unmixed, water mixed): it follows its inputs
 * within the step. Air is dry and ideal at 1 atm; its mass flow is the fans' volume flow times its density,
 * so warm air carries less heat as well as giving less temperature difference. In mode 1 the fan speed is
 * found inside the step as the smallest that brings the water to T_set_K. An optional well-mixed outlet
 * volume (the water hold-up of coil and headers) is updated exactly in enthalpy.
 * Sign convention: Q_W and E_Q_J are positive from the water to the air.
 */
#include "water_props.h"
#include "holdup.h"

typedef struct {
    double h_J_kg;    /* specific enthalpy of the water hold-up (used when m_hold_kg > 0) */
} ModelState;

#include "model.h"

#define P_AIR_PA 101325.0        /* the coil is at ambient pressure; altitude is not modelled */
#define R_AIR_J_KGK 287.05       /* specific gas constant of dry air */

static double air_rho(double T_K) { return P_AIR_PA / (R_AIR_J_KGK * T_K); }

/* cp of dry air at 1 atm: a quadratic fitted to CoolProp's Air on 233..333 K (within 1e-5 relative) */
static double air_cp(double T_K) {
    const double x = (T_K - 273.15) / 100.0;
    return 1005.68 + x * (1.52 + x * 3.95);
}

/* Mean water cp between two temperatures, so that T_out = T_in - Q / C holds exactly in enthalpy. */
static double cp_mean(double Ta, double Tb) {
    if (fabs(Ta - Tb) < 1e-3) return water_cp(0.5 * (Ta + Tb));
    return (water_h(Ta) - water_h(Tb)) / (Ta - Tb);
}

/* Cross-flow effectiveness with the air unmixed (fins) and the water mixed (in the tubes); the formula
 * depends on which stream has C_min. expm1 keeps it accurate as Cr -> 0. */
static double eps_crossflow(double ntu, double C_air, double C_w) {
    if (C_air <= C_w) {                  /* C_min unmixed (air), C_max mixed (water) */
        const double cr = C_air / C_w, y = -expm1(-ntu);
        return cr > 0.0 ? -expm1(-cr * y) / cr : y;
    }
    const double cr = C_w / C_air;       /* C_min mixed (water), C_max unmixed (air) */
    return cr > 0.0 ? -expm1(expm1(-cr * ntu) / cr) : -expm1(-ntu);
}

/* 1/UA = R_air + R_water: the air film scales with the air flow (~ fan speed)^-n_air, the water film with
 * (mdot_nom / mdot)^n_water, each from its share of 1/UA_nom. */
static double ua_now(ModelInstance *comp, double speed, double mdot) {
    if (speed <= 0.0 || mdot <= 0.0) return 0.0;
    const double R_nom = 1.0 / V(UA_nom_W_K), f = V(f_R_air);
    const double R_air = f > 0.0 ? f * R_nom * pow(speed, -V(n_air)) : 0.0;
    const double R_w = f < 1.0 ? (1.0 - f) * R_nom * pow(V(mdot_nom_kg_s) / mdot, V(n_water)) : 0.0;
    const double R = R_air + R_w;
    return R > 0.0 ? 1.0 / R : 0.0;
}

typedef struct { double Q, UA, eps, mdot_air, C_air, h_out; } Coil;

/* The coil at a fan speed. The water capacity rate uses the mean cp over the water's own temperature
 * change, found by fixed-point iteration (cp varies slowly: a few passes reach 1e-12 K). */
static Coil coil(ModelInstance *comp, double speed, double mdot) {
    const double T_in = V(T_in_K), T_air = V(T_air_K);
    Coil k = {0.0, ua_now(comp, speed, mdot), 0.0, speed * V(V_air_nom_m3_s) * air_rho(T_air), 0.0, water_h(T_in)};
    k.C_air = k.mdot_air * air_cp(T_air);
    if (mdot <= 0.0 || k.C_air <= 0.0) return k;     /* no water or no air moving: no heat exchanged */
    double T_out = T_in;
    for (int i = 0; i < 50; i++) {
        const double C_w = mdot * cp_mean(T_in, T_out), C_min = fmin(C_w, k.C_air);
        k.eps = eps_crossflow(k.UA / C_min, k.C_air, C_w);
        k.Q = k.eps * C_min * (T_in - T_air);
        const double T1 = T_in - k.Q / C_w, change = fabs(T1 - T_out);
        T_out = T1;
        if (change < 1e-12) break;
    }
    k.h_out -= k.Q / mdot;
    return k;
}

static double coil_T_out(ModelInstance *comp, double speed, double unused) {
    (void)unused;
    return water_T_from_h(coil(comp, speed, V(mdot_kg_s)).h_out);
}

/* Outlet temperature after the three-way valve: a share b of the water bypasses the coil at the lowest speed. */
static double mixed_T_out(ModelInstance *comp, double speed, double b) {
    const Coil k = coil(comp, speed, (1.0 - b) * V(mdot_kg_s));
    return water_T_from_h((1.0 - b) * k.h_out + b * water_h(V(T_in_K)));
}

/* mixed_T_out with the bypass share first, for bracket_root (ctx: the fan speed) */
static double mixed_T_out_at(ModelInstance *comp, double b, double speed) { return mixed_T_out(comp, speed, b); }

/* The x in [a, b] where the monotone f(x) crosses target, to 1e-14 in x: Illinois false position, kept inside the
 * bracket, with a bisection step whenever it stalls (a few evaluations instead of ~47 of plain bisection).
 * falling = 1: f(a) > target >= f(b), the side returned is b (f <= target); falling = 0: f(a) <= target < f(b),
 * the side returned is a (f <= target). */
static double bracket_root(ModelInstance *comp, double (*f)(ModelInstance *, double, double), double ctx, double a,
                           double b, double target, int falling) {
    double fa = f(comp, a, ctx) - target, fb = f(comp, b, ctx) - target;
    int side = 0;
    for (int i = 0; i < 100 && b - a > 1e-14; i++) {
        double x = (fa != fb) ? b - fb * (b - a) / (fb - fa) : 0.5 * (a + b);
        const double w = b - a;
        if (!(x > a + 0.01 * w && x < b - 0.01 * w) || i % 8 == 7) x = 0.5 * (a + b);
        const double fx = f(comp, x, ctx) - target;
        const int x_like_a = falling ? fx > 0.0 : fx <= 0.0;
        if (x_like_a) {
            a = x; fa = fx;
            if (side == -1) fb *= 0.5;
            side = -1;
        } else {
            b = x; fb = fx;
            if (side == 1) fa *= 0.5;
            side = 1;
        }
        if (fx == 0.0) return x;
    }
    return falling ? b : a;
}

/* Mode 0: the speed given. Mode 1: the smallest speed in [speed_min, available] whose coil outlet is at or below
 * T_set (found by bracketing: Q rises monotonically with the air flow); the available speed if even that is not
 * enough; the lowest speed if even that over-cools. Fans stay off when there is nothing to cool, or when the air
 * is no colder than the water. Then, in both modes, the three-way valve bypasses the share of the water that
 * brings the mixed outlet to the floor: T_set where the lowest speed over-cools (mode 1), and T_out_min_K (frost
 * protection) always; Q falls monotonically with the coil's water flow. */
static double fan_speed(ModelInstance *comp, double *bypass) {
    const double avail = V(fan_speed_rel), T_in = V(T_in_K);
    double speed = avail, floor_K = V(T_out_min_K);
    *bypass = 0.0;
    if ((int)V(mode) == 1) {
        const double T_set = V(T_set_K);
        if (V(mdot_kg_s) <= 0.0 || T_in <= T_set || V(T_air_K) >= T_in) return 0.0;
        const double lo = fmin(V(speed_min_rel), avail), hi = avail;
        if (coil_T_out(comp, lo, 0.0) <= T_set) {
            speed = lo;
            if (T_set > floor_K) floor_K = T_set;
        } else if (coil_T_out(comp, hi, 0.0) > T_set) {
            speed = hi;
        } else {
            speed = bracket_root(comp, coil_T_out, 0.0, lo, hi, T_set, 1);
        }
    }
    if (speed > 0.0 && V(mdot_kg_s) > 0.0 && coil_T_out(comp, speed, 0.0) < floor_K)
        *bypass = T_in <= floor_K ? 1.0 : bracket_root(comp, mixed_T_out_at, speed, 0.0, 1.0, floor_K, 0);
    return speed;
}

/* The coil at the chosen speed and bypass; h_out is the mixed outlet enthalpy after the valve. */
static Coil unit(ModelInstance *comp, double speed, double bypass) {
    Coil k = coil(comp, speed, (1.0 - bypass) * V(mdot_kg_s));
    k.h_out = (1.0 - bypass) * k.h_out + bypass * water_h(V(T_in_K));
    return k;
}

static void set_outputs(ModelInstance *comp, const Coil *k, double speed, double bypass) {
    const double m = V(m_hold_kg);
    V(bypass_rel) = bypass;
    V(T_out_K) = water_T_from_h(m > 0.0 ? M.h_J_kg : k->h_out);
    V(T_air_out_K) = k->C_air > 0.0 ? V(T_air_K) + k->Q / k->C_air : V(T_air_K);
    V(Q_W) = k->Q;
    V(P_fan_W) = V(P_fan_nom_W) * speed * speed * speed;
    V(fan_speed_out_rel) = speed;
    V(mdot_air_kg_s) = k->mdot_air;
    V(UA_W_K) = k->UA;
    V(epsilon) = k->eps;
    V(E_stored_J) = m * (M.h_J_kg - water_h(V(T_start_K)));
}

int model_init(ModelInstance *comp) {
    M.h_J_kg = water_h(V(T_start_K));
    V(E_Q_J) = V(E_fan_J) = V(E_in_J) = V(E_out_J) = 0.0;
    double bypass;
    const double speed = fan_speed(comp, &bypass);
    const Coil k = unit(comp, speed, bypass);
    set_outputs(comp, &k, speed, bypass);
    return MODEL_OK;
}

int model_step(ModelInstance *comp, double t_s, double h_s) {
    double bypass;
    const double speed = fan_speed(comp, &bypass), mdot = V(mdot_kg_s);
    const Coil k = unit(comp, speed, bypass);
    V(E_Q_J) += k.Q * h_s;
    V(E_in_J) += mdot * water_h(V(T_in_K)) * h_s;
    V(E_out_J) += holdup_step(V(m_hold_kg), mdot, k.h_out, &M.h_J_kg, h_s);
    set_outputs(comp, &k, speed, bypass);
    V(E_fan_J) += V(P_fan_W) * h_s;
    return MODEL_OK;
}
