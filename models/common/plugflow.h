/* plugflow.h: one district-heating pipe as plug flow with transport delay, heat loss to the surroundings and
 * the heat capacity of the pipe wall (shared by the Pipe and DistrictLoop models; the equations, the choices and
 * their validation are in models/Pipe/README.md).
 *
 * The water is a queue of parcels (mass, specific enthalpy, a linear temperature profile, age), outlet first; the
 * pipe holds a fixed water mass M = rho(T_start) * pi/4 * D_i^2 * L (incompressible plug flow). Each sub-step
 * pushes the mass mdot*dt that entered and pops the mass mdot*dt that left; the water cools toward the
 * surroundings with the exact exponential of its residence time. The wall (if C_wall_J_mK > 0) is a row of
 * segments along the length, each with a linear temperature profile; every water element exchanges heat exactly
 * with the wall element beneath it through the film coefficient (Strang splitting with the transport).
 * Every change of a parcel's enthalpy is booked, so E_in = E_out + E_loss + change of plugflow_stored_J closes to
 * rounding. Flow is >= 0 (the caller refuses reversed flow; a negative or non-finite mdot is taken as 0); zero
 * flow is a legitimate state.
 *
 * The state is plain data with fixed arrays (no pointers): a model may keep it in its ModelState. The macros
 * below may be defined before including this header to trade accuracy for speed (see the README).
 */
#ifndef TWIN_PLUGFLOW_H
#define TWIN_PLUGFLOW_H

#include <math.h>
#include <string.h>
#include "water_props.h"

#define PLUGFLOW_MAX_PARCELS 4096   /* parcel queue capacity; merge neighbours when full, conserving energy */
#ifndef PLUGFLOW_MAX_SEG
#define PLUGFLOW_MAX_SEG 1024       /* wall segments at most */
#endif
#ifndef PLUGFLOW_SEG_DIAMETERS
#define PLUGFLOW_SEG_DIAMETERS 20.0 /* target wall segment length in inner diameters (fewer, longer ones on long pipes) */
#endif
#ifndef PLUGFLOW_SUB_SEGMENTS
#define PLUGFLOW_SUB_SEGMENTS 1.0   /* largest sub-step with flow, in wall segments the water moves */
#endif
#ifndef PLUGFLOW_EXCHANGE_DT
#define PLUGFLOW_EXCHANGE_DT 0.5    /* largest sub-step with flow, as a fraction of the water's exchange time m' cp / (h_i pi D_i) */
#endif
#define PLUGFLOW_MAX_SUBSTEPS 100000
#define PLUGFLOW_PI 3.14159265358979323846

typedef struct {
    double L_m, D_i_m;          /* length, inner diameter */
    double U_W_mK;              /* heat loss per metre and kelvin to the surroundings, W/(m K) */
    double C_wall_J_mK;         /* heat capacity of the pipe wall (steel, plus insulation share) per metre, J/(m K); 0 = none */
    double h_i_W_m2K;           /* water-to-wall film coefficient (or 0 = computed inside from flow) */
} PlugFlowParams;

typedef struct {
    double m_kg;                /* mass */
    double h_J_kg;              /* specific enthalpy relative to 0 C (the state) */
    double T_K;                 /* mean temperature, water_T_from_h(h_J_kg) */
    double dT_K;                /* temperature at the upstream end minus at the downstream end (linear in mass) */
    double age_front_s;         /* time since the downstream end of the parcel entered the pipe */
    double age_back_s;          /* time since its upstream end entered (ages vary linearly in between) */
} PlugFlowParcel;

typedef struct {
    int head;                   /* index of the outlet parcel in q[] */
    int n;                      /* number of parcels, q[head] .. q[head + n - 1], outlet to inlet */
    int n_seg;                  /* wall segments (1 and unused when C_wall_J_mK = 0) */
    int wall;                   /* 1 if the wall has heat capacity */
    double M_kg;                /* water mass in the pipe */
    double h_film_W_m2K;        /* film coefficient of the last step (at the mean of inlet and outlet) */
    double T_wall_K[PLUGFLOW_MAX_SEG];   /* wall segment mean temperatures, outlet first */
    double dT_wall_K[PLUGFLOW_MAX_SEG];  /* wall temperature at a segment's upstream end minus at its downstream end */
    PlugFlowParcel q[PLUGFLOW_MAX_PARCELS];
} PlugFlow;

