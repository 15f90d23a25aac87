/* A first-order lag as an FMI 3.0 co-simulation FMU, to test twin's adapter with FMI 3.0.
 * y' = (u - y) / tau, exact update over a step; state: y. The FMI 3.0 functions this FMU does not
 * provide are generated as stubs returning fmi3Error (see tests/test_fmu_fmi3.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "fmi3Functions.h"

typedef struct { double time, u, y, tau; } State;
typedef struct { State s; fmi3InstanceEnvironment env; fmi3LogMessageCallback log; int initialized; } Lag;

enum { VR_TIME = 0, VR_U = 1, VR_Y = 2, VR_TAU = 3 };

const char *fmi3GetVersion(void) { return fmi3Version; }
fmi3Status fmi3SetDebugLogging(fmi3Instance instance, fmi3Boolean loggingOn, size_t nCategories, const fmi3String categories[]) { return fmi3OK; }

fmi3Instance fmi3InstantiateCoSimulation(fmi3String instanceName, fmi3String instantiationToken, fmi3String resourcePath,
    fmi3Boolean visible, fmi3Boolean loggingOn, fmi3Boolean eventModeUsed, fmi3Boolean earlyReturnAllowed,
    const fmi3ValueReference requiredIntermediateVariables[], size_t nRequiredIntermediateVariables,
    fmi3InstanceEnvironment instanceEnvironment, fmi3LogMessageCallback logMessage,
    fmi3IntermediateUpdateCallback intermediateUpdate) {
    if (strcmp(instantiationToken, "{8c4e810f-3df3-4a00-8276-176fa3c9f000}") != 0) return NULL;
    Lag *c = calloc(1, sizeof(Lag));
    c->s.tau = 10.0; c->s.y = 0.0; c->s.u = 0.0;
    c->env = instanceEnvironment; c->log = logMessage;
    return c;
}

void fmi3FreeInstance(fmi3Instance instance) { free(instance); }

fmi3Status fmi3EnterInitializationMode(fmi3Instance instance, fmi3Boolean toleranceDefined, fmi3Float64 tolerance,
                                       fmi3Float64 startTime, fmi3Boolean stopTimeDefined, fmi3Float64 stopTime) {
    ((Lag *)instance)->s.time = startTime;
    return fmi3OK;
}
fmi3Status fmi3ExitInitializationMode(fmi3Instance instance) { ((Lag *)instance)->initialized = 1; return fmi3OK; }
fmi3Status fmi3EnterStepMode(fmi3Instance instance) { return fmi3OK; }
fmi3Status fmi3Terminate(fmi3Instance instance) { return fmi3OK; }
fmi3Status fmi3Reset(fmi3Instance instance) { Lag *c = instance; c->s.y = 0; c->s.u = 0; c->s.tau = 10; return fmi3OK; }

fmi3Status fmi3GetFloat64(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences,
                          fmi3Float64 values[], size_t nValues) {
    Lag *c = instance;
    for (size_t i = 0; i < nValueReferences; i++) {
        switch (valueReferences[i]) {
            case VR_TIME: values[i] = c->s.time; break;
            case VR_U: values[i] = c->s.u; break;
            case VR_Y: values[i] = c->s.y; break;
            case VR_TAU: values[i] = c->s.tau; break;
            default: return fmi3Error;
        }
    }
    return fmi3OK;
}

fmi3Status fmi3SetFloat64(fmi3Instance instance, const fmi3ValueReference valueReferences[], size_t nValueReferences,
                          const fmi3Float64 values[], size_t nValues) {
    Lag *c = instance;
    for (size_t i = 0; i < nValueReferences; i++) {
        if (isnan(values[i])) {
            if (c->log) c->log(c->env, fmi3Error, "logStatusError", "u is NaN");
            return fmi3Error;
        }
        switch (valueReferences[i]) {
            case VR_U: c->s.u = values[i]; break;
            case VR_TAU: if (values[i] <= 0) return fmi3Error; c->s.tau = values[i]; break;
            default: return fmi3Error;
        }
    }
    return fmi3OK;
}

fmi3Status fmi3DoStep(fmi3Instance instance, fmi3Float64 currentCommunicationPoint, fmi3Float64 communicationStepSize,
                      fmi3Boolean noSetFMUStatePriorToCurrentPoint, fmi3Boolean *eventHandlingNeeded,
                      fmi3Boolean *terminateSimulation, fmi3Boolean *earlyReturn, fmi3Float64 *lastSuccessfulTime) {
    Lag *c = instance;
    c->s.y = c->s.u + (c->s.y - c->s.u) * exp(-communicationStepSize / c->s.tau);
    c->s.time = currentCommunicationPoint + communicationStepSize;
    *eventHandlingNeeded = fmi3False; *terminateSimulation = fmi3False; *earlyReturn = fmi3False;
    *lastSuccessfulTime = c->s.time;
    return fmi3OK;
}

fmi3Status fmi3GetFMUState(fmi3Instance instance, fmi3FMUState *FMUState) {
    if (!*FMUState) *FMUState = malloc(sizeof(State));
    memcpy(*FMUState, &((Lag *)instance)->s, sizeof(State));
    return fmi3OK;
}
fmi3Status fmi3SetFMUState(fmi3Instance instance, fmi3FMUState FMUState) {
    memcpy(&((Lag *)instance)->s, FMUState, sizeof(State));
    return fmi3OK;
}
fmi3Status fmi3FreeFMUState(fmi3Instance instance, fmi3FMUState *FMUState) { free(*FMUState); *FMUState = NULL; return fmi3OK; }
fmi3Status fmi3SerializedFMUStateSize(fmi3Instance instance, fmi3FMUState FMUState, size_t *size) { *size = sizeof(State); return fmi3OK; }
fmi3Status fmi3SerializeFMUState(fmi3Instance instance, fmi3FMUState FMUState, fmi3Byte serializedState[], size_t size) {
    memcpy(serializedState, FMUState, sizeof(State));
    return fmi3OK;
}
fmi3Status fmi3DeserializeFMUState(fmi3Instance instance, const fmi3Byte serializedState[], size_t size, fmi3FMUState *FMUState) {
    if (size != sizeof(State)) return fmi3Error;
    if (!*FMUState) *FMUState = malloc(sizeof(State));
    memcpy(*FMUState, serializedState, sizeof(State));
    return fmi3OK;
}
