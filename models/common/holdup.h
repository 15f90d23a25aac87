/* holdup.h: a well-mixed water hold-up (a header, a coil, an exchanger channel), shared by the models. */
#ifndef TWIN_HOLDUP_H
#define TWIN_HOLDUP_H
#include <math.h>

/* A well-mixed hold-up of mass m fed at enthalpy h_feed by mdot over h_s seconds, exactly:
 * m dh/dt = mdot (h_feed - h). Returns the enthalpy that left with the flow; *h is updated.
 * With m = 0 the outlet is the feed itself. At zero flow the volume keeps its enthalpy. */
static inline double holdup_step(double m, double mdot, double h_feed, double *h, double h_s) {
    if (m <= 0.0) return mdot * h_feed * h_s;
    if (mdot <= 0.0 || h_s <= 0.0) return 0.0;
    const double dh = (h_feed - *h) * -expm1(-mdot * h_s / m);   /* never over- or undershoots h_feed */
    *h += dh;
    return mdot * h_feed * h_s - m * dh;                          /* in - stored change */
}

#endif
