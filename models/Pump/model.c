/* Pump: variable-speed centrifugal pump on a system curve (see README.md for the equations).
 *
 * Head and electric power follow curves at nominal speed, carried to any speed by the affinity laws; the
 * operating point is where the head meets the system curve dp_static + K V^2 (never a negative flow). The speed
 * follows its command through a first-order filter (exact update); a trip lets it coast down exponentially.
 * Energies are integrals over the exact speed trajectory of the step (Gauss-Legendre), so they do not depend
 * on the step size. Sign convention: every P, Q and E output is positive in the direction its name says.
 */
#include "water_props.h"

typedef struct {
    double r;          /* relative speed, the state of the speed filter */
} ModelState;

#include "model.h"

typedef struct {
    double V, dp, P_el, P_shaft, P_hyd;
} OpPoint;

/* 5-point Gauss-Legendre on [-1, 1] */
static const double GL_X[5] = {-0.9061798459386640, -0.5384693101056831, 0.0, 0.5384693101056831, 0.9061798459386640};
static const double GL_W[5] = {0.2369268850561891, 0.4786286704993665, 0.5688888888888889, 0.4786286704993665, 0.2369268850561891};
#define PANELS_PER_TAU 2.0      /* quadrature panels per time constant of the speed transient */
#define TRANSIENT_TAUS 40.0     /* after 40 time constants the speed equals its target to rounding */
#define SPEED_SNAP 1e-12        /* the speed takes its target value once within this */

static double head_nom(const ModelInstance *comp, double x) {   /* H(x) at nominal speed, reference density */
    return V(c1_Pa) + x * (V(c2_Pa_s_m3) + x * (V(c3_Pa_s2_m6) + x * V(c4_Pa_s3_m9)));
}

static double power_nom(const ModelInstance *comp, double x) {  /* P(x) at nominal speed, reference density */
    return V(p0_W) + x * (V(p1_W_s_m3) + x * (V(p2_W_s2_m6) + x * V(p3_W_s3_m9)));
}

/* The operating point at relative speed r with the present inputs. */
static OpPoint operating_point(const ModelInstance *comp, double r) {
    OpPoint op = {0.0, 0.0, 0.0, 0.0, 0.0};
    if (r <= 0.0) return op;
    const double s = V(head_factor_rel) * water_rho(V(T_K)) / V(rho_ref_kg_m3);   /* head scale */
    const double c1 = V(c1_Pa), c2 = V(c2_Pa_s_m3), c3 = V(c3_Pa_s2_m6), c4 = V(c4_Pa_s3_m9);
    const double K = V(K_sys_Pa_s2_m6), dps = V(dp_static_Pa);
    const double c = s * r * r * c1 - dps;          /* head surplus at zero flow */
    double Vf = 0.0;
    if (c > 0.0) {
        if (c4 == 0.0) {
            /* a V^2 - b V - c = 0, a > 0, c > 0: one positive root, written without cancellation */
            const double a = K - s * c3, b = s * r * c2;
            const double sq = sqrt(b * b + 4.0 * a * c);
            Vf = b >= 0.0 ? (b + sq) / (2.0 * a) : 2.0 * c / (sq - b);
        } else {
            /* g(V) = s r^2 H(V/r) - dps - K V^2 is concave on [0, r x_run] (checked at init), g(0) > 0 >= g(r x_run):
             * Newton from the right end decreases monotonically to the unique root. */
            double v = r * V(V_runout_m3_s);
            for (int i = 0; i < 200; i++) {
                const double g = s * (r * r * c1 + v * (r * c2 + v * (c3 + v * c4 / r))) - dps - K * v * v;
                const double dg = s * (r * c2 + v * (2.0 * c3 + 3.0 * v * c4 / r)) - 2.0 * K * v;
                if (!(g < 0.0) || !(dg < 0.0)) break;
                const double step = g / dg;             /* > 0 */
                if (step <= 1e-16 * v) break;
                v -= step;
            }
            Vf = v > 0.0 ? v : 0.0;
        }
    }
    const double rho_s = water_rho(V(T_K)) / V(rho_ref_kg_m3);
    op.V = Vf;
    op.dp = s * (r * r * c1 + Vf * (r * c2 + Vf * (c3 + Vf * c4 / r)));
    op.P_hyd = Vf * op.dp;
    const double P_curve = rho_s * (V(p0_W) * r * r * r + Vf * (V(p1_W_s_m3) * r * r + Vf * (V(p2_W_s2_m6) * r + Vf * V(p3_W_s3_m9))))
                           / V(eta_factor_rel);
    /* eta_motor P >= x H is checked at init on a grid; the max guards rounding between grid points */
    op.P_shaft = fmax(V(eta_motor) * P_curve, op.P_hyd);
    op.P_el = op.P_shaft / V(eta_motor);
    return op;
}

