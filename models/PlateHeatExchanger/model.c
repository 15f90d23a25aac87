/* PlateHeatExchanger: counterflow plate heat exchanger, epsilon-NTU (see README.md for the equations).
 *
 * The plate pack is quasi-steady: its heat duty follows the inlets within the step (its time constant is
 * seconds). UA follows the flows through the two film resistances and degrades with the fouling input.
 * Optionally each outlet passes a well-mixed hold-up volume, updated exactly in enthalpy, so the outlets lag.
 * Energies are written in enthalpy (water_h), so in = out + stored closes to rounding.
 * Sign convention: Q_W and E_J are positive from the hot side to the cold side.
 */
#include "water_props.h"
#include "holdup.h"

typedef struct {
    double h_hot_J_kg;    /* specific enthalpy of the hot-side hold-up (used when m_hold_hot_kg > 0) */
    double h_cold_J_kg;   /* same, cold side */
} ModelState;

#include "model.h"

/* Mean cp between two temperatures, (h(a) - h(b)) / (a - b): with it, T_out = T_in - Q / C holds exactly
 * in enthalpy. Below 1 mK the difference quotient loses digits and the midpoint cp is as good. */
static double cp_mean(double Ta, double Tb) {
    if (fabs(Ta - Tb) < 1e-3) return water_cp(0.5 * (Ta + Tb));
    return (water_h(Ta) - water_h(Tb)) / (Ta - Tb);
}

/* Counterflow effectiveness, written with expm1 so that it stays accurate as Cr -> 1 (where the textbook
 * form is 0/0); at NTU (1 - Cr) below 1e-12 the Cr = 1 limit is exact to that order. */
static double eps_counterflow(double ntu, double cr) {
    const double x = ntu * (1.0 - cr);
    if (x < 1e-12) return ntu / (1.0 + ntu);
    const double a = -expm1(-x);                 /* 1 - exp(-x) */
    return a / (a + (1.0 - cr) * exp(-x));        /* = a / (1 - Cr exp(-x)) */
}

/* 1/UA = R_hot + R_cold + R_f/A; each film resistance scales as (mdot_nom / mdot)^n from its nominal share.
 * A side with a zero share (f_R_hot = 0 or 1) has no film resistance whatever its flow. */
static double ua_now(ModelInstance *comp, double mh, double mc) {
    if (mh <= 0.0 || mc <= 0.0) return 0.0;
    const double R_nom = 1.0 / V(UA_nom_W_K), f = V(f_R_hot), n = V(n_flow);
    const double R_hot = f > 0.0 ? f * R_nom * pow(V(mdot_hot_nom_kg_s) / mh, n) : 0.0;
    const double R_cold = f < 1.0 ? (1.0 - f) * R_nom * pow(V(mdot_cold_nom_kg_s) / mc, n) : 0.0;
    const double R = R_hot + R_cold + V(R_f_m2K_W) / V(A_m2);
    return R > 0.0 ? 1.0 / R : 0.0;   /* R = inf at a vanishing flow: UA = 0 */
}

typedef struct { double Q, UA, ntu, eps, h_hot_out, h_cold_out; } Core;

/* The plate pack for the present inputs. The capacity rates use the mean cp over each side's own
 * temperature change, found by fixed-point iteration (cp varies by ~0.1 % over the range: it converges
 * to 1e-12 K in a few passes). */
static Core core(ModelInstance *comp) {
    const double Th = V(T_hot_in_K), Tc = V(T_cold_in_K), mh = V(mdot_hot_kg_s), mc = V(mdot_cold_kg_s);
    Core k = {0.0, ua_now(comp, mh, mc), 0.0, 0.0, water_h(Th), water_h(Tc)};
    if (mh <= 0.0 || mc <= 0.0) return k;        /* a stagnant side exchanges nothing; outlets = inlets */
    double Tho = Th, Tco = Tc;
    for (int i = 0; i < 50; i++) {
        const double Ch = mh * cp_mean(Th, Tho), Cc = mc * cp_mean(Tc, Tco);
        const double Cmin = fmin(Ch, Cc), Cmax = fmax(Ch, Cc);
        k.ntu = k.UA / Cmin;
        k.eps = eps_counterflow(k.ntu, Cmin / Cmax);
        k.Q = k.eps * Cmin * (Th - Tc);
        const double Tho1 = Th - k.Q / Ch, Tco1 = Tc + k.Q / Cc;
        const double change = fmax(fabs(Tho1 - Tho), fabs(Tco1 - Tco));
        Tho = Tho1;
        Tco = Tco1;
        if (change < 1e-12) break;
    }
    /* the outlets in enthalpy, so that the balance closes whatever cp was used for the capacity rates */
    k.h_hot_out -= k.Q / mh;
    k.h_cold_out += k.Q / mc;
    return k;
}

static void set_outputs(ModelInstance *comp, const Core *k) {
    const double mh_hold = V(m_hold_hot_kg), mc_hold = V(m_hold_cold_kg);
    V(T_hot_out_K) = water_T_from_h(mh_hold > 0.0 ? M.h_hot_J_kg : k->h_hot_out);
    V(T_cold_out_K) = water_T_from_h(mc_hold > 0.0 ? M.h_cold_J_kg : k->h_cold_out);
    V(Q_W) = k->Q;
    V(UA_W_K) = k->UA;
    V(NTU) = k->ntu;
    V(epsilon) = k->eps;
    V(E_stored_hot_J) = mh_hold * (M.h_hot_J_kg - water_h(V(T_start_hot_K)));
    V(E_stored_cold_J) = mc_hold * (M.h_cold_J_kg - water_h(V(T_start_cold_K)));
}

int model_init(ModelInstance *comp) {
    M.h_hot_J_kg = water_h(V(T_start_hot_K));
    M.h_cold_J_kg = water_h(V(T_start_cold_K));
    V(E_J) = V(E_hot_in_J) = V(E_hot_out_J) = V(E_cold_in_J) = V(E_cold_out_J) = 0.0;
    const Core k = core(comp);
    set_outputs(comp, &k);
    return MODEL_OK;
}

int model_step(ModelInstance *comp, double t_s, double h_s) {
    const double mh = V(mdot_hot_kg_s), mc = V(mdot_cold_kg_s);
    const Core k = core(comp);
    V(E_J) += k.Q * h_s;
    V(E_hot_in_J) += mh * water_h(V(T_hot_in_K)) * h_s;
    V(E_cold_in_J) += mc * water_h(V(T_cold_in_K)) * h_s;
    V(E_hot_out_J) += holdup_step(V(m_hold_hot_kg), mh, k.h_hot_out, &M.h_hot_J_kg, h_s);
    V(E_cold_out_J) += holdup_step(V(m_hold_cold_kg), mc, k.h_cold_out, &M.h_cold_J_kg, h_s);
    set_outputs(comp, &k);
    return MODEL_OK;
}
