/* HeatPump: water-to-water booster heat pump (see README.md for the equations and the control logic).
 *
 * Quasi-steady: no water hold-up, the outlets follow the inlets within the step. The COP is a fixed fraction of
 * the Carnot COP between the refrigerant temperatures, which sit an approach above the condenser water outlet
 * and below the evaporator water outlet; the evaporator side is solved consistently (safeguarded Newton).
 * On top: capacity limit, minimum part load, minimum on/off times, high-pressure trip (latched), freeze
 * protection. The commands are read at the start of each step and held over it; the state only changes in
 * steps with h_s > 0 (h_s = 0 shows what the unit would do with the present inputs).
 * Sign convention: Q_cond_W is heat into the condenser water, Q_evap_W heat taken from the evaporator water,
 * P_el_W electricity into the compressor; all >= 0, and Q_cond_W = Q_evap_W + P_el_W.
 */
#include "water_props.h"

typedef struct {
    double running;       /* 1 if the compressor ran over the last step */
    double tripped;       /* 1 while the high-pressure trip is latched */
    double switched;      /* 0 until the first start or stop: both timers count as expired */
    double t_switch_s;    /* time of the last start or stop (a trip is a stop) */
    double n_starts;
} ModelState;

#include "model.h"

enum { CODE_OFF = 0, CODE_RUNNING = 1, CODE_HELD_ON = 2, CODE_HELD_OFF = 3, CODE_INHIBITED = 4, CODE_TRIPPED = 5,
       CODE_FREEZE = 6 };

typedef struct {
    double Q_cond, Q_evap, P_el, COP, T_cond_out, T_evap_out, T_cond, T_evap;
} OperatingPoint;

/* eta_C T_cond / (T_cond - T_evap), within [1, COP_max]; COP_max for a lift <= 0. *capped: a limit is active. */
static double cop_of(ModelInstance *comp, double T_cond, double T_evap, int *capped) {
    const double lift = T_cond - T_evap;
    if (lift <= 0.0) { *capped = 1; return V(COP_max); }
    const double c = V(eta_carnot) * T_cond / lift;
    if (c >= V(COP_max)) { *capped = 1; return V(COP_max); }
    if (c <= 1.0) { *capped = 1; return 1.0; }
    *capped = 0;
    return c;
}

/* Evaporator heat x -> g(x) = x - Q_cond (1 - 1/COP(x)); g is strictly increasing, its root is the solution. */
static double evap_residual(ModelInstance *comp, double Q_cond, double T_cond, double h_evap_in, double x,
                            double *dg) {
    const double mdot = V(mdot_evap_kg_s);
    const double T_out = water_T_from_h(h_evap_in - x / mdot);
    int capped;
    const double cop = cop_of(comp, T_cond, T_out - V(approach_evap_K), &capped);
    if (dg) *dg = capped ? 1.0 : 1.0 + Q_cond / (V(eta_carnot) * T_cond * mdot * water_cp(T_out));
    return x - Q_cond * (1.0 - 1.0 / cop);
}

/* Condenser heat Q_cond > 0 with both flows > 0 -> the operating point. The evaporator heat is searched in
 * [0, x_max], x_max <= Q_cond, where the caller guarantees g(x_max) >= 0. */
