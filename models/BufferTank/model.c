/* BufferTank: stratified hot-water buffer tank in n equal-mass layers (see README.md for the equations).
 *
 * Layer 1 is the top. The charge side enters the top layer and leaves the bottom layer; the discharge side
 * enters the bottom layer and leaves the top layer; the net flow between layers follows from mass balance.
 * Each communication step is split into sub-steps; each sub-step solves advection, conduction and heat loss
 * together with the trapezoidal rule (Crank-Nicolson; backward Euler where the sub-step cap would make the
 * trapezoidal rule non-monotone): one tridiagonal system in the enthalpy change of each layer. Then inverted
 * layers (colder water above warmer) are mixed at constant energy. The state is the specific enthalpy of each
 * layer, so the energy balance closes to rounding.
 * Sign convention: Q_charge_W and E_charge_J are heat into the tank, Q_discharge_W, E_discharge_J, Q_loss_W
 * and E_loss_J heat out of it, E_stored_J heat stored since the start.
 */
#include "water_props.h"

#define N_MAX 32              /* layers the model description provides outputs for */
#define COURANT_MAX 0.25      /* largest (through-flow + conductances) * dt / layer capacity of a sub-step */
#define N_SUB_MAX 20000       /* most sub-steps per communication step */

typedef struct {
    int n;                    /* layers in use */
    double m_layer_kg;        /* mass of each layer (equal, constant) */
    double ua_share[N_MAX];   /* share of UA_W_K of each layer: its inner surface over the whole inner surface */
    double G_cond_W_K;        /* conductance between adjacent layers, k_eff * A_cross / dz */
    double h[N_MAX];          /* specific enthalpy of each layer, J/kg (water_h scale) */
    double T[N_MAX];          /* temperature of each layer, water_T_from_h(h) */
    double h0[N_MAX];         /* enthalpy at the start (after mixing any initial inversion) */
} ModelState;

#include "model.h"

_Static_assert(VR_T_layer_K_32 == VR_T_layer_K_1 + N_MAX - 1, "T_layer_K[1..N_MAX] need consecutive value references");

/* Mixes every run of inverted layers (mean enthalpy of an upper run below that of the run beneath it) into
 * one layer of equal enthalpy, conserving energy: the pool-adjacent-violators algorithm, whose result is the
 * non-increasing (top to bottom) profile reached by repeated pairwise mixing. */
static void mix_inversions(ModelInstance *comp) {
    const int n = M.n;
    double sum[N_MAX];
    int cnt[N_MAX];
    int nb = 0;
    for (int i = 0; i < n; i++) {
        sum[nb] = M.h[i];
        cnt[nb] = 1;
        nb++;
        while (nb > 1 && sum[nb - 2] * cnt[nb - 1] < sum[nb - 1] * cnt[nb - 2]) {
            sum[nb - 2] += sum[nb - 1];
            cnt[nb - 2] += cnt[nb - 1];
            nb--;
        }
    }
    if (nb == n) return;
    for (int b = 0, i = 0; b < nb; i += cnt[b], b++) {
        if (cnt[b] == 1) continue;
        const double hm = sum[b] / cnt[b];
        double Tg = 0.0;
        for (int k = 0; k < cnt[b]; k++) Tg += M.T[i + k];
        const double Tm = water_T_from_h_near(hm, Tg / cnt[b]);
        for (int k = 0; k < cnt[b]; k++) { M.h[i + k] = hm; M.T[i + k] = Tm; }
    }
}

static void set_outputs(ModelInstance *comp) {
    const int n = M.n;
    double hsum = 0.0, Tsum = 0.0, dE = 0.0;
    for (int i = 0; i < n; i++) {
        hsum += M.h[i];
        Tsum += M.T[i];
        dE += M.h[i] - M.h0[i];
    }
    V(T_top_K) = M.T[0];
    V(T_bottom_K) = M.T[n - 1];
    V(T_mean_K) = water_T_from_h_near(hsum / n, Tsum / n);
    V(E_stored_J) = M.m_layer_kg * dE;
    V(m_water_kg) = M.m_layer_kg * n;
    double *T_layer = &V(T_layer_K_1);
    for (int i = 0; i < N_MAX; i++) T_layer[i] = M.T[i < n ? i : n - 1];
}

/* Heat flows at the current state and inputs (for h_s = 0 and at initialization). */
static void set_instant_flows(ModelInstance *comp) {
    const int n = M.n;
    double loss = 0.0;
    for (int i = 0; i < n; i++) loss += V(UA_W_K) * M.ua_share[i] * (M.T[i] - V(T_amb_K));
    V(Q_charge_W) = V(mdot_charge_kg_s) * (water_h(V(T_charge_in_K)) - M.h[n - 1]);
    V(Q_discharge_W) = V(mdot_discharge_kg_s) * (M.h[0] - water_h(V(T_discharge_in_K)));
    V(Q_loss_W) = loss;
}