typedef struct { double T_out_K;       /* outlet temperature at the end of the step */
                 double T_out_mean_K;  /* mass-weighted mean outlet temperature over the step */
                 double E_in_J, E_out_J, E_loss_J;  /* enthalpy in/out and heat lost over the step */
                 double delay_s; } PlugFlowStep;    /* residence time of the water now at the outlet */

/* Dynamic viscosity of liquid water, Pa s (Vogel equation; within 1 % of IAPWS 0..100 C). */
static inline double plugflow_water_mu(double T_K) { return 2.414e-5 * pow(10.0, 247.8 / (T_K - 140.0)); }

/* Thermal conductivity of liquid water, W/(m K) (Ramires et al. 1995; within 1 % of IAPWS 0..100 C). */
static inline double plugflow_water_k(double T_K) {
    const double t = T_K / 298.15;
    return 0.6065 * (-1.48445 + 4.12292 * t - 1.63866 * t * t);
}

/* Water-to-wall film coefficient, W/(m2 K): the parameter if > 0, else Gnielinski for turbulent flow and the
 * laminar fully developed Nu = 3.66 as the floor (also for standing water). */
static inline double plugflow_film_W_m2K(const PlugFlowParams *par, double mdot_kg_s, double T_K) {
    if (par->h_i_W_m2K > 0.0) return par->h_i_W_m2K;
    const double D = par->D_i_m, mu = plugflow_water_mu(T_K), k = plugflow_water_k(T_K);
    const double Re = 4.0 * mdot_kg_s / (PLUGFLOW_PI * D * mu), Pr = mu * water_cp(T_K) / k;
    double Nu = 3.66;
    if (Re > 1000.0) {
        const double f = pow(0.79 * log(Re) - 1.64, -2.0);
        const double Nu_g = (f / 8.0) * (Re - 1000.0) * Pr / (1.0 + 12.7 * sqrt(f / 8.0) * (pow(Pr, 2.0 / 3.0) - 1.0));
        if (Nu_g > Nu) Nu = Nu_g;
    }
    return Nu * k / D;
}

static inline PlugFlowParcel *plugflow_parcel(PlugFlow *p, int i) { return &p->q[p->head + i]; }

/* Set up a pipe full of water at T0_K, the wall at T0_K too. Returns 0, or -1 for impossible parameters. */
static inline int plugflow_init(PlugFlow *p, const PlugFlowParams *par, double T0_K) {
    if (!(par->L_m > 0.0) || !(par->D_i_m > 0.0) || !(par->U_W_mK >= 0.0) || !(par->C_wall_J_mK >= 0.0)
        || !(par->h_i_W_m2K >= 0.0) || !(T0_K >= WATER_T_MIN_K && T0_K <= WATER_T_MAX_K)
        || !isfinite(par->L_m) || !isfinite(par->D_i_m) || !isfinite(par->U_W_mK) || !isfinite(par->C_wall_J_mK)
        || !isfinite(par->h_i_W_m2K))
        return -1;
    memset(p, 0, sizeof *p);
    p->M_kg = water_rho(T0_K) * 0.25 * PLUGFLOW_PI * par->D_i_m * par->D_i_m * par->L_m;
    p->wall = par->C_wall_J_mK > 0.0;
    if (p->wall) {
        int n = (int)ceil(par->L_m / (PLUGFLOW_SEG_DIAMETERS * par->D_i_m));
        p->n_seg = n < 4 ? 4 : (n > PLUGFLOW_MAX_SEG ? PLUGFLOW_MAX_SEG : n);
    } else {
        p->n_seg = 1;
    }
    const double h0 = water_h(T0_K);
    p->n = p->n_seg;   /* one parcel per segment, so that no parcel spans segments at different temperatures */
    for (int i = 0; i < p->n; i++) {
        PlugFlowParcel *c = &p->q[i];
        c->m_kg = p->M_kg / p->n;
        c->h_J_kg = h0;
        c->T_K = T0_K;
    }
    for (int j = 0; j < PLUGFLOW_MAX_SEG; j++) p->T_wall_K[j] = T0_K;
    p->h_film_W_m2K = plugflow_film_W_m2K(par, 0.0, T0_K);
    return 0;
}

