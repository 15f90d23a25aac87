/* The engine's inner loop in C: steps a site's FMI 2.0 FMUs and standard blocks over many communication steps
 * without returning to Python, routing values through the step vector z exactly as twin/site.py does.
 *
 * It is a faster path for the same computation, not another model: every block here mirrors its reference in
 * twin/blocks.py operation by operation (same order of floating-point operations, same comparisons), so the
 * results are bit-identical to the Python path; tests/test_fastloop.py checks that on whole runs.
 * Built by twin/fastloop.py with the system C compiler; the FMI types come from fmpy's headers.
 */
#include <stddef.h>
#include <string.h>
#include "fmi2Functions.h"

enum { K_FMU = 0, K_PI = 1, K_HYST = 2, K_LINEAR = 3, K_PRODUCT = 4, K_FLOW = 5, K_THROTTLE = 6 };

typedef struct {
    int kind;
    void *comp;
    fmi2SetRealTYPE *set_real;
    fmi2GetRealTYPE *get_real;
    fmi2DoStepTYPE *do_step;
    fmi2SetIntegerTYPE *set_int;
    fmi2SetBooleanTYPE *set_bool;
    fmi2GetIntegerTYPE *get_int;
    fmi2GetBooleanTYPE *get_bool;
    /* inputs by type: z positions and value references */
    int n_in_r, n_in_i, n_in_b;
    const long *in_r_idx, *in_i_idx, *in_b_idx;
    const unsigned *in_r_vr, *in_i_vr, *in_b_vr;
    /* outputs by type: z positions and value references */
    int n_out_r, n_out_i, n_out_b;
    const long *out_r_pos, *out_i_pos, *out_b_pos;
    const unsigned *out_r_vr, *out_i_vr, *out_b_vr;
    double *rbuf;   /* scratch, at least max(n_in_r, n_out_r) */
    int *ibuf;      /* scratch, at least the largest integer/boolean count */
    /* blocks: parameters, state, inputs (in the block's INPUTS order, defaults preset), outputs */
    const double *p;
    double *s;
    double *u;
    double *y;
    int n_u_conn;            /* connected block inputs: u[u_map[j]] = z[in_r_idx[j]] */
    const int *u_map;
    long out_start;          /* blocks: first output position in z */
    int n_y;
} Unit;

static double py_max(double a, double b) { return (b > a) ? b : a; }   /* Python max(a, b) */
static double py_min(double a, double b) { return (b < a) ? b : a; }   /* Python min(a, b) */

static void block_pi(Unit *b, double h) {
    const double *p = b->p; double *u = b->u;
    /* p: kp, ti_s, direction, u_min, u_max, u0, u_off, u_start */
    if (u[2] < 0.5) {
        b->s[0] = p[7] - p[5];
        b->y[0] = p[6];
        return;
    }
    const double e = p[2] * (u[1] - u[0]);
    const double I = b->s[0];
    double I_new = I + p[0] * e * h / p[1];
    double v = p[5] + p[0] * e + I_new;
    if ((v > p[4] && I_new > I) || (v < p[3] && I_new < I)) {
        I_new = I;
        v = p[5] + p[0] * e + I_new;
    }
    b->s[0] = I_new;
    b->y[0] = py_min(py_max(v, p[3]), p[4]);
}

static void block_hyst(Unit *b, double t) {
    const double *p = b->p; double *u = b->u, *s = b->s;
    /* p: on_above, off_below, min_on_s, min_off_s, initial_on; s: on, since_s */
    const double x = u[0];
    const int enabled = u[1] >= 0.5;
    const int rising = p[0] >= p[1];
    const int want_on = rising ? (x > p[0]) : (x < p[0]);
    const int want_off = rising ? (x < p[1]) : (x > p[1]);
    const double held = t - s[1];
    if (s[0] >= 0.5) {
        if ((want_off || !enabled) && held >= p[2]) { s[0] = 0.0; s[1] = t; }
    } else if (want_on && enabled && held >= p[3]) {
        s[0] = 1.0; s[1] = t;
    }
    b->y[0] = s[0];
}

static void block_linear(Unit *b) {
    const double *p = b->p; const double *u = b->u;
    /* p: k1, k2, k3, b, y_min, y_max */
    b->y[0] = py_min(py_max(p[0] * u[0] + p[1] * u[1] + p[2] * u[2] + p[3], p[4]), p[5]);
}

static void block_flow(Unit *b) {
    const double *p = b->p; const double *u = b->u;
    /* p: dT_min_K, mdot_min_kg_s, mdot_max_kg_s */
    const double dT = py_max(u[1] - u[2], p[0]);
    b->y[0] = py_min(py_max(py_max(u[0], 0.0) / (4186.0 * dT), p[1]), p[2]);
}

static void block_throttle(Unit *b, double h) {
    const double *p = b->p; const double *u = b->u; double *y = b->y;
    /* p: T_limit_K, T_max_K, f_min */
    const double x = (u[1] - p[0]) / py_max(p[1] - p[0], 1e-9);
    const double f = 1.0 - (1.0 - p[2]) * py_min(py_max(x, 0.0), 1.0);
    const double P = py_max(u[0], 0.0) * f;
    y[0] = P;
    y[1] = py_max(u[0], 0.0) - P;
    y[2] += P * h;
    y[3] += y[1] * h;
}