static void set_outputs(ModelInstance *comp, double r) {
    const OpPoint op = operating_point(comp, r);
    const double f = V(f_motor_heat_fluid);
    V(speed_rel) = r;
    V(V_flow_m3_s) = op.V;
    V(mdot_kg_s) = water_rho(V(T_K)) * op.V;
    V(dp_Pa) = op.dp;
    V(P_el_W) = op.P_el;
    V(P_shaft_W) = op.P_shaft;
    V(P_hyd_W) = op.P_hyd;
    V(eta_total) = op.P_el > 0.0 ? op.P_hyd / op.P_el : 0.0;
    V(Q_fluid_W) = op.P_shaft + f * (op.P_el - op.P_shaft);
    V(tripped) = V(trip);
}

/* Run-out flow of the nominal head curve; checks the curves can work. */
static int check_curves(ModelInstance *comp) {
    const double c1 = V(c1_Pa), c2 = V(c2_Pa_s_m3), c3 = V(c3_Pa_s2_m6), c4 = V(c4_Pa_s3_m9);
    if (!(c1 > 0.0)) { model_log_error(comp, "c1_Pa = %g: the shut-off head must be positive", c1); return MODEL_ERROR; }
    if (c3 > 0.0) { model_log_error(comp, "c3_Pa_s2_m6 = %g > 0: the head curve must be concave (c3 <= 0)", c3); return MODEL_ERROR; }
    /* H'' = 2 c3 + 6 c4 x is linear: H is concave on [0, x_c] with x_c = -c3 / (3 c4) for c4 > 0, everywhere otherwise */
    double x_hi;
    if (c4 > 0.0) {
        x_hi = -c3 / (3.0 * c4);
        if (!(head_nom(comp, x_hi) <= 0.0)) {
            model_log_error(comp, "head curve (c1..c4 = %g, %g, %g, %g) turns convex at V = %g m3/s before reaching zero head",
                            c1, c2, c3, c4, x_hi);
            return MODEL_ERROR;
        }
    } else {
        /* a bracket: double a trial flow from a bound on the roots' scale until the head is negative */
        x_hi = 0.0;
        for (int k = 1; k <= 3; k++) {
            const double ck = k == 1 ? c2 : k == 2 ? c3 : c4;
            if (ck != 0.0) { const double b = pow(c1 / fabs(ck), 1.0 / k); if (b > x_hi) x_hi = b; }
        }
        int i = 0;
        while (x_hi > 0.0 && head_nom(comp, x_hi) > 0.0 && i < 200) { x_hi *= 2.0; i++; }
        if (!(x_hi > 0.0) || head_nom(comp, x_hi) > 0.0) {
            model_log_error(comp, "head curve (c1..c4 = %g, %g, %g, %g) never reaches zero head", c1, c2, c3, c4);
            return MODEL_ERROR;
        }
    }
    /* bisection: H is concave on [0, x_hi], H(0) > 0 >= H(x_hi), so the zero is unique */
    double lo = 0.0, hi = x_hi;
    for (int i = 0; i < 200; i++) {
        const double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi) break;
        if (head_nom(comp, mid) > 0.0) lo = mid; else hi = mid;
    }
    const double x_run = hi;
    V(V_runout_m3_s) = x_run;
    /* power: positive, and hydraulic efficiency at most 1 (eta_motor P(x) >= x H(x)) up to run-out */
    const int n = 1000;
    for (int i = 0; i <= n; i++) {
        const double x = x_run * i / n, P = power_nom(comp, x), Ph = x * head_nom(comp, x);
        if (!(P > 0.0)) {
            model_log_error(comp, "power curve (p0..p3) gives %g W at V = %g m3/s: it must be positive up to run-out (%g m3/s)",
                            P, x, x_run);
            return MODEL_ERROR;
        }
        if (V(eta_motor) * P < Ph) {
            model_log_error(comp, "at V = %g m3/s the hydraulic power %g W exceeds the shaft power %g W (eta_motor * P): "
                            "the power curve is too low for the head curve", x, Ph, V(eta_motor) * P);
            return MODEL_ERROR;
        }
    }
    return MODEL_OK;
}