/* Heat held by the water and the wall, relative to 0 C, J. */
static inline double plugflow_stored_J(const PlugFlow *p, const PlugFlowParams *par) {
    double E = 0.0;
    for (int i = 0; i < p->n; i++) E += p->q[p->head + i].m_kg * p->q[p->head + i].h_J_kg;
    if (p->wall) {
        const double C_seg = par->C_wall_J_mK * par->L_m / p->n_seg;
        for (int j = 0; j < p->n_seg; j++) E += C_seg * (p->T_wall_K[j] - 273.15);
    }
    return E;
}

/* Heat lost to the surroundings right now, W (the water at its temperatures, U' over the length each parcel fills). */
static inline double plugflow_loss_W(const PlugFlow *p, const PlugFlowParams *par, double T_amb_K) {
    double Q = 0.0;
    for (int i = 0; i < p->n; i++) Q += p->q[p->head + i].m_kg * (p->q[p->head + i].T_K - T_amb_K);
    return Q * par->U_W_mK * par->L_m / p->M_kg;
}

/* Merge the two neighbouring parcels whose mixing loses least (m1 m2 / (m1 + m2) (T1 - T2)^2), among those
 * whose joint mass stays within m_cap; energy (mass times enthalpy) is conserved. */
static inline void plugflow_merge_one(PlugFlow *p, double m_cap) {
    int best = -1;
    double best_cost = INFINITY, best_mass = INFINITY;
    int fallback = 0;
    for (int i = 0; i + 1 < p->n; i++) {
        const PlugFlowParcel *a = plugflow_parcel(p, i), *b = plugflow_parcel(p, i + 1);
        const double m = a->m_kg + b->m_kg;
        if (m < best_mass) { best_mass = m; fallback = i; }
        if (m > m_cap) continue;
        const double dT = a->T_K - b->T_K, cost = a->m_kg * b->m_kg / m * dT * dT;
        if (cost < best_cost) { best_cost = cost; best = i; }
    }
    if (best < 0) best = fallback;
    PlugFlowParcel *a = plugflow_parcel(p, best), *b = plugflow_parcel(p, best + 1);
    const double m = a->m_kg + b->m_kg;
    const double Ta0 = a->T_K - 0.5 * a->dT_K, Ta1 = a->T_K + 0.5 * a->dT_K;
    const double Tb0 = b->T_K - 0.5 * b->dT_K, Tb1 = b->T_K + 0.5 * b->dT_K;
    const double lo = fmin(fmin(Ta0, Ta1), fmin(Tb0, Tb1)), hi = fmax(fmax(Ta0, Ta1), fmax(Tb0, Tb1));
    a->h_J_kg = (a->m_kg * a->h_J_kg + b->m_kg * b->h_J_kg) / m;
    a->m_kg = m;
    a->T_K = water_T_from_h_near(a->h_J_kg, a->T_K);
    /* the profile from the downstream end of a to the upstream end of b, kept within the ends' range */
    const double half = fmax(0.0, fmin(a->T_K - lo, hi - a->T_K));
    a->dT_K = fmax(-2.0 * half, fmin(2.0 * half, Tb1 - Ta0));
    a->age_back_s = b->age_back_s;
    const int tail = p->n - (best + 2);   /* parcels after the pair */
    if (tail > 0) memmove(b, b + 1, (size_t)tail * sizeof *b);
    p->n--;
}

static inline void plugflow_push(PlugFlow *p, const PlugFlowParcel *c) {
    if (p->head + p->n >= PLUGFLOW_MAX_PARCELS) {
        if (p->head > 0) {
            memmove(&p->q[0], &p->q[p->head], (size_t)p->n * sizeof p->q[0]);
            p->head = 0;
        } else {
            plugflow_merge_one(p, p->M_kg / p->n_seg);
        }
    }
    p->q[p->head + p->n] = *c;
    p->n++;
}

