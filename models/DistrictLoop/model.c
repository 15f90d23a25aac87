/* DistrictLoop: a small district-heating loop fed by the data centre's plant (see README.md for the equations).
 *
 * Plant -> backup boiler -> supply main (plug flow, models/common/plugflow.h) -> N consumer substations in
 * parallel with an end-of-line bypass -> return main (plug flow) -> back to the plant. The loop mass flow is an
 * input (the plant's DH pump); the substations take the heat they can from the flow arriving, down to the
 * reset curve's return temperature plus their approach; what they cannot take is unmet demand.
 * Sign convention: every Q and E output is positive in the direction its name says; E_in_plant_J and
 * E_out_plant_J are enthalpy flows relative to 0 C, so that
 *     E_in_plant_J - E_out_plant_J + E_boiler_J = sum E_delivered_J + E_loss_J + E_stored_J.
 */


/* A coarser pipe resolution than the Pipe model's defaults (20-diameter wall segments): DH mains of ~1 km at
 * 60 s steps do not need it, and this is ~100x cheaper per step. With 100-diameter segments, sub-steps of up to
 * 8 segments and 4 exchange times, the tests' front timing (1 %) and the no-precursor check (1e-3 K) still hold. */
#define PLUGFLOW_SEG_DIAMETERS 100.0
#define PLUGFLOW_SUB_SEGMENTS 8.0
#define PLUGFLOW_EXCHANGE_DT 4.0
#include "plugflow.h"

#define N_MAX 8

typedef struct {
    PlugFlow sup;          /* supply main, plant end -> consumers */
    PlugFlow ret;          /* return main, consumers -> plant end */
    double E_stored0_J;    /* heat held by both mains at initialization */
} ModelState;

#include "model.h"

/* The per-consumer ports are read by index: their value references must be consecutive. */
_Static_assert(VR_heat_demand_W_8 - VR_heat_demand_W_1 == N_MAX - 1, "heat_demand_W[1..8] not consecutive");
_Static_assert(VR_available_frac_8 - VR_available_frac_1 == N_MAX - 1, "available_frac[1..8] not consecutive");
_Static_assert(VR_Q_delivered_W_8 - VR_Q_delivered_W_1 == N_MAX - 1, "Q_delivered_W[1..8] not consecutive");
_Static_assert(VR_E_delivered_J_8 - VR_E_delivered_J_1 == N_MAX - 1, "E_delivered_J[1..8] not consecutive");
#define VI(base, i) (comp->st.v[VR_##base##_1 + (i)])

static PlugFlowParams pipe_params(ModelInstance *comp, int supply) {
    PlugFlowParams p;
    p.L_m = supply ? V(L_supply_m) : V(L_return_m);
    p.D_i_m = supply ? V(D_supply_m) : V(D_return_m);
    p.U_W_mK = supply ? V(U_supply_W_mK) : V(U_return_W_mK);
    p.C_wall_J_mK = supply ? V(C_wall_supply_J_mK) : V(C_wall_return_J_mK);
    p.h_i_W_m2K = V(h_i_W_m2K);
    return p;
}

/* Supply-temperature reset curve (radiator characteristic), README "Reset curve". */
static void reset_curve(ModelInstance *comp, double *T_s_K, double *T_r_K) {
    const double T_room = V(T_room_K), T_sn = V(T_supply_design_K), T_rn = V(T_return_design_K);
    double q = (V(T_heat_limit_K) - V(T_outdoor_K)) / (V(T_heat_limit_K) - V(T_outdoor_design_K));
    q = fmin(fmax(q, 0.0), 1.0);
    const double mean_excess = 0.5 * (T_sn + T_rn - 2.0 * T_room) * pow(q, 1.0 / V(n_radiator));
    const double half_spread = 0.5 * (T_sn - T_rn) * q;
    *T_s_K = fmax(T_room + mean_excess + half_spread, V(T_supply_min_K));
    *T_r_K = T_room + mean_excess - half_spread;
}

