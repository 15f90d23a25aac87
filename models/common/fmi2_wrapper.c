/* The shared FMI 2.0 co-simulation wrapper: owns the FMI state machine, the variable store, input checks,
 * FMU state get/set/serialize and logging. A model supplies only its physics (see model.h).
 *
 * Built as one translation unit with the model: the build passes -DMODEL_SOURCE="<folder>/model.c" and this
 * file includes it first, so ModelState is known here and the compiler can inline the model.
 *
 * Bad input never crashes and never yields a NaN output: a NaN, or a value outside the variable's min/max,
 * is refused by fmi2Set* with fmi2Error and a message naming the variable; a non-finite output after a step
 * is reported the same way and the step returns fmi2Error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "fmi2Functions.h"

#include MODEL_SOURCE

enum { PHASE_INSTANTIATED, PHASE_INITIALIZATION, PHASE_STEPPING, PHASE_TERMINATED, PHASE_ERROR };

#define SERIAL_MAGIC 0x74776e53u /* "twnS" */

typedef struct {
    unsigned int magic;
    unsigned int n_vars;
    unsigned long long state_size;
    char token[48];
} SerialHeader;

static void log_message(ModelInstance *comp, fmi2Status status, const char *category, const char *fmt, va_list ap) {
    if (!comp || !comp->functions) return;
    const fmi2CallbackFunctions *f = (const fmi2CallbackFunctions *)comp->functions;
    if (!f->logger) return;
    if (status == fmi2OK && !comp->loggingOn) return;
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    /* The logger treats the message as a format string but not every environment expands it (fmpy does not):
     * pass a text with no '%' in it, so both read the same. */
    for (char *p = buf; *p; p++) if (*p == '%') *p = '#';
    f->logger(f->componentEnvironment, comp->instanceName, status, category, buf);
}

void model_log_error(ModelInstance *comp, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); log_message(comp, fmi2Error, "logStatusError", fmt, ap); va_end(ap);
}

void model_log_warning(ModelInstance *comp, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); log_message(comp, fmi2Warning, "logStatusWarning", fmt, ap); va_end(ap);
}

static fmi2Status fail(ModelInstance *comp, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); log_message(comp, fmi2Error, "logStatusError", fmt, ap); va_end(ap);
    return fmi2Error;
}

static const char *type_name(VarType t) {
    return t == TYPE_REAL ? "Real" : t == TYPE_INTEGER ? "Integer" : "Boolean";
}

/* Checks that vr exists and has type t. */
static fmi2Status check_vr(ModelInstance *comp, const char *fn, fmi2ValueReference vr, VarType t) {
    if (vr >= N_VARS) return fail(comp, "%s: value reference %u does not exist (the model has %d variables)", fn, vr, N_VARS);
    if (VARS[vr].type != t)
        return fail(comp, "%s: variable %s is of type %s, not %s", fn, VARS[vr].name, type_name(VARS[vr].type), type_name(t));
    return fmi2OK;
}

/* May this variable be set now, and is the value acceptable? */
static fmi2Status check_set(ModelInstance *comp, const char *fn, fmi2ValueReference vr, double value) {
    const VarInfo *vi = &VARS[vr];
    if (vi->causality == CAUS_OUTPUT || vi->causality == CAUS_CALCULATED_PARAMETER || vi->causality == CAUS_LOCAL
        || vi->variability == VAR_CONSTANT)
        return fail(comp, "%s: variable %s (causality %s) cannot be set", fn, vi->name,
                    vi->causality == CAUS_OUTPUT ? "output" : vi->causality == CAUS_LOCAL ? "local" : "calculatedParameter");
    if (comp->phase == PHASE_STEPPING && vi->causality == CAUS_PARAMETER && vi->variability == VAR_FIXED)
        return fail(comp, "%s: parameter %s is fixed and cannot be changed after initialization", fn, vi->name);
    if (comp->phase == PHASE_TERMINATED || comp->phase == PHASE_ERROR)
        return fail(comp, "%s: the instance is terminated or in error; variable %s not set", fn, vi->name);
    if (isnan(value))
        return fail(comp, "%s: variable %s set to NaN at t = %g s", fn, vi->name, comp->st.time_s);
    if (value < vi->min || value > vi->max)
        return fail(comp, "%s: variable %s = %g is outside its range [%g, %g] at t = %g s", fn, vi->name, value,
                    vi->min, vi->max, comp->st.time_s);
    return fmi2OK;
}