/* Adds to E[] the integrals of P_el, P_shaft, P_hyd over [ta, tb] along r(t) = r_tgt + (r0 - r_tgt) e^(-t/tau):
 * composite Gauss-Legendre, PANELS_PER_TAU panels per time constant. */
static void integrate(const ModelInstance *comp, double r0, double r_tgt, double tau, double ta, double tb, double E[3]) {
    if (!(tb > ta)) return;
    const int n = (int)ceil((tb - ta) * PANELS_PER_TAU / tau);
    const double dt = (tb - ta) / n;
    for (int p = 0; p < n; p++) {
        for (int g = 0; g < 5; g++) {
            const double t = ta + dt * (p + 0.5 * (1.0 + GL_X[g]));
            const OpPoint op = operating_point(comp, r_tgt + (r0 - r_tgt) * exp(-t / tau));
            const double w = 0.5 * dt * GL_W[g];
            E[0] += w * op.P_el;
            E[1] += w * op.P_shaft;
            E[2] += w * op.P_hyd;
        }
    }
}

/* The same with panels shrinking geometrically toward the instant t_c (= ta or tb) where the flow starts or stops:
 * there the flow varies like a square root (or steeply, next to a jump on a curve with a hump). */
#define GRADING_RATIO 0.5
#define GRADING_LEVELS 40
static void integrate_graded(const ModelInstance *comp, double r0, double r_tgt, double tau, double ta, double tb,
                             int toward_a, double E[3]) {
    if (!(tb > ta)) return;
    const double L = tb - ta;
    double d = L;                            /* distance of the panel's far edge from t_c */
    for (int k = 0; k < GRADING_LEVELS; k++) {
        const double d_next = d * GRADING_RATIO;
        if (toward_a) integrate(comp, r0, r_tgt, tau, ta + d_next, ta + d, E);
        else integrate(comp, r0, r_tgt, tau, tb - d, tb - d_next, E);
        d = d_next;
    }
    if (toward_a) integrate(comp, r0, r_tgt, tau, ta, ta + d, E);
    else integrate(comp, r0, r_tgt, tau, tb - d, tb, E);
}

/* Fast path for a smooth transient (no start or stop of the flow near the step, a modest speed change): with
 * u = e^(-t/tau), r = r_tgt + d u and dt = -tau du / u,
 *     integral_0^h P dt = P(r_tgt) h + tau integral_{e^(-h/tau)}^1 (P(r_tgt + d u) - P(r_tgt)) / u du,
 * whose integrand is smooth on [0, 1] (the singularity at u = 0 is removable): one 5-point Gauss-Legendre panel
 * integrates it to rounding for the pump's polynomial-like P(r) (exactly when P ~ r^3, without static head). */
#define FAST_MAX_DR 0.2
static void integrate_smooth(const ModelInstance *comp, double r0, double r_tgt, double tau, double h, double E[3]) {
    const OpPoint p_t = operating_point(comp, r_tgt);
    const double d = r0 - r_tgt, u1 = exp(-h / tau), half = 0.5 * (1.0 - u1);
    E[0] += p_t.P_el * h;
    E[1] += p_t.P_shaft * h;
    E[2] += p_t.P_hyd * h;
    for (int g = 0; g < 5; g++) {
        const double u = u1 + half * (1.0 + GL_X[g]);
        const OpPoint op = operating_point(comp, r_tgt + d * u);
        const double w = tau * half * GL_W[g] / u;
        E[0] += w * (op.P_el - p_t.P_el);
        E[1] += w * (op.P_shaft - p_t.P_shaft);
        E[2] += w * (op.P_hyd - p_t.P_hyd);
    }
}

int model_init(ModelInstance *comp) {
    if (check_curves(comp) != MODEL_OK) return MODEL_ERROR;
    M.r = V(speed_start_rel);
    set_outputs(comp, M.r);
    V(E_el_J) = V(E_hyd_J) = V(E_loss_hyd_J) = V(E_loss_motor_J) = V(E_fluid_J) = V(E_air_J) = 0.0;
    return MODEL_OK;
}