/* Water and wall exchange heat over dt, element by element: each water element with the wall element beneath
 * it, exactly (the two relax toward their capacity-weighted mean with rate g (1/cp + 1/c_wall)). Water parcels
 * and wall segments carry linear profiles; a piece (parcel within segment) stays linear under the exchange and
 * the results are projected back onto one line per parcel and per segment (mean and first moment kept, ends
 * limited to the range of the pieces: no new extremes). Conservative: a piece's water gains what its wall loses. */
static inline void plugflow_exchange(PlugFlow *p, const PlugFlowParams *par, double G_W_mK, double dt,
                                     double cp) {
    const int N = p->n_seg;
    const double dm = p->M_kg / N;
    const double cw = par->C_wall_J_mK * par->L_m / p->M_kg;   /* wall heat capacity per kg of water, J/(kg K) */
    const double g = G_W_mK * par->L_m / p->M_kg;              /* film conductance per kg of water, W/(kg K) */
    const double E = exp(-dt * g * (1.0 / cp + 1.0 / cw));
    const double ke = (1.0 - E) * cw / (cp + cw), kw = (1.0 - E) * cp / (cp + cw);
    double dW[PLUGFLOW_MAX_SEG], dWm[PLUGFLOW_MAX_SEG], lo_w[PLUGFLOW_MAX_SEG], hi_w[PLUGFLOW_MAX_SEG];
    for (int j = 0; j < N; j++) { dW[j] = dWm[j] = 0.0; lo_w[j] = INFINITY; hi_w[j] = -INFINITY; }
    double c = 0.0;   /* mass between the outlet and the parcel's downstream end */
    for (int i = 0; i < p->n; i++) {
        PlugFlowParcel *q = plugflow_parcel(p, i);
        const double end = c + q->m_kg, cmid = c + 0.5 * q->m_kg, sig = q->dT_K / q->m_kg;
        double Q = 0.0, dmom = 0.0, lo = INFINITY, hi = -INFINITY;
        int j = (int)(c / dm);
        if (j > N - 1) j = N - 1;
        for (; j < N; j++) {
            const double l = fmax(c, j * dm), r = (j == N - 1) ? end : fmin(end, (j + 1) * dm);
            const double w = r - l, mid = 0.5 * (l + r), smid = (j + 0.5) * dm, om = p->dT_wall_K[j] / dm;
            if (w > 0.0) {
                const double Ae = q->T_K + sig * (mid - cmid), Be = sig * w;                /* water on the piece */
                const double Aw = p->T_wall_K[j] + om * (mid - smid), Bw = om * w;          /* wall on the piece */
                const double dAe = ke * (Aw - Ae), dBe = ke * (Bw - Be), dAw = -kw * (Aw - Ae), dBw = -kw * (Bw - Be);
                Q += w * cp * dAe;
                dmom += w * (dAe * (mid - cmid) + dBe * w / 12.0);
                dW[j] += w * dAw;
                dWm[j] += w * (dAw * (mid - smid) + dBw * w / 12.0);
                lo = fmin(lo, Ae + dAe - 0.5 * fabs(Be + dBe));
                hi = fmax(hi, Ae + dAe + 0.5 * fabs(Be + dBe));
                lo_w[j] = fmin(lo_w[j], Aw + dAw - 0.5 * fabs(Bw + dBw));
                hi_w[j] = fmax(hi_w[j], Aw + dAw + 0.5 * fabs(Bw + dBw));
            }
            if (r >= end) break;
        }
        if (Q != 0.0) {
            q->h_J_kg += Q / q->m_kg;
            q->T_K = water_T_from_h_near(q->h_J_kg, q->T_K + Q / (q->m_kg * water_cp(q->T_K)));
        }
        if (hi >= lo) {
            const double half = fmax(0.0, fmin(q->T_K - lo, hi - q->T_K));
            q->dT_K = fmax(-2.0 * half, fmin(2.0 * half, q->dT_K + 12.0 * dmom / (q->m_kg * q->m_kg)));
        }
        c = end;
    }
    for (int j = 0; j < N; j++) {
        const double W = p->T_wall_K[j] + dW[j] / dm;
        p->T_wall_K[j] = W;
        if (hi_w[j] >= lo_w[j]) {
            const double half = fmax(0.0, fmin(W - lo_w[j], hi_w[j] - W));
            p->dT_wall_K[j] = fmax(-2.0 * half, fmin(2.0 * half, p->dT_wall_K[j] + 12.0 * dWm[j] / (dm * dm)));
        }
    }
}

