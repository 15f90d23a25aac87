/* RackLoop: liquid-cooled GPU racks as one well-mixed thermal node (see README.md for the equations).
 *
 * A fraction f_liquid of the IT power enters the coolant through the cold plates; the rest goes to room air.
 * The node (heat capacity C_J_K) is flushed by the coolant flow; the update is the exact solution for inputs
 * held over the step, so it is stable and free of undershoot at any step and at zero flow.
 * Sign convention: every Q and E output is positive in the direction its name says.
 */
#include "water_props.h"

typedef struct {
    double T_K;        /* node (= outlet) temperature */
} ModelState;

#include "model.h"

static void set_power_outputs(ModelInstance *comp) {
    V(Q_liquid_W) = V(f_liquid) * V(P_IT_W);
    V(Q_air_W) = V(P_IT_W) - V(Q_liquid_W);
}

int model_init(ModelInstance *comp) {
    M.T_K = V(T_start_K);
    V(T_out_K) = M.T_K;
    V(T_out_mean_K) = M.T_K;
    set_power_outputs(comp);
    V(Q_coolant_W) = 0.0;
    V(E_IT_J) = V(E_liquid_J) = V(E_air_J) = V(E_coolant_J) = V(E_stored_J) = 0.0;
    return MODEL_OK;
}

int model_step(ModelInstance *comp, double t_s, double h_s) {
    const double P = V(P_IT_W), f = V(f_liquid), C = V(C_J_K), T_in = V(T_in_K), mdot = V(mdot_kg_s);
    const double Q_liq = f * P;
    const double T0 = M.T_K;
    /* cp frozen over the step at the mean of the inlet and the node temperature */
    const double cp = water_cp(0.5 * (T_in + T0));
    const double G = mdot * cp;                     /* W/K */
    double T1, int_dT;                              /* int_dT = integral of (T - T_in) dt over the step, K s */
    if (G > 0.0) {
        const double T_eq = T_in + Q_liq / G;
        const double a = h_s * G / C;               /* h / tau */
        const double decay = -expm1(-a);            /* 1 - exp(-h/tau), accurate for small a */
        T1 = T_eq + (T0 - T_eq) * (1.0 - decay);
        int_dT = (T_eq - T_in) * h_s + (T0 - T_eq) * (C / G) * decay;
    } else {
        T1 = T0 + Q_liq * h_s / C;
        int_dT = 0.0;
    }
    M.T_K = T1;
    V(T_out_K) = T1;
    set_power_outputs(comp);
    const double E_cool = G * int_dT;
    /* the flow-weighted mean outlet over the step (the node's temperature at zero flow) */
    V(T_out_mean_K) = (G > 0.0 && h_s > 0.0) ? T_in + int_dT / h_s : T1;
    V(Q_coolant_W) = h_s > 0.0 ? E_cool / h_s : G * (T1 - T_in);
    V(E_IT_J) += P * h_s;
    V(E_liquid_J) += Q_liq * h_s;
    V(E_air_J) += (P - Q_liq) * h_s;
    V(E_coolant_J) += E_cool;
    V(E_stored_J) = C * (T1 - V(T_start_K));
    return MODEL_OK;
}