static fmi2Status check_outputs(ModelInstance *comp, const char *fn) {
    for (int i = 0; i < N_VARS; i++) {
        if (VARS[i].causality != CAUS_OUTPUT && VARS[i].causality != CAUS_CALCULATED_PARAMETER) continue;
        if (!isfinite(comp->st.v[i])) {
            comp->phase = PHASE_ERROR;
            return fail(comp, "%s: output %s is not finite (%g) at t = %g s", fn, VARS[i].name, comp->st.v[i], comp->st.time_s);
        }
    }
    return fmi2OK;
}

/* ---- FMI 2.0 API ---- */

const char *fmi2GetTypesPlatform(void) { return fmi2TypesPlatform; }
const char *fmi2GetVersion(void) { return fmi2Version; }

fmi2Status fmi2SetDebugLogging(fmi2Component c, fmi2Boolean loggingOn, size_t nCategories, const fmi2String categories[]) {
    (void)nCategories; (void)categories;
    if (!c) return fmi2Error;
    ((ModelInstance *)c)->loggingOn = loggingOn;
    return fmi2OK;
}

fmi2Component fmi2Instantiate(fmi2String instanceName, fmi2Type fmuType, fmi2String fmuGUID,
                              fmi2String fmuResourceLocation, const fmi2CallbackFunctions *functions,
                              fmi2Boolean visible, fmi2Boolean loggingOn) {
    (void)fmuResourceLocation; (void)visible;
    const char *inst = instanceName ? instanceName : "?";
    ModelInstance *comp = (ModelInstance *)calloc(1, sizeof(ModelInstance));   /* large: never on the stack */
    if (!comp) {
        if (functions && functions->logger)
            functions->logger(functions->componentEnvironment, inst, fmi2Error, "logStatusError", "fmi2Instantiate: out of memory");
        return NULL;
    }
    comp->instanceName = inst;
    comp->functions = functions;
    if (fmuType != fmi2CoSimulation) {
        fail(comp, "fmi2Instantiate: %s supports co-simulation only", MODEL_NAME);
        free(comp);
        return NULL;
    }
    if (!fmuGUID || strcmp(fmuGUID, INSTANTIATION_TOKEN) != 0) {
        fail(comp, "fmi2Instantiate: GUID %s does not match %s", fmuGUID ? fmuGUID : "(null)", INSTANTIATION_TOKEN);
        free(comp);
        return NULL;
    }
    size_t n = strlen(inst) + 1;
    char *name = (char *)malloc(n);
    if (!name) { free(comp); return NULL; }
    memcpy(name, inst, n);
    comp->instanceName = name;
    comp->functions = functions;
    comp->loggingOn = loggingOn;
    comp->phase = PHASE_INSTANTIATED;
    for (int i = 0; i < N_VARS; i++) comp->st.v[i] = VARS[i].start;
    return comp;
}

void fmi2FreeInstance(fmi2Component c) {
    if (!c) return;
    ModelInstance *comp = (ModelInstance *)c;
    free((void *)comp->instanceName);
    free(comp);
}

fmi2Status fmi2SetupExperiment(fmi2Component c, fmi2Boolean toleranceDefined, fmi2Real tolerance,
                               fmi2Real startTime, fmi2Boolean stopTimeDefined, fmi2Real stopTime) {
    (void)toleranceDefined; (void)tolerance; (void)stopTimeDefined; (void)stopTime;
    if (!c) return fmi2Error;
    ModelInstance *comp = (ModelInstance *)c;
    if (comp->phase != PHASE_INSTANTIATED) return fail(comp, "fmi2SetupExperiment: only allowed after fmi2Instantiate");
    comp->st.time_s = startTime;
    return fmi2OK;
}

fmi2Status fmi2EnterInitializationMode(fmi2Component c) {
    if (!c) return fmi2Error;
    ModelInstance *comp = (ModelInstance *)c;
    if (comp->phase != PHASE_INSTANTIATED) return fail(comp, "fmi2EnterInitializationMode: only allowed after fmi2Instantiate");
    comp->phase = PHASE_INITIALIZATION;
    return fmi2OK;
}

fmi2Status fmi2ExitInitializationMode(fmi2Component c) {
    if (!c) return fmi2Error;
    ModelInstance *comp = (ModelInstance *)c;
    if (comp->phase != PHASE_INITIALIZATION) return fail(comp, "fmi2ExitInitializationMode: not in initialization mode");
    if (model_init(comp) != MODEL_OK) { comp->phase = PHASE_ERROR; return fmi2Error; }
    comp->st.initialized = 1;
    comp->phase = PHASE_STEPPING;
    return check_outputs(comp, "fmi2ExitInitializationMode");
}