int model_init(ModelInstance *comp) {
    const int n = (int)V(n_layers);
    if (n < 1 || n > N_MAX || (double)n != V(n_layers)) {
        model_log_error(comp, "n_layers = %g: expected an integer in 1..%d", V(n_layers), N_MAX);
        return MODEL_ERROR;
    }
    const double vol = V(V_m3), height = V(H_m);
    if (!(vol > 0.0) || !(height > 0.0)) {
        model_log_error(comp, "V_m3 = %g and H_m = %g must both be > 0", vol, height);
        return MODEL_ERROR;
    }
    M.n = n;
    const double A_cross = vol / height;                        /* m2 */
    const double D = sqrt(4.0 * A_cross / M_PI);                /* m */
    const double dz = height / n;
    const double A_total = M_PI * D * height + 2.0 * A_cross;   /* inner surface: side, top and bottom */
    for (int i = 0; i < N_MAX; i++) M.ua_share[i] = 0.0;
    for (int i = 0; i < n; i++) {
        double A = M_PI * D * dz;
        if (i == 0) A += A_cross;
        if (i == n - 1) A += A_cross;
        M.ua_share[i] = A / A_total;
    }
    M.G_cond_W_K = V(k_eff_W_mK) * A_cross / dz;

    const double T_top = V(T_top_start_K), T_bot = V(T_bottom_start_K);
    double mass = 0.0;
    for (int i = 0; i < N_MAX; i++) M.h[i] = M.T[i] = M.h0[i] = 0.0;
    for (int i = 0; i < n; i++) {
        const double T = n == 1 ? 0.5 * (T_top + T_bot) : T_top + (T_bot - T_top) * i / (n - 1);
        M.T[i] = T;
        M.h[i] = water_h(T);
        mass += water_rho(T) * vol / n;
    }
    M.m_layer_kg = mass / n;
    mix_inversions(comp);
    for (int i = 0; i < n; i++) M.h0[i] = M.h[i];

    set_outputs(comp);
    set_instant_flows(comp);
    V(E_charge_J) = V(E_discharge_J) = V(E_loss_J) = 0.0;
    return MODEL_OK;
}

/* One sub-step of length dt for advection, conduction and loss with the theta method (theta = 1/2: trapezoidal,
 * theta = 1: backward Euler); adds the energies that crossed the boundary during it to e[0] (charge in),
 * e[1] (discharge out), e[2] (loss). */
static void substep(ModelInstance *comp, double dt, double theta, double mc, double hc, double md, double hd,
                    double T_amb, double UA, const double *h_out_fixed, double e[3]) {
    const int n = M.n;
    const double G = M.G_cond_W_K * theta, net = mc - md, cap = M.m_layer_kg / dt;
    double lo[N_MAX], di[N_MAX], up[N_MAX], rhs[N_MAX], inv_cp[N_MAX], y[N_MAX];
    /* Rows: (cap - theta J) y = F, F = net heat flow into the layer at the start of the sub-step (W),
     * J = dF/dy, y = enthalpy change of the layer (J/kg); temperatures linearized as T + y / cp(T).
     * The matrix entries below carry the factor theta; the right-hand side F does not. */
    for (int i = 0; i < n; i++) {
        inv_cp[i] = 1.0 / water_cp(M.T[i]);
        const double UAi = UA * M.ua_share[i];
        lo[i] = up[i] = 0.0;
        di[i] = cap + theta * UAi * inv_cp[i];
        rhs[i] = -UAi * (M.T[i] - T_amb);
    }
    /* charge in at the top, discharge out at the top; discharge in at the bottom, charge out at the bottom.
     * With h_out_fixed (port_coupling = 1) the outflows carry the enthalpies the outlets had at the start of the
     * communication step (explicit): what the master passed on as T_top_K / T_bottom_K. */
    if (h_out_fixed) {
        rhs[0] += mc * hc - md * h_out_fixed[0];
        rhs[n - 1] += md * hd - mc * h_out_fixed[1];
    } else {
        rhs[0] += mc * hc - md * M.h[0];
        di[0] += theta * md;
        rhs[n - 1] += md * hd - mc * M.h[n - 1];
        di[n - 1] += theta * mc;
    }
    for (int j = 0; j + 1 < n; j++) {
        /* downward enthalpy flow across the interface below layer j, upwind */
        if (net > 0.0) {
            const double D = net * M.h[j];
            rhs[j] -= D; rhs[j + 1] += D;
            di[j] += theta * net; lo[j + 1] -= theta * net;
        } else if (net < 0.0) {
            const double q = -net;                          /* upward mass flow */
            const double D = net * M.h[j + 1];
            rhs[j] -= D; rhs[j + 1] += D;
            up[j] -= theta * q; di[j + 1] += theta * q;
        }
        /* conduction from layer j down to layer j + 1 */
        const double C = M.G_cond_W_K * (M.T[j] - M.T[j + 1]);
        rhs[j] -= C; rhs[j + 1] += C;
        di[j] += G * inv_cp[j]; up[j] -= G * inv_cp[j + 1];
        lo[j + 1] -= G * inv_cp[j]; di[j + 1] += G * inv_cp[j + 1];
    }
    /* Thomas algorithm: the matrix is a column-diagonally-dominant M-matrix, no pivoting needed */
    for (int i = 1; i < n; i++) {
        const double w = lo[i] / di[i - 1];
        di[i] -= w * up[i - 1];
        rhs[i] -= w * rhs[i - 1];
    }
    y[n - 1] = rhs[n - 1] / di[n - 1];
    for (int i = n - 2; i >= 0; i--) y[i] = (rhs[i] - up[i] * y[i + 1]) / di[i];

    /* boundary flows at the theta-weighted state: exactly the ones the solved equations used */
    double loss = 0.0;
    for (int i = 0; i < n; i++) loss += UA * M.ua_share[i] * (M.T[i] + theta * y[i] * inv_cp[i] - T_amb);
    e[0] += dt * mc * (hc - (h_out_fixed ? h_out_fixed[1] : M.h[n - 1] + theta * y[n - 1]));
    e[1] += dt * md * ((h_out_fixed ? h_out_fixed[0] : M.h[0] + theta * y[0]) - hd);
    e[2] += dt * loss;
    for (int i = 0; i < n; i++) {
        const double T_lin = M.T[i] + y[i] * inv_cp[i];
        M.h[i] += y[i];
        M.T[i] = water_T_from_h_near(M.h[i], T_lin);
    }
    mix_inversions(comp);
}