static int step(ModelInstance *comp, double h_s) {
    const int n = (int)V(n_consumers);
    const double mdot = V(mdot_plant_kg_s), T_plant = V(T_plant_supply_K);
    /* below 0.5 C the water would freeze: its latent heat (not modelled) holds it there for a long time, so the
     * mains cool at most toward WATER_T_MIN_K, also in frozen ground */
    const double T_ground = fmax(V(T_ground_K), WATER_T_MIN_K);
    const PlugFlowParams ps = pipe_params(comp, 1), pr = pipe_params(comp, 0);

    double T_s_set, T_r_set;
    reset_curve(comp, &T_s_set, &T_r_set);

    /* backup boiler at the plant end: tops the supply up to the setpoint, within its capacity */
    const double h_plant = water_h(T_plant);
    const double Q_max = V(Q_boiler_max_W);
    double T_boiler = T_plant, Q_boiler = 0.0;
    if (mdot > 0.0 && T_plant < T_s_set && Q_max > 0.0) {
        T_boiler = mdot * (water_h(T_s_set) - h_plant) <= Q_max ? T_s_set : water_T_from_h(h_plant + Q_max / mdot);
        Q_boiler = mdot * (water_h(T_boiler) - h_plant);
    }

    /* supply main */
    PlugFlowStep s, r;
    plugflow_step(&M.sup, &ps, mdot, T_boiler, T_ground, h_s, &s);
    /* specific enthalpy arriving at the consumers, mean over the step (the outlet value for h_s = 0) */
    const double h_arr = (mdot > 0.0 && h_s > 0.0) ? s.E_out_J / (mdot * h_s) : water_h(s.T_out_K);

    /* substations: each cools its share of the flow from h_arr down to the return target h_ret */
    const double h_ret = water_h(T_r_set + V(dT_approach_K));
    const double dh = h_arr - h_ret;
    double Q_want = 0.0, Q_dem = 0.0;
    for (int i = 0; i < n; i++) {
        Q_dem += VI(heat_demand_W, i);
        Q_want += VI(available_frac, i) * VI(heat_demand_W, i);
    }
    const double mdot_want = dh > 0.0 ? Q_want / dh : 0.0;
    /* all substations get the same fraction of the flow they want when the loop flow is short */
    double frac = 0.0;
    if (dh > 0.0 && mdot > 0.0) frac = mdot_want <= mdot ? 1.0 : mdot / mdot_want;
    double Q_del = 0.0;
    for (int i = 0; i < N_MAX; i++) {
        const double Q = i < n ? frac * VI(available_frac, i) * VI(heat_demand_W, i) : 0.0;
        VI(Q_delivered_W, i) = Q;
        VI(E_delivered_J, i) += Q * h_s;
        Q_del += Q;
    }
    const double Q_unmet = fmax(Q_dem - Q_del, 0.0);

    /* consumer returns mixed with the bypass flow enter the return main */
    const double T_mix = mdot > 0.0 ? water_T_from_h(h_arr - Q_del / mdot) : s.T_out_mean_K;
    plugflow_step(&M.ret, &pr, mdot, T_mix, T_ground, h_s, &r);

    V(T_supply_setpoint_K) = T_s_set;
    V(T_return_setpoint_K) = T_r_set;
    V(T_supply_boiler_K) = T_boiler;
    V(T_supply_consumers_K) = s.T_out_mean_K;
    V(T_return_consumers_K) = T_mix;
    V(T_return_K) = r.T_out_mean_K;
    V(Q_unmet_W) = Q_unmet;
    V(Q_boiler_W) = Q_boiler;
    V(Q_loss_supply_W) = h_s > 0.0 ? s.E_loss_J / h_s : plugflow_loss_W(&M.sup, &ps, T_ground);
    V(Q_loss_return_W) = h_s > 0.0 ? r.E_loss_J / h_s : plugflow_loss_W(&M.ret, &pr, T_ground);
    V(mdot_demand_kg_s) = mdot_want;
    V(delay_supply_s) = s.delay_s;
    V(delay_return_s) = r.delay_s;
    V(E_unmet_J) += Q_unmet * h_s;
    V(E_boiler_J) += Q_boiler * h_s;
    V(E_loss_J) += s.E_loss_J + r.E_loss_J;
    V(E_in_plant_J) += mdot * h_plant * h_s;
    V(E_out_plant_J) += r.E_out_J;
    V(E_stored_J) = plugflow_stored_J(&M.sup, &ps) + plugflow_stored_J(&M.ret, &pr) - M.E_stored0_J;
    return MODEL_OK;
}

int model_init(ModelInstance *comp) {
    if (!(V(T_heat_limit_K) > V(T_outdoor_design_K))) {
        model_log_error(comp, "T_heat_limit_K = %g must be above T_outdoor_design_K = %g", V(T_heat_limit_K),
                        V(T_outdoor_design_K));
        return MODEL_ERROR;
    }
    if (!(V(T_supply_design_K) > V(T_return_design_K) && V(T_return_design_K) > V(T_room_K))) {
        model_log_error(comp, "the reset curve needs T_supply_design_K > T_return_design_K > T_room_K; got %g, %g, %g",
                        V(T_supply_design_K), V(T_return_design_K), V(T_room_K));
        return MODEL_ERROR;
    }
    const PlugFlowParams ps = pipe_params(comp, 1), pr = pipe_params(comp, 0);
    if (plugflow_init(&M.sup, &ps, V(T_start_supply_K)) != 0) {
        model_log_error(comp, "supply main: plug-flow pipe refused L_supply_m = %g, D_supply_m = %g",
                        ps.L_m, ps.D_i_m);
        return MODEL_ERROR;
    }
    if (plugflow_init(&M.ret, &pr, V(T_start_return_K)) != 0) {
        model_log_error(comp, "return main: plug-flow pipe refused L_return_m = %g, D_return_m = %g",
                        pr.L_m, pr.D_i_m);
        return MODEL_ERROR;
    }
    M.E_stored0_J = plugflow_stored_J(&M.sup, &ps) + plugflow_stored_J(&M.ret, &pr);
    for (int i = 0; i < N_MAX; i++) VI(E_delivered_J, i) = 0.0;
    V(E_unmet_J) = V(E_boiler_J) = V(E_loss_J) = V(E_in_plant_J) = V(E_out_plant_J) = 0.0;
    return step(comp, 0.0);
}

int model_step(ModelInstance *comp, double t_s, double h_s) {
    return step(comp, h_s);
}