fmi2Status fmi2Terminate(fmi2Component c) {
    if (!c) return fmi2Error;
    ((ModelInstance *)c)->phase = PHASE_TERMINATED;
    return fmi2OK;
}

fmi2Status fmi2Reset(fmi2Component c) {
    if (!c) return fmi2Error;
    ModelInstance *comp = (ModelInstance *)c;
    memset(&comp->st, 0, sizeof comp->st);
    for (int i = 0; i < N_VARS; i++) comp->st.v[i] = VARS[i].start;
    comp->phase = PHASE_INSTANTIATED;
    return fmi2OK;
}

/* In initialization mode the outputs (initial unknowns) are what initialization would give with the values set
 * so far: computed on a scratch copy, so that leaving initialization mode later starts from the same state. */
static const ModelInstance *readable(ModelInstance *comp, ModelInstance **scratch) {
    *scratch = NULL;
    if (comp->phase != PHASE_INITIALIZATION) return comp;
    ModelInstance *tmp = (ModelInstance *)malloc(sizeof(ModelInstance));
    if (!tmp) return comp;
    memcpy(tmp, comp, sizeof(ModelInstance));
    if (model_init(tmp) != MODEL_OK) { free(tmp); return comp; }
    *scratch = tmp;
    return tmp;
}

#define GETTER(FN, CTYPE, VT, CONV)                                                                            \
    fmi2Status FN(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, CTYPE value[]) {                   \
        if (!c) return fmi2Error;                                                                                \
        ModelInstance *comp = (ModelInstance *)c;                                                                \
        for (size_t i = 0; i < nvr; i++)                                                                         \
            if (check_vr(comp, #FN, vr[i], VT) != fmi2OK) return fmi2Error;                                      \
        ModelInstance *scratch;                                                                                  \
        const ModelInstance *src = readable(comp, &scratch);                                                     \
        for (size_t i = 0; i < nvr; i++) value[i] = CONV(src->st.v[vr[i]]);                                      \
        free(scratch);                                                                                           \
        return fmi2OK;                                                                                           \
    }

#define AS_REAL(x) (x)
#define AS_INT(x) ((fmi2Integer)(x))
#define AS_BOOL(x) ((x) != 0.0 ? fmi2True : fmi2False)

GETTER(fmi2GetReal, fmi2Real, TYPE_REAL, AS_REAL)
GETTER(fmi2GetInteger, fmi2Integer, TYPE_INTEGER, AS_INT)
GETTER(fmi2GetBoolean, fmi2Boolean, TYPE_BOOLEAN, AS_BOOL)

fmi2Status fmi2GetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2String value[]) {
    (void)vr; (void)value;
    if (!c) return fmi2Error;
    return nvr == 0 ? fmi2OK : fail((ModelInstance *)c, "fmi2GetString: %s has no String variables", MODEL_NAME);
}

/* All values are checked before any is stored: a refused call changes nothing. */
#define SETTER(FN, CTYPE, VT)                                                                                    \
    fmi2Status FN(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const CTYPE value[]) {             \
        if (!c) return fmi2Error;                                                                                \
        ModelInstance *comp = (ModelInstance *)c;                                                                \
        for (size_t i = 0; i < nvr; i++) {                                                                       \
            if (check_vr(comp, #FN, vr[i], VT) != fmi2OK) return fmi2Error;                                      \
            if (check_set(comp, #FN, vr[i], (double)value[i]) != fmi2OK) return fmi2Error;                       \
        }                                                                                                        \
        for (size_t i = 0; i < nvr; i++) comp->st.v[vr[i]] = (double)value[i];                                   \
        return fmi2OK;                                                                                           \
    }

SETTER(fmi2SetReal, fmi2Real, TYPE_REAL)
SETTER(fmi2SetInteger, fmi2Integer, TYPE_INTEGER)

fmi2Status fmi2SetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Boolean value[]) {
    if (!c) return fmi2Error;
    ModelInstance *comp = (ModelInstance *)c;
    for (size_t i = 0; i < nvr; i++) {
        if (check_vr(comp, "fmi2SetBoolean", vr[i], TYPE_BOOLEAN) != fmi2OK) return fmi2Error;
        if (check_set(comp, "fmi2SetBoolean", vr[i], value[i] ? 1.0 : 0.0) != fmi2OK) return fmi2Error;
    }
    for (size_t i = 0; i < nvr; i++) comp->st.v[vr[i]] = value[i] ? 1.0 : 0.0;
    return fmi2OK;
}

fmi2Status fmi2SetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2String value[]) {
    (void)vr; (void)value;
    if (!c) return fmi2Error;
    return nvr == 0 ? fmi2OK : fail((ModelInstance *)c, "fmi2SetString: %s has no String variables", MODEL_NAME);
}

/* ---- FMU state ---- */

fmi2Status fmi2GetFMUstate(fmi2Component c, fmi2FMUstate *FMUstate) {
    if (!c || !FMUstate) return fmi2Error;
    ModelInstance *comp = (ModelInstance *)c;
    InstanceState *s = (InstanceState *)(*FMUstate);
    if (!s) {
        s = (InstanceState *)malloc(sizeof(InstanceState));
        if (!s) return fail(comp, "fmi2GetFMUstate: out of memory");
    }
    memcpy(s, &comp->st, sizeof(InstanceState));
    *FMUstate = s;
    return fmi2OK;
}

fmi2Status fmi2SetFMUstate(fmi2Component c, fmi2FMUstate FMUstate) {
    if (!c) return fmi2Error;
    ModelInstance *comp = (ModelInstance *)c;
    if (!FMUstate) return fail(comp, "fmi2SetFMUstate: null state");
    memcpy(&comp->st, FMUstate, sizeof(InstanceState));
    /* a state saved before initialization ended goes back to before it, not to stepping on an empty state */
    comp->phase = comp->st.initialized ? PHASE_STEPPING : PHASE_INSTANTIATED;
    return fmi2OK;
}

fmi2Status fmi2FreeFMUstate(fmi2Component c, fmi2FMUstate *FMUstate) {
    (void)c;
    if (FMUstate && *FMUstate) { free(*FMUstate); *FMUstate = NULL; }
    return fmi2OK;
}

fmi2Status fmi2SerializedFMUstateSize(fmi2Component c, fmi2FMUstate FMUstate, size_t *size) {
    (void)FMUstate;
    if (!c || !size) return fmi2Error;
    *size = sizeof(SerialHeader) + sizeof(InstanceState);
    return fmi2OK;
}

static void make_header(SerialHeader *h) {
    memset(h, 0, sizeof *h);
    h->magic = SERIAL_MAGIC;
    h->n_vars = N_VARS;
    h->state_size = sizeof(InstanceState);
    strncpy(h->token, INSTANTIATION_TOKEN, sizeof h->token - 1);
}

fmi2Status fmi2SerializeFMUstate(fmi2Component c, fmi2FMUstate FMUstate, fmi2Byte serializedState[], size_t size) {
    if (!c) return fmi2Error;
    ModelInstance *comp = (ModelInstance *)c;
    if (!FMUstate) return fail(comp, "fmi2SerializeFMUstate: null state");
    if (size < sizeof(SerialHeader) + sizeof(InstanceState))
        return fail(comp, "fmi2SerializeFMUstate: buffer of %zu bytes is too small", size);
    SerialHeader h;
    make_header(&h);
    memcpy(serializedState, &h, sizeof h);
    memcpy(serializedState + sizeof h, FMUstate, sizeof(InstanceState));
    return fmi2OK;
}

fmi2Status fmi2DeSerializeFMUstate(fmi2Component c, const fmi2Byte serializedState[], size_t size, fmi2FMUstate *FMUstate) {
    if (!c || !FMUstate) return fmi2Error;
    ModelInstance *comp = (ModelInstance *)c;
    SerialHeader expected, found;
    make_header(&expected);
    if (size != sizeof(SerialHeader) + sizeof(InstanceState))
        return fail(comp, "fmi2DeSerializeFMUstate: %zu bytes, expected %zu for %s", size,
                    sizeof(SerialHeader) + sizeof(InstanceState), MODEL_NAME);
    memcpy(&found, serializedState, sizeof found);
    if (memcmp(&found, &expected, sizeof found) != 0)
        return fail(comp, "fmi2DeSerializeFMUstate: the bytes are not a serialized state of this version of %s", MODEL_NAME);
    InstanceState *s = (InstanceState *)(*FMUstate);
    if (!s) {
        s = (InstanceState *)malloc(sizeof(InstanceState));
        if (!s) return fail(comp, "fmi2DeSerializeFMUstate: out of memory");
    }
    memcpy(s, serializedState + sizeof found, sizeof(InstanceState));
    *FMUstate = s;
    return fmi2OK;
}

fmi2Status fmi2GetDirectionalDerivative(fmi2Component c, const fmi2ValueReference vUnknown_ref[], size_t nUnknown,
                                        const fmi2ValueReference vKnown_ref[], size_t nKnown,
                                        const fmi2Real dvKnown[], fmi2Real dvUnknown[]) {
    (void)vUnknown_ref; (void)nUnknown; (void)vKnown_ref; (void)nKnown; (void)dvKnown; (void)dvUnknown;
    return c ? fail((ModelInstance *)c, "fmi2GetDirectionalDerivative: not provided by %s", MODEL_NAME) : fmi2Error;
}

/* ---- co-simulation ---- */

fmi2Status fmi2SetRealInputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                                       const fmi2Integer order[], const fmi2Real value[]) {
    (void)vr; (void)nvr; (void)order; (void)value;
    return c ? fail((ModelInstance *)c, "fmi2SetRealInputDerivatives: not provided by %s", MODEL_NAME) : fmi2Error;
}

fmi2Status fmi2GetRealOutputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                                        const fmi2Integer order[], fmi2Real value[]) {
    (void)vr; (void)nvr; (void)order; (void)value;
    return c ? fail((ModelInstance *)c, "fmi2GetRealOutputDerivatives: not provided by %s", MODEL_NAME) : fmi2Error;
}

fmi2Status fmi2DoStep(fmi2Component c, fmi2Real currentCommunicationPoint, fmi2Real communicationStepSize,
                      fmi2Boolean noSetFMUStatePriorToCurrentPoint) {
    (void)noSetFMUStatePriorToCurrentPoint;
    if (!c) return fmi2Error;
    ModelInstance *comp = (ModelInstance *)c;
    if (comp->phase != PHASE_STEPPING) return fail(comp, "fmi2DoStep: not initialized, or terminated, or in error");
    if (!(communicationStepSize >= 0.0) || !isfinite(communicationStepSize))
        return fail(comp, "fmi2DoStep: step size %g s at t = %g s; expected a finite value >= 0", communicationStepSize,
                    currentCommunicationPoint);
    if (!isfinite(currentCommunicationPoint))
        return fail(comp, "fmi2DoStep: communication point %g is not finite", currentCommunicationPoint);
    comp->st.time_s = currentCommunicationPoint;
    if (model_step(comp, currentCommunicationPoint, communicationStepSize) != MODEL_OK) {
        comp->phase = PHASE_ERROR;
        return fmi2Error;
    }
    comp->st.time_s = currentCommunicationPoint + communicationStepSize;
    return check_outputs(comp, "fmi2DoStep");
}

fmi2Status fmi2CancelStep(fmi2Component c) {
    return c ? fail((ModelInstance *)c, "fmi2CancelStep: %s never steps asynchronously", MODEL_NAME) : fmi2Error;
}

fmi2Status fmi2GetStatus(fmi2Component c, const fmi2StatusKind s, fmi2Status *value) {
    (void)s; (void)value;
    return c ? fail((ModelInstance *)c, "fmi2GetStatus: not provided (%s never steps asynchronously)", MODEL_NAME) : fmi2Error;
}

fmi2Status fmi2GetRealStatus(fmi2Component c, const fmi2StatusKind s, fmi2Real *value) {
    if (!c || !value) return fmi2Error;
    if (s == fmi2LastSuccessfulTime) { *value = ((ModelInstance *)c)->st.time_s; return fmi2OK; }
    return fail((ModelInstance *)c, "fmi2GetRealStatus: only fmi2LastSuccessfulTime is provided");
}

fmi2Status fmi2GetIntegerStatus(fmi2Component c, const fmi2StatusKind s, fmi2Integer *value) {
    (void)s; (void)value;
    return c ? fail((ModelInstance *)c, "fmi2GetIntegerStatus: not provided") : fmi2Error;
}

fmi2Status fmi2GetBooleanStatus(fmi2Component c, const fmi2StatusKind s, fmi2Boolean *value) {
    if (!c || !value) return fmi2Error;
    if (s == fmi2Terminated) { *value = fmi2False; return fmi2OK; }
    return fail((ModelInstance *)c, "fmi2GetBooleanStatus: only fmi2Terminated is provided");
}

fmi2Status fmi2GetStringStatus(fmi2Component c, const fmi2StatusKind s, fmi2String *value) {
    (void)s; (void)value;
    return c ? fail((ModelInstance *)c, "fmi2GetStringStatus: not provided") : fmi2Error;
}