int model_step(ModelInstance *comp, double t_s, double h_s) {
    const double r0 = M.r;
    double r_tgt, tau;
    if (V(trip) != 0.0) { r_tgt = 0.0; tau = V(tau_coast_s); }
    else if (V(stuck) != 0.0) { r_tgt = r0; tau = 0.0; }
    else { r_tgt = V(speed_cmd_rel); tau = V(t_rise_s) / log(9.0); }

    /* integrals over the step of electric, shaft and hydraulic power along r(t) = r_tgt + (r0 - r_tgt) e^(-t/tau) */
    double E[3] = {0.0, 0.0, 0.0};          /* electric, shaft, hydraulic */
    if (h_s > 0.0) {
        double t_end = 0.0;
        const double s_c1_fast = V(head_factor_rel) * water_rho(V(T_K)) / V(rho_ref_kg_m3) * V(c1_Pa);
        const double r_c_fast = V(dp_static_Pa) > 0.0 && s_c1_fast > 0.0 ? sqrt(V(dp_static_Pa) / s_c1_fast) : 0.0;
        if (tau > 0.0 && r0 != r_tgt && fabs(r0 - r_tgt) <= FAST_MAX_DR && fmin(r0, r_tgt) > 1.5 * r_c_fast
            && r_tgt > 0.0) {
            integrate_smooth(comp, r0, r_tgt, tau, h_s, E);
            t_end = h_s;
        } else if (tau > 0.0 && r0 != r_tgt) {
            t_end = fmin(h_s, TRANSIENT_TAUS * tau);
            /* the flow starts or stops (and may jump, on a curve with a hump) where the shut-off head crosses the
             * static head, at speed r_c and time t_c; on the flowing side of t_c the flow varies like a square root
             * of the distance to it. Integrate each side of t_c on its own, with panels graded toward t_c on the
             * flowing side, also where t_c lies before or after the step (extrapolated along the trajectory). */
            const double s_c1 = V(head_factor_rel) * water_rho(V(T_K)) / V(rho_ref_kg_m3) * V(c1_Pa);
            const double r_c = V(dp_static_Pa) > 0.0 && s_c1 > 0.0 ? sqrt(V(dp_static_Pa) / s_c1) : -1.0;
            const double ratio = (r0 - r_tgt) / (r_c - r_tgt);
            if (r_c > 0.0 && ratio > 0.0) {
                const double t_c = tau * log(ratio);
                if (t_c > 0.0 && t_c < t_end) {
                    if (r0 > r_tgt) {           /* falling: flowing before t_c */
                        integrate_graded(comp, r0, r_tgt, tau, 0.0, t_c, 0, E);
                        integrate(comp, r0, r_tgt, tau, t_c, t_end, E);
                    } else {                    /* rising: flowing after t_c */
                        integrate(comp, r0, r_tgt, tau, 0.0, t_c, E);
                        integrate_graded(comp, r0, r_tgt, tau, t_c, t_end, 1, E);
                    }
                } else if (r0 > r_c) {          /* flowing all the step, t_c before it (rising) or after it (falling) */
                    integrate_graded(comp, r0, r_tgt, tau, 0.0, t_end, t_c <= 0.0, E);
                } else {
                    integrate(comp, r0, r_tgt, tau, 0.0, t_end, E);
                }
            } else {
                integrate(comp, r0, r_tgt, tau, 0.0, t_end, E);
            }
        }
        if (h_s > t_end) {   /* the rest of the step at the target speed (all of it for tau = 0: the speed jumps) */
            const OpPoint op = operating_point(comp, r_tgt);
            E[0] += (h_s - t_end) * op.P_el;
            E[1] += (h_s - t_end) * op.P_shaft;
            E[2] += (h_s - t_end) * op.P_hyd;
        }
    }
    const double E_el = E[0], E_shaft = E[1], E_hyd = E[2];
    double r1 = h_s == 0.0 ? r0 : tau > 0.0 ? r_tgt + (r0 - r_tgt) * exp(-h_s / tau) : r_tgt;
    if (fabs(r1 - r_tgt) <= SPEED_SNAP) r1 = r_tgt;   /* a stopped pump reads 0, not 1e-300 */
    M.r = r1;
    set_outputs(comp, r1);

    const double f = V(f_motor_heat_fluid);
    V(E_el_J) += E_el;
    V(E_hyd_J) += E_hyd;
    V(E_loss_hyd_J) += E_shaft - E_hyd;
    V(E_loss_motor_J) += E_el - E_shaft;
    V(E_fluid_J) += E_shaft + f * (E_el - E_shaft);
    V(E_air_J) += (1.0 - f) * (E_el - E_shaft);
    return MODEL_OK;
}