/* One sub-step of length dt with the flow, inlet and ambient held; adds to the step's sums. */
static inline void plugflow_substep(PlugFlow *p, const PlugFlowParams *par, double mdot, double T_in_K,
                                    double T_amb_K, double dt, double G_W_mK, double cp_x, PlugFlowStep *out,
                                    double *m_out) {
    const double k = par->U_W_mK * par->L_m / p->M_kg;   /* W/(kg K): dT/dt = -k (T - T_amb) / cp */
    /* 0. half the sub-step's exchange with the wall (Strang splitting of exchange and transport) */
    if (p->wall) plugflow_exchange(p, par, G_W_mK, 0.5 * dt, cp_x);
    /* 1. the mass mdot*dt nearest the outlet leaves; an element at mass a from the outlet leaves at a/mdot */
    double w = mdot * dt, a = 0.0;
    while (w > 0.0 && p->n > 0) {
        PlugFlowParcel *q = plugflow_parcel(p, 0);
        const double take = q->m_kg <= w * (1.0 + 1e-12) ? q->m_kg : w, u = take / q->m_kg;
        const double r = k / water_cp(q->T_K);   /* 1/s */
        const double y = take / mdot * r;         /* cooling exponent over the time this portion takes to leave */
        double g0, g1;                            /* means of exp(-y v) and v exp(-y v) over v in 0..1 */
        if (y > 1e-4) {
            g0 = -expm1(-y) / y;
            g1 = (-expm1(-y) - y * exp(-y)) / (y * y);
        } else {
            g0 = 1.0 - y / 2.0 + y * y / 6.0;
            g1 = 0.5 - y / 3.0 + y * y / 8.0;
        }
        const double T_front = q->T_K - 0.5 * q->dT_K;
        const double T_exit = T_amb_K + exp(-a / mdot * r) * ((T_front - T_amb_K) * g0 + q->dT_K * u * g1);
        const double h_exit = water_h(T_exit);
        double E_portion = q->m_kg * q->h_J_kg;   /* heat the leaving portion held at the start of the sub-step */
        if (take == q->m_kg) {
            p->head++;
            p->n--;
        } else {
            const double T_rest = T_front + q->dT_K * 0.5 * (1.0 + u);   /* mean of the rest of the profile */
            const double h_rest = water_h(T_rest);
            E_portion -= (q->m_kg - take) * h_rest;
            q->age_front_s -= u * (q->age_front_s - q->age_back_s);
            q->m_kg -= take;
            q->h_J_kg = h_rest;
            q->T_K = T_rest;
            q->dT_K *= 1.0 - u;
        }
        out->E_out_J += take * h_exit;
        out->E_loss_J += E_portion - take * h_exit;
        *m_out += take;
        a += take;
        w -= take;
    }
    /* 2. the water that stays cools toward the surroundings over dt */
    for (int i = 0; i < p->n; i++) {
        PlugFlowParcel *q = plugflow_parcel(p, i);
        if (k > 0.0) {
            const double f = exp(-dt * k / water_cp(q->T_K));
            const double T1 = T_amb_K + (q->T_K - T_amb_K) * f;
            const double h1 = water_h(T1);
            out->E_loss_J += q->m_kg * (q->h_J_kg - h1);
            q->h_J_kg = h1;
            q->T_K = T1;
            q->dT_K *= f;
        }
        q->age_front_s += dt;
        q->age_back_s += dt;
    }
    /* 3. the water that entered, uniformly over dt, with its mean cooling; if more than the pipe holds entered
     *    (only where the sub-step count is capped), the excess went straight through in M / mdot */
    if (mdot * dt > 0.0) {
        const double h_in = water_h(T_in_K), r_in = k / water_cp(T_in_K);
        double m_in = mdot * dt, dt_in = dt;
        out->E_in_J += m_in * h_in;
        if (m_in > p->M_kg) {
            const double m_thru = m_in - p->M_kg;
            const double h_thru = water_h(T_amb_K + (T_in_K - T_amb_K) * exp(-p->M_kg / mdot * r_in));
            out->E_out_J += m_thru * h_thru;
            out->E_loss_J += m_thru * (h_in - h_thru);
            *m_out += m_thru;
            m_in = p->M_kg;
            dt_in = m_in / mdot;
        }
        const double x = dt_in * r_in;
        PlugFlowParcel c;
        c.T_K = T_amb_K + (T_in_K - T_amb_K) * (x > 1e-12 ? -expm1(-x) / x : 1.0 - 0.5 * x);
        c.dT_K = -(T_in_K - T_amb_K) * expm1(-x);   /* the last water in has not cooled, the first has for dt */
        c.h_J_kg = water_h(c.T_K);
        c.m_kg = m_in;
        c.age_front_s = dt_in;
        c.age_back_s = 0.0;
        out->E_loss_J += m_in * (h_in - c.h_J_kg);
        plugflow_push(p, &c);
    }
    /* 4. the other half of the exchange */
    if (p->wall) plugflow_exchange(p, par, G_W_mK, 0.5 * dt, cp_x);
}