/* Status of the first failure: which unit, which call (1 setReal, 2 setInteger, 3 setBoolean, 4 doStep,
 * 5 getReal, 6 getInteger, 7 getBoolean), the FMI status, and the step it happened in. */
typedef struct { int unit, call, status; long step; } Failure;

static int step_fmu(Unit *f, double *z, double t, double h, Failure *fail) {
    int st;
    if (f->n_in_r) {
        for (int j = 0; j < f->n_in_r; j++) f->rbuf[j] = z[f->in_r_idx[j]];
        if ((st = f->set_real(f->comp, f->in_r_vr, f->n_in_r, f->rbuf)) > fmi2Warning) { fail->call = 1; fail->status = st; return 0; }
    }
    if (f->n_in_i) {
        for (int j = 0; j < f->n_in_i; j++) f->ibuf[j] = (int)z[f->in_i_idx[j]];
        if ((st = f->set_int(f->comp, f->in_i_vr, f->n_in_i, f->ibuf)) > fmi2Warning) { fail->call = 2; fail->status = st; return 0; }
    }
    if (f->n_in_b) {
        for (int j = 0; j < f->n_in_b; j++) f->ibuf[j] = z[f->in_b_idx[j]] != 0.0;
        if ((st = f->set_bool(f->comp, f->in_b_vr, f->n_in_b, f->ibuf)) > fmi2Warning) { fail->call = 3; fail->status = st; return 0; }
    }
    if ((st = f->do_step(f->comp, t, h, fmi2True)) > fmi2Warning) { fail->call = 4; fail->status = st; return 0; }
    if (f->n_out_r) {
        if ((st = f->get_real(f->comp, f->out_r_vr, f->n_out_r, f->rbuf)) > fmi2Warning) { fail->call = 5; fail->status = st; return 0; }
        for (int j = 0; j < f->n_out_r; j++) z[f->out_r_pos[j]] = f->rbuf[j];
    }
    if (f->n_out_i) {
        if ((st = f->get_int(f->comp, f->out_i_vr, f->n_out_i, f->ibuf)) > fmi2Warning) { fail->call = 6; fail->status = st; return 0; }
        for (int j = 0; j < f->n_out_i; j++) z[f->out_i_pos[j]] = (double)f->ibuf[j];
    }
    if (f->n_out_b) {
        if ((st = f->get_bool(f->comp, f->out_b_vr, f->n_out_b, f->ibuf)) > fmi2Warning) { fail->call = 7; fail->status = st; return 0; }
        for (int j = 0; j < f->n_out_b; j++) z[f->out_b_pos[j]] = f->ibuf[j] ? 1.0 : 0.0;
    }
    return 1;
}

/* Steps k0 .. k0 + n - 1. Each step: the input-series values of the step into z, every unit in order, the
 * delayed values, then one recorded row (time at the step's end, z[0 .. n_rec-1]) appended to rows.
 * Returns the number of steps done (n, or fewer after a failure described in *fail). */
long twin_run_steps(Unit *units, int n_units, double *z, long k0, long n, long h_ticks, long ticks_per_s,
                    const double *series, long n_series, long series_start, const long *delay_slots,
                    const long *delay_srcs, int n_delays, double *delay_tmp, double *rows, long n_rec, Failure *fail) {
    const double h = (double)h_ticks / (double)ticks_per_s;
    for (long i = 0; i < n; i++) {
        const long k = k0 + i;
        const double t = (double)(k * h_ticks) / (double)ticks_per_s;
        if (n_series) memcpy(z + series_start, series + i * n_series, (size_t)n_series * sizeof(double));
        for (int q = 0; q < n_units; q++) {
            Unit *b = &units[q];
            if (b->kind == K_FMU) {
                if (!step_fmu(b, z, t, h, fail)) { fail->unit = q; fail->step = k; return i; }
                continue;
            }
            for (int j = 0; j < b->n_u_conn; j++) b->u[b->u_map[j]] = z[b->in_r_idx[j]];
            switch (b->kind) {
                case K_PI: block_pi(b, h); break;
                case K_HYST: block_hyst(b, t); break;
                case K_LINEAR: block_linear(b); break;
                case K_PRODUCT: b->y[0] = b->u[0] * b->u[1]; break;
                case K_FLOW: block_flow(b); break;
                case K_THROTTLE: block_throttle(b, h); break;
                default: fail->unit = q; fail->call = 0; fail->status = -1; fail->step = k; return i;
            }
            memcpy(z + b->out_start, b->y, (size_t)b->n_y * sizeof(double));
        }
        for (int d = 0; d < n_delays; d++) delay_tmp[d] = z[delay_srcs[d]];
        for (int d = 0; d < n_delays; d++) z[delay_slots[d]] = delay_tmp[d];
        double *row = rows + i * (n_rec + 1);
        row[0] = (double)((k + 1) * h_ticks) / (double)ticks_per_s;
        memcpy(row + 1, z, (size_t)n_rec * sizeof(double));
    }
    return n;
}
