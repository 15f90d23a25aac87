/* RackLoop: liquid-cooled GPU racks as one well-mixed thermal node (see README.md for the equations).
 *
 * A fraction f_liquid of the IT power enters the coolant through the cold plates; the rest goes to room air.
 * The node (heat capacity C_J_K) is flushed by the coolant flow; the update is the exact solution for inputs
 * held over the step, written without cancellation so that it is exact down to zero flow: stable and free of
 * undershoot at any step. If the node would pass T_max_K (a pump trip), the GPUs shut down as far as needed to
 * hold it there (thermal protection): the IT power not drawn is booked as E_shed_J.
 * Sign convention: every Q and E output is positive in the direction its name says.
 */
#include "water_props.h"

typedef struct {
    double T_K;        /* node (= outlet) temperature */
} ModelState;

#include "model.h"

/* phi1(a) = (1 - e^-a) / a and phi2(a) = (a - 1 + e^-a) / a^2, by their series where the closed forms cancel. */
static void phis(double a, double *phi1, double *phi2) {
    if (a < 1e-3) {
        *phi1 = 1.0 - a / 2.0 + a * a / 6.0 - a * a * a / 24.0;
        *phi2 = 0.5 - a / 6.0 + a * a / 24.0 - a * a * a / 120.0;
    } else {
        const double e = -expm1(-a);                 /* 1 - e^-a */
        *phi1 = e / a;
        *phi2 = (a - e) / (a * a);
    }
}

int model_init(ModelInstance *comp) {
    if (V(T_start_K) > V(T_max_K)) {
        model_log_error(comp, "T_start_K = %g K is above T_max_K = %g K", V(T_start_K), V(T_max_K));
        return MODEL_ERROR;
    }
    M.T_K = V(T_start_K);
    V(T_out_K) = V(T_out_mean_K) = M.T_K;
    V(Q_liquid_W) = V(f_liquid) * V(P_IT_W);
    V(Q_air_W) = V(P_IT_W) - V(Q_liquid_W);
    V(P_IT_drawn_W) = V(P_IT_W);
    V(Q_coolant_W) = 0.0;
    V(overtemp) = 0.0;
    V(E_IT_J) = V(E_liquid_J) = V(E_air_J) = V(E_coolant_J) = V(E_stored_J) = V(E_shed_J) = 0.0;
    return MODEL_OK;
}

int model_step(ModelInstance *comp, double t_s, double h_s) {
    const double P = V(P_IT_W), f = V(f_liquid), C = V(C_J_K), T_in = V(T_in_K), mdot = V(mdot_kg_s);
    const double T_max = V(T_max_K);
    const double Q = f * P;                         /* heat into the liquid while the GPUs run */
    const double T0 = M.T_K;
    /* cp frozen over the step at the mean of the inlet and the node temperature */
    const double G = mdot * water_cp(0.5 * (T_in + T0));   /* W/K */
    const double x0 = T0 - T_in, x_max = T_max - T_in;
    /* the time t1 the node runs freely: the whole step, or until it reaches T_max */
    double t1 = h_s, phi1, phi2;
    phis(h_s * G / C, &phi1, &phi2);
    const double x_free = x0 + (Q - G * x0) * h_s * phi1 / C;
    if (x_free > x_max) {
        if (x0 >= x_max) {
            t1 = 0.0;
        } else {                                    /* C dx/dt = Q - G x reaches x_max at t1 (log1p form: exact at G = 0) */
            const double u = G * (x_max - x0) / (Q - G * x_max);
            t1 = C * (x_max - x0) / (Q - G * x_max) * (u > 1e-12 ? log1p(u) / u : 1.0 - u / 2.0);
            if (t1 > h_s) t1 = h_s;
        }
        phis(t1 * G / C, &phi1, &phi2);
    }
    double x1 = t1 < h_s ? x_max : x_free;
    double int_x = t1 > 0.0 ? x0 * t1 * phi1 + Q * t1 * t1 * phi2 / C : 0.0;   /* integral of (T - T_in) dt */
    double E_liq = Q * t1, E_it = P * t1;
    if (t1 < h_s) {                                 /* held at T_max: the GPUs draw what the flow can carry away */
        const double Q_hold = G * x_max > 0.0 ? G * x_max : 0.0;
        const double P_hold = f > 0.0 ? Q_hold / f : P;
        int_x += x_max * (h_s - t1);
        E_liq += Q_hold * (h_s - t1);
        E_it += (P_hold < P ? P_hold : P) * (h_s - t1);
        V(E_shed_J) += (P > P_hold ? P - P_hold : 0.0) * (h_s - t1);
    }
    M.T_K = T_in + x1;
    V(T_out_K) = M.T_K;
    V(overtemp) = t1 < h_s ? 1.0 : 0.0;
    const double E_cool = G * int_x;
    V(E_IT_J) += E_it;
    V(E_liquid_J) += E_liq;
    V(E_air_J) += E_it - E_liq;
    V(E_coolant_J) += E_cool;
    V(E_stored_J) = C * (M.T_K - V(T_start_K));
    if (h_s > 0.0) {
        V(T_out_mean_K) = G > 0.0 ? T_in + int_x / h_s : M.T_K;   /* flow-weighted mean outlet (node at zero flow) */
        V(Q_coolant_W) = E_cool / h_s;
        V(Q_liquid_W) = E_liq / h_s;
        V(Q_air_W) = (E_it - E_liq) / h_s;
        V(P_IT_drawn_W) = E_it / h_s;
    } else {
        V(T_out_mean_K) = M.T_K;
        V(Q_coolant_W) = G * x1;
        V(Q_liquid_W) = M.T_K < T_max ? Q : (G * x_max < Q ? G * x_max : Q);
        V(Q_air_W) = (1.0 - f) * P;
        V(P_IT_drawn_W) = P;
    }
    (void)t_s;
    return MODEL_OK;
}