static OperatingPoint solve_point(ModelInstance *comp, double Q_cond, double x_max) {
    const double mc = V(mdot_cond_kg_s), me = V(mdot_evap_kg_s), a_e = V(approach_evap_K), eta = V(eta_carnot);
    const double h_ci = water_h(V(T_cond_in_K)), h_ei = water_h(V(T_evap_in_K));
    OperatingPoint p;
    p.Q_cond = Q_cond;
    p.T_cond_out = water_T_from_h(h_ci + Q_cond / mc);
    p.T_cond = p.T_cond_out + V(approach_cond_K);
    /* start: the closed form for constant cp and an uncapped COP */
    const double G = me * water_cp(V(T_evap_in_K));
    double x = Q_cond * (1.0 - (p.T_cond - V(T_evap_in_K) + a_e) / (eta * p.T_cond))
               / (1.0 + Q_cond / (eta * p.T_cond * G));
    double lo = 0.0, hi = x_max;
    if (!(x > lo && x < hi)) x = 0.5 * (lo + hi);
    for (int it = 0; it < 200; it++) {
        double dg;
        const double g = evap_residual(comp, Q_cond, p.T_cond, h_ei, x, &dg);
        if (g == 0.0) break;
        if (g < 0.0) lo = x; else hi = x;
        double xn = x - g / dg;
        if (!(xn > lo && xn < hi)) xn = 0.5 * (lo + hi);
        const double dx = fabs(xn - x);
        x = xn;
        if (dx <= 1e-13 * Q_cond || hi - lo <= 1e-13 * Q_cond) break;
    }
    int capped;
    const double T_eo = water_T_from_h(h_ei - x / me);
    p.COP = cop_of(comp, p.T_cond, T_eo - a_e, &capped);
    p.P_el = Q_cond / p.COP;
    p.Q_evap = Q_cond - p.P_el;
    p.T_evap_out = water_T_from_h(h_ei - p.Q_evap / me);
    p.T_evap = p.T_evap_out - a_e;
    return p;
}

static OperatingPoint idle_point(ModelInstance *comp) {
    OperatingPoint p = {0};
    p.T_cond_out = V(T_cond_in_K);
    p.T_evap_out = V(T_evap_in_K);
    p.T_cond = p.T_cond_out + V(approach_cond_K);
    p.T_evap = p.T_evap_out - V(approach_evap_K);
    return p;
}

/* Does Q_cond keep the evaporator water outlet at or above T_evap_out_min_K? With T_evap_out at the limit the
 * evaporator heat would be Q_lim; the actual root lies below Q_lim iff g(Q_lim) >= 0. */
static int freeze_safe(ModelInstance *comp, double Q_cond, double Q_lim) {
    if (Q_lim >= Q_cond) return 1;
    const double T_cond = water_T_from_h(water_h(V(T_cond_in_K)) + Q_cond / V(mdot_cond_kg_s)) + V(approach_cond_K);
    return evap_residual(comp, Q_cond, T_cond, water_h(V(T_evap_in_K)), Q_lim, NULL) >= 0.0;
}

/* Condenser heat wanted by the command, as a part-load ratio (before limits). In setpoint mode plr_cmd is an
 * upper limit, so that a supervisor can also bound the heat drawn from the source. */
static double plr_demand(ModelInstance *comp) {
    if ((int)V(mode) == 0) return V(plr_cmd);
    const double Q = V(mdot_cond_kg_s) * (water_h(V(T_cond_set_K)) - water_h(V(T_cond_in_K)));
    return fmin(Q / V(Q_cond_max_W), V(plr_cmd));
}

