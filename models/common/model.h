/* The interface between the shared FMI 2.0 wrapper (fmi2_wrapper.c) and one model (model.c).
 *
 * Every model folder has the same files: modelDescription.xml (the single source of the variables),
 * model.c (the physics), README.md (equations, parameters, ports, faults) and reference.csv (a reference
 * result). At build time `twin fmus build` generates vars.h from modelDescription.xml: one VR_<name> constant
 * per variable (valueReferences are dense, 0..N_VARS-1, unique across types) and the table VARS[] with
 * type, causality, variability, start, min and max.
 *
 * A model declares `typedef struct {...} ModelState;` (plain data, no pointers: it is copied byte for byte
 * by get/set/serialize FMU state) before including this header, then defines model_init and model_step.
 */
#ifndef TWIN_MODEL_H
#define TWIN_MODEL_H

#include <math.h>
#include <stddef.h>

typedef enum { TYPE_REAL, TYPE_INTEGER, TYPE_BOOLEAN } VarType;
typedef enum { CAUS_PARAMETER, CAUS_CALCULATED_PARAMETER, CAUS_INPUT, CAUS_OUTPUT, CAUS_LOCAL } VarCausality;
typedef enum { VAR_CONSTANT, VAR_FIXED, VAR_TUNABLE, VAR_DISCRETE, VAR_CONTINUOUS } VarVariability;

typedef struct {
    const char *name;
    VarType type;
    VarCausality causality;
    VarVariability variability;
    double start;
    double min;        /* -INFINITY where the description gives none */
    double max;        /* +INFINITY where the description gives none */
} VarInfo;

#include "vars.h"      /* generated: N_VARS, VR_* constants, VARS[], MODEL_NAME, INSTANTIATION_TOKEN */

/* Everything that get/set/serialize FMU state copies. All values (Real, Integer, Boolean) live in v[] as
 * doubles, indexed by value reference; integers and booleans are exact in a double. */
typedef struct {
    double v[N_VARS];
    double time_s;
    int initialized;          /* 1 once initialization mode has ended: a state saved before it cannot be stepped */
    ModelState m;
} InstanceState;

typedef struct ModelInstance {
    const char *instanceName;
    const void *functions;    /* fmi2CallbackFunctions*, kept opaque here */
    int loggingOn;
    int phase;                /* see fmi2_wrapper.c */
    InstanceState st;
} ModelInstance;

/* Value of a variable by its name in the model description: V(T_in_K) is st.v[VR_T_in_K]. */
#define V(name) (comp->st.v[VR_##name])
#define M (comp->st.m)

/* Status a model returns. */
#define MODEL_OK 0
#define MODEL_ERROR 1

/* Called once, when initialization mode ends: parameters and inputs hold their values. Set up the state and
 * compute every output. Return MODEL_ERROR (after model_log_error) for parameters that cannot work. */
int model_init(ModelInstance *comp);

/* Advance from time t_s by h_s >= 0 seconds with the inputs held constant; compute every output at t_s + h_s.
 * h_s = 0 only recomputes the outputs from the current inputs and state. */
int model_step(ModelInstance *comp, double t_s, double h_s);

/* Error and warning messages go through the environment's logger, naming the instance. */
void model_log_error(ModelInstance *comp, const char *fmt, ...);
void model_log_warning(ModelInstance *comp, const char *fmt, ...);

#endif