/* Advance by h_s >= 0 with mdot_kg_s >= 0, T_in_K and T_amb_K held; h_s = 0 only reports the current state. */
static inline void plugflow_step(PlugFlow *p, const PlugFlowParams *par, double mdot_kg_s, double T_in_K,
                                 double T_amb_K, double h_s, PlugFlowStep *out) {
    double m_out = 0.0;
    out->E_in_J = out->E_out_J = out->E_loss_J = 0.0;
    if (mdot_kg_s < 0.0 || !isfinite(mdot_kg_s)) mdot_kg_s = 0.0;   /* the caller refuses reversed flow */
    const double T_film = 0.5 * (T_in_K + plugflow_parcel(p, 0)->T_K), cp_film = water_cp(T_film);
    p->h_film_W_m2K = plugflow_film_W_m2K(par, mdot_kg_s, T_film);
    if (h_s > 0.0) {
        double G = 0.0, n_sub = 1.0;
        const double dm = p->M_kg / p->n_seg;
        /* each sub-step moves the water by at most one wall segment */
        n_sub = fmax(n_sub, ceil(mdot_kg_s * h_s / (PLUGFLOW_SUB_SEGMENTS * dm) * (1.0 - 1e-12)));
        if (p->wall) {
            G = p->h_film_W_m2K * PLUGFLOW_PI * par->D_i_m;               /* W/(m K) */
            if (mdot_kg_s > 0.0)   /* the water moves at most half its exchange length per sub-step */
                n_sub = fmax(n_sub, ceil(h_s * G * par->L_m / (PLUGFLOW_EXCHANGE_DT * p->M_kg * cp_film) * (1.0 - 1e-12)));
        }
        if (n_sub > PLUGFLOW_MAX_SUBSTEPS) n_sub = PLUGFLOW_MAX_SUBSTEPS;
        const int n = (int)n_sub;
        const double dt = h_s / n;
        for (int s = 0; s < n; s++) plugflow_substep(p, par, mdot_kg_s, T_in_K, T_amb_K, dt, G, cp_film, out, &m_out);
    }
    const PlugFlowParcel *head = plugflow_parcel(p, 0);
    out->T_out_K = head->T_K - 0.5 * head->dT_K;
    out->T_out_mean_K = m_out > 0.0 ? water_T_from_h_near(out->E_out_J / m_out, out->T_out_K) : out->T_out_K;
    out->delay_s = head->age_front_s;
}

#endif