/* The control logic and the physics of one step starting at t_s. The state is changed only if commit. */
static void evaluate(ModelInstance *comp, double t_s, double h_s, int commit) {
    const int on = V(on) != 0.0;
    const int was_running = M.running != 0.0;
    int tripped = M.tripped != 0.0;
    if (tripped && !on) tripped = 0;                       /* reset by the command going off */
    const double eps_t = 1e-9 * (1.0 + fabs(t_s));         /* time comparisons robust to rounding of t_s */
    const double elapsed = M.switched != 0.0 ? t_s - M.t_switch_s : INFINITY;
    const double plr_max = V(derate);
    const int evap_flow_ok = V(mdot_evap_kg_s) >= V(mdot_evap_min_kg_s);
    const int cond_flow_ok = V(mdot_cond_kg_s) >= V(mdot_cond_min_kg_s);
    const int capacity_ok = plr_max >= V(plr_min);

    int run = 0, code = CODE_OFF;
    double plr_req = 0.0;
    if (was_running) {
        if (!on && elapsed + eps_t >= V(t_min_on_s)) code = CODE_OFF;    /* a normal stop */
        else if (!cond_flow_ok) { tripped = 1; code = CODE_TRIPPED; }
        else if (!evap_flow_ok || !capacity_ok) code = CODE_INHIBITED;
        else if (on) { run = 1; code = CODE_RUNNING; plr_req = plr_demand(comp); }
        else { run = 1; code = CODE_HELD_ON; plr_req = V(plr_min); }
    } else {
        if (!on) code = CODE_OFF;
        else if (tripped) code = CODE_TRIPPED;
        else if (elapsed + eps_t < V(t_min_off_s)) code = CODE_HELD_OFF;
        else if (!evap_flow_ok || !cond_flow_ok || !capacity_ok) code = CODE_INHIBITED;
        else { run = 1; code = CODE_RUNNING; plr_req = plr_demand(comp); }
    }

    OperatingPoint p = idle_point(comp);
    if (run) {
        const double Qmax = V(Q_cond_max_W);
        double Q = fmin(fmax(plr_req, V(plr_min)), plr_max) * Qmax;
        /* freeze protection: the largest Q_cond (bisection) whose evaporator outlet stays >= T_evap_out_min_K */
        const double Q_lim = V(mdot_evap_kg_s) * (water_h(V(T_evap_in_K)) - water_h(V(T_evap_out_min_K)));
        if (!freeze_safe(comp, Q, Q_lim)) {
            double lo = 0.0, hi = Q;
            for (int it = 0; it < 100 && hi - lo > 1e-13 * Q; it++) {
                const double mid = 0.5 * (lo + hi);
                if (freeze_safe(comp, mid, Q_lim)) lo = mid; else hi = mid;
            }
            Q = lo;
        }
        if (Q < V(plr_min) * Qmax * (1.0 - 1e-12)) { run = 0; code = CODE_FREEZE; }
        else {
            p = solve_point(comp, Q, fmin(Q, fmax(Q_lim, 0.0)));
            if (p.T_cond > V(T_cond_max_K)) { run = 0; tripped = 1; code = CODE_TRIPPED; p = idle_point(comp); }
        }
    }

    V(Q_cond_W) = p.Q_cond;
    V(Q_evap_W) = p.Q_evap;
    V(P_el_W) = p.P_el;
    V(COP) = p.COP;
    V(T_cond_out_K) = p.T_cond_out;
    V(T_evap_out_K) = p.T_evap_out;
    V(T_condensing_K) = p.T_cond;
    V(T_evaporating_K) = p.T_evap;
    V(running) = run;
    V(plr) = p.Q_cond / V(Q_cond_max_W);
    V(hp_trip) = tripped;
    V(state_code) = code;

    if (!commit) {
        V(n_starts) = M.n_starts + (run && !was_running);
        return;
    }
    if (run != was_running) {
        M.switched = 1.0;
        M.t_switch_s = t_s;
        if (run) M.n_starts += 1.0;
    }
    M.running = run;
    M.tripped = tripped;
    V(n_starts) = M.n_starts;

    const double mc = V(mdot_cond_kg_s), me = V(mdot_evap_kg_s);
    const double H_ci = mc * water_h(V(T_cond_in_K)), H_ei = me * water_h(V(T_evap_in_K));   /* W */
    V(E_cond_J) += p.Q_cond * h_s;
    V(E_evap_J) += p.Q_evap * h_s;
    V(E_el_J) += p.P_el * h_s;
    V(H_cond_in_J) += H_ci * h_s;
    V(H_cond_out_J) += (H_ci + p.Q_cond) * h_s;
    V(H_evap_in_J) += H_ei * h_s;
    V(H_evap_out_J) += (H_ei - p.Q_evap) * h_s;
}

int model_init(ModelInstance *comp) {
    if (V(T_cond_max_K) <= V(T_evap_out_min_K)) {
        model_log_error(comp, "T_cond_max_K = %g K must exceed T_evap_out_min_K = %g K", V(T_cond_max_K),
                        V(T_evap_out_min_K));
        return MODEL_ERROR;
    }
    M.running = M.tripped = M.switched = M.t_switch_s = M.n_starts = 0.0;
    V(E_cond_J) = V(E_evap_J) = V(E_el_J) = 0.0;
    V(H_cond_in_J) = V(H_cond_out_J) = V(H_evap_in_J) = V(H_evap_out_J) = 0.0;
    evaluate(comp, comp->st.time_s, 0.0, 0);
    return MODEL_OK;
}

int model_step(ModelInstance *comp, double t_s, double h_s) {
    evaluate(comp, t_s, h_s, h_s > 0.0);
    return MODEL_OK;
}
