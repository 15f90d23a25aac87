/* Pipe: one district-heating pipe, plug flow with transport delay, heat loss to the surroundings and the heat
 * capacity of the pipe wall. The physics is models/common/plugflow.h (shared with DistrictLoop); the equations
 * are in README.md. Sign convention: every Q and E output is positive in the direction its name says;
 * E_in_J and E_out_J are enthalpy flows relative to 0 C, so that E_in_J = E_out_J + E_loss_J + E_stored_J.
 */
#include "plugflow.h"

typedef struct {
    PlugFlow pf;
    double E_stored0_J;    /* heat in water and wall at initialization, relative to 0 C */
} ModelState;

#include "model.h"

static double wall_capacity_J_mK(ModelInstance *comp) {
    const double D_i = V(D_i_m), D_o = D_i + 2.0 * V(s_wall_m);
    return 0.25 * PLUGFLOW_PI * (D_o * D_o - D_i * D_i) * V(rho_wall_kg_m3) * V(cp_wall_J_kgK) + V(C_extra_J_mK);
}

static PlugFlowParams params(ModelInstance *comp) {
    PlugFlowParams p = {0};
    p.L_m = V(L_m);
    p.D_i_m = V(D_i_m);
    p.U_W_mK = V(U_W_mK);
    p.C_wall_J_mK = wall_capacity_J_mK(comp);
    p.h_i_W_m2K = V(h_i_W_m2K);
    return p;
}

static void set_state_outputs(ModelInstance *comp, const PlugFlowParams *par, const PlugFlowStep *s) {
    const PlugFlow *p = &M.pf;
    V(T_out_K) = s->T_out_K;
    V(T_out_mean_K) = s->T_out_mean_K;
    V(delay_s) = s->delay_s;
    V(E_stored_J) = plugflow_stored_J(p, par) - M.E_stored0_J;
    const PlugFlowParcel *last = &p->q[p->head + p->n - 1];
    V(T_wall_out_K) = p->wall ? p->T_wall_K[0] - 0.5 * p->dT_wall_K[0] : s->T_out_K;
    V(T_wall_in_K) = p->wall ? p->T_wall_K[p->n_seg - 1] + 0.5 * p->dT_wall_K[p->n_seg - 1] : last->T_K + 0.5 * last->dT_K;
    V(h_film_W_m2K) = p->h_film_W_m2K;
    V(n_parcels) = p->n;
}

int model_init(ModelInstance *comp) {
    const PlugFlowParams par = params(comp);
    if (plugflow_init(&M.pf, &par, V(T_start_K)) != 0) {
        model_log_error(comp, "Pipe: impossible parameters (L_m = %g, D_i_m = %g, U_W_mK = %g, C_wall_J_mK = %g, "
                        "h_i_W_m2K = %g, T_start_K = %g)", par.L_m, par.D_i_m, par.U_W_mK, par.C_wall_J_mK,
                        par.h_i_W_m2K, V(T_start_K));
        return MODEL_ERROR;
    }
    M.E_stored0_J = plugflow_stored_J(&M.pf, &par);
    V(C_wall_J_mK) = par.C_wall_J_mK;
    V(M_water_kg) = M.pf.M_kg;
    V(E_in_J) = V(E_out_J) = V(E_loss_J) = 0.0;
    PlugFlowStep s;
    plugflow_step(&M.pf, &par, V(mdot_kg_s), V(T_in_K), V(T_amb_K), 0.0, &s);
    set_state_outputs(comp, &par, &s);
    V(Q_loss_W) = plugflow_loss_W(&M.pf, &par, V(T_amb_K));
    return MODEL_OK;
}

int model_step(ModelInstance *comp, double t_s, double h_s) {
    const PlugFlowParams par = params(comp);
    PlugFlowStep s;
    plugflow_step(&M.pf, &par, V(mdot_kg_s), V(T_in_K), V(T_amb_K), h_s, &s);
    V(E_in_J) += s.E_in_J;
    V(E_out_J) += s.E_out_J;
    V(E_loss_J) += s.E_loss_J;
    V(Q_loss_W) = h_s > 0.0 ? s.E_loss_J / h_s : plugflow_loss_W(&M.pf, &par, V(T_amb_K));
    set_state_outputs(comp, &par, &s);
    return MODEL_OK;
}