int model_step(ModelInstance *comp, double t_s, double h_s) {
    (void)t_s;
    const int n = M.n;
    const double mc = V(mdot_charge_kg_s), md = V(mdot_discharge_kg_s), T_amb = V(T_amb_K), UA = V(UA_W_K);
    if (h_s > 0.0) {
        const double hc = water_h(V(T_charge_in_K)), hd = water_h(V(T_discharge_in_K));
        /* sub-steps: every layer's a = (through-flow + conductances) * dt / capacity at most COURANT_MAX */
        const double m_through = mc > md ? mc : md;
        double rate = 0.0;                                      /* 1/s */
        for (int i = 0; i < n; i++) {
            const double G_i = (i > 0 ? M.G_cond_W_K : 0.0) + (i + 1 < n ? M.G_cond_W_K : 0.0);
            const double r = (m_through + (G_i + UA * M.ua_share[i]) / water_cp(M.T[i])) / M.m_layer_kg;
            if (r > rate) rate = r;
        }
        const double want = h_s * rate / COURANT_MAX;
        const int n_sub = want >= N_SUB_MAX ? N_SUB_MAX : (want > 1.0 ? (int)ceil(want) : 1);
        const double dt = h_s / n_sub;
        /* the trapezoidal rule keeps every explicit coefficient 1 - a/2 >= 0 (monotone, no undershoot) for
         * a <= 2; a <= 1 is asked for margin. Only when N_SUB_MAX caps the sub-steps is a larger: then
         * backward Euler, monotone at any a. */
        const double theta = dt * rate <= 1.0 ? 0.5 : 1.0;
        double e[3] = {0.0, 0.0, 0.0};
        const double h_out[2] = {M.h[0], M.h[n - 1]};        /* the outlets as the master saw them */
        const double *fixed = (int)V(port_coupling) == 1 ? h_out : NULL;
        if (fixed && m_through * h_s > M.m_layer_kg) {
            /* more than a layer's water leaving at a fixed enthalpy would undershoot without bound */
            model_log_error(comp, "port_coupling = 1: %g kg leave in one step of %g s, more than a layer holds "
                            "(%g kg); use shorter steps, fewer layers or port_coupling = 0", m_through * h_s, h_s,
                            M.m_layer_kg);
            return MODEL_ERROR;
        }
        for (int k = 0; k < n_sub; k++) substep(comp, dt, theta, mc, hc, md, hd, T_amb, UA, fixed, e);
        V(E_charge_J) += e[0];
        V(E_discharge_J) += e[1];
        V(E_loss_J) += e[2];
        V(Q_charge_W) = e[0] / h_s;
        V(Q_discharge_W) = e[1] / h_s;
        V(Q_loss_W) = e[2] / h_s;
        set_outputs(comp);
    } else {
        set_outputs(comp);
        set_instant_flows(comp);
    }
    return MODEL_OK;
}
